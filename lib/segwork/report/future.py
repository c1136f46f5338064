"""Reader tables and sentences for the future state: per segment and cluster, and the back-test.

Everything reads the ``prediction`` block of summary.json (:class:`segwork.summary.Prediction`)
and words it from the text catalogue, so the index, the segment cards and the prediction page
say the same thing in every language.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from segwork.currency import Currency
from segwork.report.tables import fmt_money
from segwork.summary import BacktestScores, FutureState, Prediction
from segwork.text import catalogue


def _money(v: float, cur: Currency | None = None) -> str:
    """A whole amount in the run's currency (as on the segment cards)."""
    return fmt_money(v, cur, whole=True)


def future_sentence(
    name: str, state: FutureState, horizon_days: int, lang: str, cur: Currency | None = None
) -> str:
    """ "VIP: 1,203 customers, 64% likely to buy in 90 days, 212 at risk holding 48,000 of ..."."""
    return catalogue(lang)(
        "future.sentence",
        segment=name,
        customers=state.customers,
        likely=state.mean_p_purchase,
        days=horizon_days,
        at_risk=state.at_risk,
        at_risk_revenue=_money(state.at_risk_revenue, cur),
    )


def _state_table(
    states: Mapping[str, FutureState],
    names: Mapping[str, str],
    pred: Prediction,
    lang: str,
    key: str,
) -> pd.DataFrame:
    t = catalogue(lang)
    rows = []
    for gid, s in states.items():
        name = names.get(gid, gid)
        rows.append(
            {
                t(f"future.{key}"): name,
                t("future.customers"): s.customers,
                t("future.likely"): f"{s.mean_p_purchase:.0%}",
                t("future.expected_orders"): round(s.expected_orders),
                t("future.expected_revenue"): _money(s.expected_revenue),
                t("future.at_risk"): s.at_risk,
                t("future.at_risk_revenue"): _money(s.at_risk_revenue),
                "": future_sentence(name, s, pred.horizon_days, lang),
            }
        )
    return pd.DataFrame(rows)


def segment_future_table(pred: Prediction, names: Mapping[str, str], lang: str) -> pd.DataFrame:
    """One row per RFM segment (map order of ``names`` first): the future state and its sentence."""
    order = [g for g in names if g in pred.segments] + [g for g in pred.segments if g not in names]
    return _state_table({g: pred.segments[g] for g in order}, names, pred, lang, "segment")


def cluster_future_table(
    pred: Prediction, method: str, lang: str, names: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """One row per cluster of ``method`` (empty when the method has no future state)."""
    states = pred.clusters.get(method, {})
    return _state_table(states, names or {}, pred, lang, "cluster")


def _predictor_row(name: str, s: BacktestScores, lang: str) -> dict[str, object]:
    t = catalogue(lang)
    rate = s.top_hits / s.top_n if s.top_n else 0.0
    return {
        t("future.predictor"): t(f"future.models.{name}"),
        t("future.top_hits"): t("future.top_hits_value", k=s.top_hits, n=s.top_n, rate=rate),
        t("future.auc"): None if s.auc is None else round(s.auc, 3),
        t("future.brier"): round(s.brier, 3),
        t("future.mae_orders"): round(s.mae_orders, 2),
        t("future.mae_revenue"): _money(s.mae_revenue),
        t("future.total_orders"): None
        if s.total_orders_ratio is None
        else round(s.total_orders_ratio, 2),
    }


def backtest_table(pred: Prediction, lang: str) -> pd.DataFrame:
    """Our model, then each baseline, on the same back-test split, in a marketer's words."""
    if pred.backtest is None:
        return pd.DataFrame()
    bt = pred.backtest
    rows = [_predictor_row("gradient_boosting", bt.model, lang)]
    rows += [_predictor_row(name, s, lang) for name, s in bt.baselines.items()]
    return pd.DataFrame(rows)


def backtest_sentence(pred: Prediction, as_of: object, lang: str) -> str:
    """The one sentence a marketer reads about the back-test (or why there is none)."""
    t = catalogue(lang)
    model = t(f"future.models.{pred.model}")
    if pred.backtest is None:
        return t("future.not_backtested", days=pred.horizon_days, model=model)
    s = pred.backtest.model
    return t(
        "future.backtest",
        train=pred.backtest.train_as_of,
        score=pred.backtest.score_as_of,
        as_of=as_of,
        n=s.top_n,
        k=s.top_hits,
        rate=s.top_hits / s.top_n if s.top_n else 0.0,
        base=s.buyers / s.customers if s.customers else 0.0,
    )


def calibration_frame(pred: Prediction) -> pd.DataFrame:
    """The back-test calibration curve of our model: bin, customers, predicted, observed."""
    if pred.backtest is None:
        return pd.DataFrame(columns=["lower", "upper", "customers", "predicted", "observed"])
    return pd.DataFrame([b.model_dump() for b in pred.backtest.model.calibration])
