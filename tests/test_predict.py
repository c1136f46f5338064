"""predict.py: the time split, no leakage, estimators, scores, fallback, and the synthetic truth."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.utils.validation import check_is_fitted

from segwork import predict
from segwork.errors import SegworkInputError
from segwork.pipeline import prepare
from segwork.schema import Config, PredictOptions, config_from_dict
from segwork.synth import FUTURE_FILE, SynthSpec, write_synthetic

H = 90


def orders_con(rows: list[tuple[str, str, float]] | pd.DataFrame) -> duckdb.DuckDBPyConnection:
    """A connection holding ``orders`` (customer_id, day, revenue, purchase) from rows."""
    df = (
        rows
        if isinstance(rows, pd.DataFrame)
        else pd.DataFrame(rows, columns=["customer_id", "day", "revenue"])
    )
    df = df.assign(day=pd.to_datetime(df["day"]).dt.date, purchase=df["revenue"] > 0)
    con = duckdb.connect()
    con.register("df", df)
    predict.with_gaps(con, "df", "orders")
    return con


def labels(
    con: duckdb.DuckDBPyConnection, orders: str, cut: date, horizon_days: int, index: pd.Index
) -> pd.DataFrame:
    """Purchase orders and revenue in ``[cut, cut + H)`` for the customers in ``index``: a
    query of its own, the reference :func:`predict.split`'s labels are checked against."""
    lo = f"DATE '{cut.isoformat()}'"
    hi = f"DATE '{(cut + timedelta(days=int(horizon_days))).isoformat()}'"
    df = con.execute(
        f"""
        SELECT customer_id,
               count(*) FILTER (WHERE purchase)::DOUBLE AS orders,
               round(sum(revenue), 6)::DOUBLE AS revenue
        FROM {orders} WHERE day >= {lo} AND day < {hi}
        GROUP BY customer_id
        """
    ).df()
    out = df.set_index("customer_id").reindex(index).fillna(0.0)
    out.index.name = "customer_id"
    return out


def test_features_by_hand() -> None:
    """Every feature of two customers, counted by hand, and nothing from the cut day onwards."""
    con = orders_con(
        [
            ("a", "2024-01-01", 10.0),
            ("a", "2024-01-11", 30.0),
            ("a", "2024-03-01", 20.0),  # 31 days before the cut
            ("a", "2024-04-01", 999.0),  # on the cut day: label, not feature
            ("b", "2024-03-31", 5.0),
        ]
    )
    f = predict.features(con, "orders", date(2024, 4, 1), 60)
    assert list(f.index) == ["a", "b"]
    a = f.loc["a"]
    assert a["recency_days"] == 31 and a["frequency"] == 3 and a["monetary"] == 60.0
    assert a["tenure_days"] == 91 and a["avg_order_value"] == 20.0
    assert a["ipt_mean"] == 30.0  # gaps of 10 and 50 days (2024 is a leap year)
    assert a["ipt_std"] == pytest.approx(np.std([10, 50], ddof=1))
    assert a["orders_recent"] == 1 and a["orders_previous"] == 2  # [Feb 1, Apr 1), [Dec 3, Feb 1)
    assert a["revenue_recent"] == 20.0 and a["trend"] == -1
    assert a["active_days"] == 60 and a["repeat_rate"] == pytest.approx(2 / 60)
    assert a["recency_ratio"] == pytest.approx(31 / 30)
    b = f.loc["b"]
    assert b["recency_days"] == 1 and b["frequency"] == 1 and np.isnan(b["ipt_mean"])
    y = predict.split(con, "orders", date(2024, 4, 1), 60)[1]
    assert y.loc["a"].tolist() == [1.0, 999.0] and y.loc["b"].tolist() == [0.0, 0.0]
    # the label window is [cut, cut + H): an order on cut + H belongs to the next window
    y2 = predict.split(con, "orders", date(2024, 2, 1), 59)[1]
    assert y2.loc["a", "orders"] == 1  # Mar 1 is day 29 of [Feb 1, Mar 31)
    assert predict.split(con, "orders", date(2024, 2, 1), 29)[1].loc["a", "orders"] == 0


