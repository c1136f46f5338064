"""feedback.py: Newcombe intervals, per-segment uplift, bad outcome files, feedback.json."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from segwork import feedback as fbm
from segwork.campaign import CampaignSpec, load_campaign, simulate_campaign
from segwork.cli import main
from segwork.errors import SegworkInputError
from segwork.publish import foreign_entries, mark


def test_newcombe_matches_the_published_example():
    # Newcombe (1998), Table II example (56/70 vs 48/80): hybrid score interval 0.0524 to 0.3339
    lo, hi = fbm.newcombe(56, 70, 48, 80)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)
    # Wilson interval for 0/10 keeps a positive upper bound (Wald would give [0, 0])
    assert fbm.wilson(0, 10)[0] == 0.0 and round(fbm.wilson(0, 10)[1], 4) == 0.2775


def _planted(n: int = 8_000, seed: int = 3) -> tuple[pd.Series, CampaignSpec]:
    ids = pd.Index([f"C{i:06d}" for i in range(n)])
    segs = pd.Series(["vip", "at_risk", "churned", "new"] * (n // 4), index=ids)
    spec = CampaignSpec(
        uplift={"vip": 0.10, "at_risk": 0.05, "churned": 0.0, "new": 0.02},
        base_rate={"vip": 0.20, "at_risk": 0.05, "churned": 0.02, "new": 0.08},
        seed=seed,
    )
    return segs, spec


def test_planted_campaign_intervals_cover_and_null_is_not_a_win():
    segs, spec = _planted()
    covered, calls = 0, 0
    for seed in range(20):  # 20 campaigns x 4 segments: 95% intervals should cover ~76 of 80
        camp = simulate_campaign(segs, CampaignSpec(**{**spec.__dict__, "seed": seed}))
        loaded = camp.assign(treated=camp["group"] == "treated")
        res = fbm.analyse(loaded, segs)
        for s, g in res.segments.items():
            lo, hi = g.uplift_ci
            covered += lo <= spec.uplift[s] <= hi
        calls += bool(res.segments["churned"].paid_off)
        assert res.segments["vip"].paid_off  # a 10-point uplift on 1,000 per arm is found
    assert covered >= 70  # binomial(80, 0.95): below 70 has probability < 0.1%
    assert calls <= 3  # the zero-effect segment is called a win about 2.5% of the time


def _write(tmp_path, rows: list[str], name: str = "camp.csv") -> str:
    p = tmp_path / name
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(p)


def _run(tmp_path) -> str:
    out = tmp_path / "run"
    out.mkdir()
    ids = [f"{i:05d}" for i in range(60)]
    segs = ["vip" if i % 2 else "churned" for i in range(60)]
    pd.DataFrame({"customer_id": ids, "rfm_segment_id": segs}).to_csv(
        out / "segments.csv", index=False, encoding="utf-8-sig"
    )
    (out / "summary.json").write_text(
        json.dumps({"as_of": "2024-01-01", "rfm": {"segment_map": "ko_crm10"}}), "utf-8"
    )
    mark(out, as_of="2024-01-01")
    return str(out)


def test_feedback_cli_writes_json_in_the_documented_shape(tmp_path, capsys):
    run = _run(tmp_path)
    rows = ["고객번호,그룹,전환,매출,비용"]
    for i in range(60):
        grp = "treated" if i < 40 else "control"
        conv = int(i % 3 == 0)
        rows.append(f"{i:05d},{grp},{conv},{10 * conv},0.5")
    rows.append("99999,treated,1,10,0.5")  # not in the run
    camp = _write(tmp_path, rows)
    assert main(["feedback", "--campaign", camp, "--run", run]) == 0
    err = capsys.readouterr().err
    assert "1 of 61 campaign customers are not in the run" in err
    data = json.loads((tmp_path / "run" / "feedback.json").read_text("utf-8"))
    assert set(data["segments"]) == {"vip", "churned"}
    v = data["segments"]["vip"]
    keys = {"n_treated", "n_control", "rate_treated", "rate_control", "uplift", "uplift_ci"}
    assert keys | {"incremental_revenue_per_contact", "roi"} <= set(v)
    # vip = odd ids: 20 treated (i < 40), 10 control
    assert (v["n_treated"], v["n_control"]) == (20, 10)
    assert data["overall"]["n_treated"] == 41  # the unknown customer counts overall
    assert data["method"] == "newcombe_hybrid_score"
    # the run folder is still segwork's: a later run may replace it
    assert foreign_entries(tmp_path / "run") == []


def test_too_few_customers_gives_null_interval_and_a_warning(tmp_path):
    rows = ["customer_id,group,converted,revenue,segment"]
    rows += [f"a{i},treated,{i % 2},5,vip" for i in range(30)]
    rows += [f"b{i},control,0,0,vip" for i in range(32)]  # control 35 > treated 33
    rows += [f"c{i},{'treated' if i < 3 else 'control'},1,5,new" for i in range(6)]
    camp = load_campaign(_write(tmp_path, rows))
    res = fbm.analyse(camp)
    assert res.segments["new"].uplift_ci is None and res.segments["new"].paid_off is None
    assert res.segments["vip"].uplift_ci is not None
    (w,) = [w for w in res.warnings if w.code == "too_few_for_interval"]
    assert w.params["groups"] == ["new"]
    assert [w.code for w in res.warnings if w.code == "control_larger"] == ["control_larger"]


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        (
            ["customer_id,group,converted,revenue", "1,treated,1,5", "2,treated,0,0"],
            "no control group",
        ),
        (
            ["customer_id,group,converted,revenue", "1,treated,2,5", "2,control,0,0"],
            "must be 0 or 1",
        ),
        (
            ["customer_id,group,converted,revenue", "1,test,1,5", "2,hold,0,0"],
            "neither treated nor control",
        ),
        (
            ["customer_id,group,converted,revenue", "1,treated,1,5", "1,control,0,0"],
            "more than once",
        ),
        (
            ["customer_id,group,converted", "1,treated,1", "2,control,0"],
            "required column 'revenue'",
        ),
        (
            ["customer_id,group,converted,revenue", "1,treated,1,lots", "2,control,0,0"],
            "not numbers",
        ),
    ],
)
def test_bad_outcome_files_are_one_line_exit_2(tmp_path, capsys, rows, needle):
    camp = _write(tmp_path, rows)
    assert main(["feedback", "--campaign", camp]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err and err.startswith("segwork: ")


def test_headers_mapped_with_yaml(tmp_path):
    rows = ["cid;arm;bought;spend", "1;treated;1;5", "2;control;0;0"]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "campaign: {customer_id: cid, group: arm, converted: bought, revenue: spend}\n", "utf-8"
    )
    from segwork.schema import load_config

    camp = load_campaign(_write(tmp_path, rows), load_config(cfg))
    assert camp["customer_id"].tolist() == ["1", "2"] and camp["revenue"].tolist() == [5.0, 0.0]
    cfg.write_text("campaign: {group: Arm}\n", "utf-8")
    with pytest.raises(SegworkInputError, match="campaign.group names column 'Arm'"):
        load_campaign(_write(tmp_path, rows), load_config(cfg))


def test_latest_feedback_is_read_by_the_next_run(tmp_path):
    (tmp_path / "reports").mkdir()
    run = _run(tmp_path / "reports")
    rows = ["customer_id,group,converted,revenue"]
    rows += [f"{i:05d},{'treated' if i % 3 else 'control'},{i % 2},3" for i in range(60)]
    fbm.feedback(_write(tmp_path, rows), run)
    found = fbm.latest_feedback(tmp_path / "reports")
    assert found is not None and found.run.endswith("run")
    assert set(found.segments) == {"vip", "churned"}


def test_swapped_groups_and_unknown_segment_values_are_warned():
    rows = [(f"t{i}", True, int(i < 5), 0.0, "vip") for i in range(200)]
    rows += [(f"c{i}", False, int(i < 60), 0.0, "VIP " if i % 2 else "Gold") for i in range(200)]
    camp = pd.DataFrame(rows, columns=["customer_id", "treated", "converted", "revenue", "segment"])
    res = fbm.analyse(camp, names={"VIP": "vip", "vip": "vip"})
    codes = [w.code for w in res.warnings]
    assert "groups_may_be_swapped" in codes and "unknown_segments" in codes
    assert res.overall.paid_off is False and res.overall.uplift_ci[1] < 0
    (w,) = [w for w in res.warnings if w.code == "unknown_segments"]
    assert w.params["values"] == ["Gold"]  # "VIP " is the display name of vip, trimmed
    assert set(res.segments) == {"vip", "Gold"} and res.segments["vip"].n_control == 100