def test_split_is_features_and_labels_from_one_scan() -> None:
    """split() returns exactly features() and labels() at the same cut, refunds included."""
    con = orders_con(
        [
            ("a", "2024-01-01", 10.0),
            ("a", "2024-02-01", -4.0),  # a refund: revenue, not an order
            ("a", "2024-04-01", 999.0),
            ("a", "2024-05-30", 1.0),  # the last day of [Apr 1, May 31)
            ("a", "2024-05-31", 7.0),  # after the window
            ("b", "2024-03-31", 5.0),
            ("b", "2024-04-10", -5.0),
            ("c", "2024-04-02", 3.0),  # no purchase before the cut: not a row
        ]
    )
    cut = date(2024, 4, 1)
    x, y = predict.split(con, "orders", cut, 60)
    pd.testing.assert_frame_equal(x, predict.features(con, "orders", cut, 60))
    pd.testing.assert_frame_equal(y, labels(con, "orders", cut, 60, x.index))
    assert y.loc["a"].tolist() == [2.0, 1000.0] and y.loc["b"].tolist() == [0.0, -5.0]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic shop with its true future."""
    out = tmp_path_factory.mktemp("shop")
    write_synthetic(out, SynthSpec(n_customers=3_000, seed=5))
    return out


@pytest.fixture(scope="module")
def shop_prediction(shop: Path) -> tuple[predict.PredictionResult, date]:
    """The prediction stage on the shop (BTYD left out for speed; it is tested on its own)."""
    prep = prepare(shop / "transactions.parquet", Config())
    orders = predict.order_table(prep.con, prep.store.kept_orders)
    res = predict.run_prediction(
        prep.con, orders, prep.as_of, PredictOptions(), baselines=("recency", "historical_rate")
    )
    return res, prep.as_of


def test_no_leakage_changing_the_future_leaves_features_alone(shop: Path) -> None:
    """Shift, rescale and add every order on or after the cut: the features do not move."""
    prep = prepare(shop / "transactions.parquet", Config())
    orders = prep.con.execute(
        f"SELECT * FROM {predict.order_table(prep.con, prep.store.kept_orders)}"
    ).df()
    cut = prep.as_of - timedelta(days=H)
    before = predict.features(orders_con(orders.drop(columns="purchase")), "orders", cut, H)
    later = pd.to_datetime(orders["day"]) >= pd.Timestamp(cut)
    assert later.sum() > 100
    changed = orders.assign(day=pd.to_datetime(orders["day"]))
    changed.loc[later, "revenue"] *= 7.0
    changed.loc[later, "day"] += pd.Timedelta(days=3)
    extra = changed[later].assign(day=pd.Timestamp(cut))  # every future order again, on the cut day
    changed = pd.concat([changed, extra], ignore_index=True)
    after = predict.features(orders_con(changed.drop(columns="purchase")), "orders", cut, H)
    pd.testing.assert_frame_equal(before, after)
    # ... while the labels do see the change
    x0, y0 = predict.split(orders_con(orders.drop(columns="purchase")), "orders", cut, H)
    x1, y1 = predict.split(orders_con(changed.drop(columns="purchase")), "orders", cut, H)
    pd.testing.assert_frame_equal(x0, before)  # split's features are features()
    pd.testing.assert_frame_equal(x1, after)
    assert y1["orders"].sum() > y0["orders"].sum()


def test_prediction_matches_the_true_future(
    shop: Path, shop_prediction: tuple[predict.PredictionResult, date]
) -> None:
    """Ranking and calibration against what the shop's customers really did next."""
    res, as_of = shop_prediction
    assert res.model == "gradient_boosting" and res.backtest is not None
    fut = pd.read_parquet(shop / FUTURE_FILE)
    end = pd.Timestamp(as_of) + pd.Timedelta(days=H)
    assert fut["invoice_date"].min() >= pd.Timestamp(as_of)  # the future is after the as-of date
    n = fut[fut["invoice_date"] < end].groupby("customer_id").size()
    bought = n.reindex(res.customers.index, fill_value=0) > 0
    p = res.customers["p_purchase"]
    assert roc_auc_score(bought, p) > 0.8
    assert brier_score_loss(bought, p) < 0.16
    assert abs(p.mean() - bought.mean()) < 0.05  # expected buyers within 5 points of the truth
    hi, lo = p >= 0.7, p < 0.3
    assert bought[hi].mean() > 0.6 and bought[lo].mean() < 0.2  # the extremes mean what they say
    # the back-test on the shop's own past agrees in kind
    assert res.backtest["model"]["auc"] > 0.8


def test_slipping_vips_are_found_at_risk(
    shop: Path, shop_prediction: tuple[predict.PredictionResult, date]
) -> None:
    """Planted slipping VIPs (high past value, decaying rate) fall below at_risk_below; VIPs don't."""
    res, _ = shop_prediction
    truth = pd.read_parquet(shop / "personas.parquet").set_index("customer_id")
    p = res.customers["p_purchase"].reindex(truth.index)
    slipping = truth["slipping_vip"]
    vip = (truth["persona"] == "vip") & ~slipping
    assert slipping.sum() >= 20
    assert (p[slipping] < res.at_risk_below).mean() >= 0.9
    assert (p[vip] < res.at_risk_below).mean() <= 0.1


def test_future_state_by_hand() -> None:
    """Customers, mean p, totals, at-risk count and their last-window revenue per group."""
    idx = pd.Index(["a", "b", "c"], name="customer_id")
    res = predict.PredictionResult(
        customers=pd.DataFrame(
            {
                "p_purchase": [0.9, 0.1, 0.2],
                "expected_orders": [2.0, 0.1, 0.3],
                "expected_revenue": [100.0, 5.0, 6.0],
            },
            index=idx,
        ),
        last_window_revenue=pd.Series([50.0, 40.0, 0.0], index=idx),
        model="gradient_boosting",
        horizon_days=90,
        at_risk_below=0.3,
        backtest=None,
    )
    out = predict.future_state(res, pd.Series(["vip", "vip", "new"], index=idx))
    assert out["vip"] == {
        "customers": 2,
        "mean_p_purchase": 0.5,
        "expected_orders": 2.1,
        "expected_revenue": 105.0,
        "at_risk": 1,
        "at_risk_revenue": 40.0,
    }
    assert out["new"]["at_risk"] == 1 and out["new"]["at_risk_revenue"] == 0.0
    # a visitor who never ordered has no prediction: counted nowhere, never a NaN mean
    groups = pd.Series(["vip", "vip", "new", "browsers"], index=[*idx, "d"])
    out = predict.future_state(res, groups)
    assert "browsers" not in out and out["vip"]["customers"] == 2


def test_scores_by_hand() -> None:
    """AUC, Brier, MAE, totals and the top-N hits of a tiny prediction."""
    pred = np.array([[0.9, 2.0, 20.0], [0.8, 1.0, 10.0], [0.2, 0.0, 0.0], [0.1, 1.0, 5.0]] * 3)
    actual = np.array([[1, 10.0], [0, 0.0], [1, 4.0], [0, 0.0]] * 3)
    s = predict.scores(pred, actual)
    assert s["auc"] == pytest.approx(0.75)
    assert s["brier"] == pytest.approx(np.mean([0.01, 0.64, 0.64, 0.01]), abs=1e-4)
    assert s["mae_orders"] == pytest.approx(np.mean([1, 1, 1, 1]))
    assert s["mae_revenue"] == pytest.approx(np.mean([10, 10, 4, 5]))
    assert s["total_orders_ratio"] == pytest.approx(4 / 2)
    assert s["top_n"] == 1 and s["top_hits"] == 1  # the top decile of 12 is one customer
    assert sum(b["customers"] for b in s["calibration"]) == 12


def _small_xy(seed: int = 0, n: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.random((n, len(predict.FEATURES))) * 100, columns=list(predict.FEATURES))
    x["frequency"] = rng.integers(1, 10, n)
    orders = rng.poisson(np.where(x["recency_days"] < 40, 2.0, 0.1))
    return x, np.column_stack([orders, orders * 25.0])


@pytest.mark.parametrize(
    "est",
    [
        predict.PurchaseModel(max_iter=20),
        predict.RecencyBaseline(),
        predict.HistoricalRateBaseline(horizon_days=30),
    ],
    ids=lambda e: type(e).__name__,
)
def test_estimators_follow_sklearn_conventions(est: object) -> None:
    """clone, get/set_params, NotFittedError before fit, fit returns self, (p, orders, revenue)."""
    x, y = _small_xy()
    fresh = clone(est)
    assert fresh.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(fresh)
    with pytest.raises(NotFittedError):
        fresh.predict(x)
    assert fresh.fit(x, y) is fresh
    check_is_fitted(fresh)
    out = fresh.predict(x)
    assert out.shape == (len(x), 3)
    assert ((out[:, 0] >= 0) & (out[:, 0] <= 1)).all() and (out[:, 1:] >= 0).all()
    assert not hasattr(clone(fresh), "n_features_in_")  # clone drops fitted state


def test_purchase_model_ranks_and_refuses_one_class() -> None:
    """Recent customers (who buy in this toy data) rank above lapsed ones; one class is refused."""
    x, y = _small_xy()
    m = predict.PurchaseModel(max_iter=30).fit(x, y)
    p = m.predict(x)[:, 0]
    assert p[x["recency_days"] < 40].mean() > p[x["recency_days"] >= 40].mean() + 0.3
    with pytest.raises(ValueError, match="buyers and non-buyers"):
        predict.PurchaseModel().fit(x, np.zeros_like(y))


def test_calibration_ensemble_is_one_booster_or_one_per_fold() -> None:
    """By default one booster calibrated on out-of-fold predictions; the ensemble keeps three."""
    x, y = _small_xy()
    one = predict.PurchaseModel(max_iter=20).fit(x, y)
    three = predict.PurchaseModel(max_iter=20, calibration_ensemble=True).fit(x, y)
    assert len(one.classifier_.calibrated_classifiers_) == 1
    assert len(three.classifier_.calibrated_classifiers_) == 3
    p1, p3 = one.predict(x)[:, 0], three.predict(x)[:, 0]
    assert not np.allclose(p1, p3) and np.corrcoef(p1, p3)[0, 1] > 0.9


def test_bgnbd_baseline_when_installed() -> None:
    """BG/NBD + Gamma-Gamma from pymc-marketing: fits by MAP, ranks recent repeat buyers higher."""
    pytest.importorskip("pymc_marketing")
    x, y = _small_xy(1, 400)
    x["tenure_days"] = x["recency_days"] + 200
    est = predict.BetaGeoBaseline(horizon_days=60, fit_sample=300)
    assert est.fit(x) is est
    out = est.predict(x)
    assert out.shape == (400, 3) and ((out[:, 0] > 0) & (out[:, 0] < 1)).all()
    recent = (x["recency_days"] < 20) & (x["frequency"] > 5)
    lapsed = (x["recency_days"] > 80) & (x["frequency"] > 5)
    assert out[recent, 0].mean() > out[lapsed, 0].mean()


def test_short_history_falls_back_with_a_warning() -> None:
    """Less than two horizons of history: no back-test, a warning code, a baseline's numbers."""
    rng = np.random.default_rng(2)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 120, 800), unit="D")
    con = orders_con(
        pd.DataFrame(
            {"customer_id": rng.integers(0, 200, 800).astype(str), "day": days, "revenue": 10.0}
        )
    )
    res = predict.run_prediction(
        con, "orders", date(2024, 5, 1), PredictOptions(), baselines=("recency", "historical_rate")
    )
    assert res.backtest is None
    assert res.model == "historical_rate"
    code, message, params = res.warnings[-1]
    assert code == "predict_short_history" and "back-test" in message
    assert params["fallback"] == "historical_rate" and params["horizon_days"] == 90
    assert (
        len(res.customers)
        == con.execute("SELECT count(DISTINCT customer_id) FROM orders").fetchall()[0][0]
    )
    assert res.customers["p_purchase"].between(0, 1).all()


def test_without_pymc_marketing_the_btyd_baseline_is_named_missing(monkeypatch) -> None:
    """No pymc-marketing: a warning code says the BG/NBD baseline is out; the fallback is the rate."""
    monkeypatch.setattr(predict, "btyd_available", lambda: False)
    con = orders_con([("a", "2024-01-01", 5.0), ("a", "2024-02-01", 5.0), ("b", "2024-02-02", 9.0)])
    res = predict.run_prediction(con, "orders", date(2024, 3, 1), PredictOptions())
    assert [w[0] for w in res.warnings] == ["predict_btyd_unavailable", "predict_short_history"]
    assert res.model == "historical_rate"
    # asking for no BTYD baseline is not a missing library
    res = predict.run_prediction(
        con, "orders", date(2024, 3, 1), PredictOptions(), baselines=("recency",)
    )
    assert [w[0] for w in res.warnings] == ["predict_short_history"]


def test_future_state_orders_clusters_numerically_noise_last() -> None:
    """Cluster ids come out 0, 1, 2, 10, then noise."""
    idx = pd.Index([str(i) for i in range(5)])
    res = predict.PredictionResult(
        customers=pd.DataFrame(
            {"p_purchase": 0.5, "expected_orders": 1.0, "expected_revenue": 1.0}, index=idx
        ),
        last_window_revenue=pd.Series(0.0, index=idx),
        model="gradient_boosting",
        horizon_days=90,
        at_risk_below=0.3,
        backtest=None,
    )
    groups = pd.Series(["10", "noise", "2", "0", "1"], index=idx)
    assert list(predict.future_state(res, groups)) == ["0", "1", "2", "10", "noise"]


def test_future_state_keys_labels_once_and_matches_a_groupby() -> None:
    """Raw cluster labels with ``key`` (noise merged with -1) give what a pandas groupby of the
    keyed labels gives, on shuffled predictions with missing ones, aligned or not."""
    from segwork.summary import cluster_key

    rng = np.random.default_rng(3)
    idx = pd.Index([f"c{i}" for i in range(2000)], name="customer_id")
    known = idx[rng.random(len(idx)) < 0.8]
    res = predict.PredictionResult(
        customers=pd.DataFrame(
            {
                "p_purchase": rng.random(len(known)),
                "expected_orders": rng.gamma(1.0, 2.0, len(known)),
                "expected_revenue": rng.gamma(1.0, 300.0, len(known)),
            },
            index=known,
        ).sample(frac=1.0, random_state=1),
        last_window_revenue=pd.Series(rng.gamma(1.0, 80.0, len(known)), index=known),
        model="gradient_boosting",
        horizon_days=90,
        at_risk_below=0.3,
        backtest=None,
    )
    labels = pd.Series(rng.integers(-1, 12, len(idx)), index=idx).astype(object)
    labels.iloc[:7] = "noise"  # the same group as -1 once keyed
    keyed = labels.map(cluster_key)
    c = res.customers.reindex(idx)
    frame = c.assign(g=keyed, last=res.last_window_revenue.reindex(idx).fillna(0.0)).dropna(
        subset=["p_purchase"]
    )
    risk = frame["p_purchase"] < res.at_risk_below
    want = frame.assign(risk=risk, risk_rev=frame["last"].where(risk, 0.0)).groupby("g")
    out = predict.future_state(res, labels, key=cluster_key)
    assert out == predict.future_state(predict.aligned(res, idx), labels, key=cluster_key)
    assert list(out) == [*(str(i) for i in range(12)), "noise"]
    for g, part in want:
        assert out[g]["customers"] == len(part)
        assert out[g]["at_risk"] == int(part["risk"].sum())
        assert out[g]["expected_revenue"] == pytest.approx(part["expected_revenue"].sum(), abs=0.01)
        assert out[g]["at_risk_revenue"] == pytest.approx(part["risk_rev"].sum(), abs=0.01)
        assert out[g]["mean_p_purchase"] == pytest.approx(part["p_purchase"].mean(), abs=1e-4)


def test_config_predict_section() -> None:
    """predict.horizon_days and at_risk_below are read, typed and range-checked."""
    cfg = config_from_dict({"predict": {"horizon_days": 30, "at_risk_below": 0.2}})
    assert cfg.predict == PredictOptions(horizon_days=30, at_risk_below=0.2)
    assert Config().predict == PredictOptions(90, 0.3)
    with pytest.raises(SegworkInputError, match="predict.horizon_days must be a whole number"):
        config_from_dict({"predict": {"horizon_days": "ninety"}})
    with pytest.raises(SegworkInputError, match="between 7 and 730"):
        config_from_dict({"predict": {"horizon_days": 3}})
    with pytest.raises(SegworkInputError, match="at_risk_below"):
        config_from_dict({"predict": {"at_risk_below": 1.5}})
    with pytest.raises(SegworkInputError, match="unknown key predict.horizon"):
        config_from_dict({"predict": {"horizon": 30}})


@pytest.mark.xdist_group("uci")
def test_uci_model_beats_every_baseline(uci_parquet: Path) -> None:
    """On UCI Online Retail (as-of default) the back-test AUC and Brier beat every baseline."""
    pytest.importorskip("pymc_marketing")
    prep = prepare(uci_parquet, Config())
    orders = predict.order_table(prep.con, prep.store.kept_orders)
    res = predict.run_prediction(prep.con, orders, prep.as_of, PredictOptions())
    bt = res.backtest
    assert bt is not None and set(bt["baselines"]) == {"recency", "historical_rate", "bgnbd"}
    model = bt["model"]
    for name, base in bt["baselines"].items():
        assert model["auc"] > base["auc"], name
        assert model["brier"] < base["brier"], name
    assert model["customers"] > 3_000 and model["top_hits"] > 0.9 * model["top_n"]


def test_the_order_table_from_the_ledgers_orders_equals_one_from_the_kept_lines(shop: Path):
    """The per-order table is read off the ledger's orders, never the source: same rows."""
    prep = prepare(shop / "transactions.parquet", Config())
    con, q = prep.con, "SELECT customer_id, day, round(revenue, 6) AS revenue, purchase"
    got = con.execute(
        f"{q} FROM {predict.order_table(con, prep.store.kept_orders)} ORDER BY ALL"
    ).df()
    ref = con.execute(
        f"""{q} FROM (SELECT customer_id::VARCHAR AS customer_id, min(invoice_date)::DATE AS day,
                   sum(amount) AS revenue, NOT bool_and(is_cancel) AS purchase
            FROM {prep.store.kept} WHERE customer_id IS NOT NULL GROUP BY customer_id, invoice_id)
        ORDER BY ALL"""
    ).df()
    assert len(got) > 1000
    pd.testing.assert_frame_equal(got, ref)
