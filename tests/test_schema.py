from pathlib import Path

import pytest

from segwork.errors import SegworkInputError
from segwork.schema import (
    CleanRules,
    ClusterOptions,
    Config,
    config_from_dict,
    config_to_dict,
    load_config,
)


def test_defaults_when_no_config():
    cfg = load_config(None)
    assert cfg == Config()
    assert cfg.read.encoding == "auto"
    assert cfg.clean.cancellations == "drop"


def test_yaml_config_maps_columns(tmp_path: Path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "columns:\n  customer_id: 고객번호\n  invoice_date: 주문일자\n  amount: 금액\n"
        "read:\n  encoding: cp949\n  date_format: '%Y%m%d'\n",
        encoding="utf-8",
    )
    cfg = load_config(p)
    assert cfg.columns.customer_id == "고객번호"
    assert cfg.columns.as_dict() == {
        "customer_id": "고객번호",
        "invoice_date": "주문일자",
        "amount": "금액",
    }
    assert cfg.read.date_format == "%Y%m%d"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"colums": {}}, "unknown top-level key 'colums'"),
        ({"columns": {"customer_id": "a"}}, "columns.invoice_date is required"),
        ({"columns": {"customer_id": "a", "invoice_date": "b"}}, "columns.amount"),
        ({"read": {"encodng": "x"}}, "did you mean 'encoding'"),
        ({"clean": {"cancellations": "maybe"}}, "drop or net"),
        ({"rfm": {"bins": 1}}, "between 2 and 10"),
        ({"cluster": {"k_range": [3]}}, "cluster.k_range: [3]; give two numbers"),
        ({"cluster": {"k_range": [6, 3]}}, "cluster.k_range: 6-3; give 2 <= low <= high"),
        ({"cluster": {"k_range": "3-8"}}, "cluster.k_range must be a list of whole numbers"),
        ({"cluster": {"k": 1}}, "cluster.k: 1 clusters; give 2 or more"),
        ({"cluster": {"k": 4.5}}, "cluster.k must be a whole number or nothing"),
        ({"cluster": {"min_share": 0.6}}, "cluster.min_share must be a share"),
        ({"cluster": {"dbcv_threshold": 2}}, "cluster.dbcv_threshold must be between -1 and 1"),
        ({"cluster": {"kk": 3}}, "unknown key cluster.kk"),
    ],
)
def test_bad_config_one_line(raw, needle):
    with pytest.raises(SegworkInputError) as exc:
        config_from_dict(raw, "cfg.yaml")
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_invalid_yaml_and_missing_file(tmp_path: Path):
    with pytest.raises(SegworkInputError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns: [unclosed\n", encoding="utf-8")
    with pytest.raises(SegworkInputError, match="not valid YAML"):
        load_config(bad)


def test_round_trip_through_dict():
    cfg = Config(clean=CleanRules(cancellations="net", non_product_codes=("POST",)))
    again = config_from_dict(config_to_dict(cfg))
    assert again == cfg


def test_standard4_switches_off_extra_rules():
    r = CleanRules.standard4()
    assert (r.drop_missing_customer, r.cancellations, r.drop_non_positive_quantity) == (
        True,
        "drop",
        True,
    )
    assert not r.drop_duplicates and not r.drop_non_product


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("read:\n  date_format: ['%d/%m/%Y', '%Y-%m-%d']\n", "read.date_format must be text"),
        ("rfm:\n  bins: five\n", "rfm.bins must be a whole number, not 'five' (text)"),
        (
            "clean:\n  non_product_codes: P0001\n",
            "clean.non_product_codes must be a list of texts, not 'P0001' (text)",
        ),
        (
            'clean:\n  drop_duplicates: "no"\n',
            "clean.drop_duplicates must be true or false, not 'no' (text)",
        ),
        ("clean:\n  drop_duplicates:\n", "clean.drop_duplicates must be true or false, not null"),
        ("read:\n  sheet: 1.5\n", "read.sheet must be text, a whole number, a list of"),
        ("read:\n  header_row: '3'\n", "read.header_row must be a whole number or nothing"),
        ("columns:\n  customer_id: 2024\n", "columns.customer_id must be text or nothing (null)"),
        (
            "rfm:\n  fixed_edges:\n    recency_days: [30, soon]\n",
            "rfm.fixed_edges must be a mapping of texts to lists of numbers",
        ),
        ("clean:\n  cancellations: [drop]\n", "clean.cancellations must be drop or net"),
        ("read: utf-8\n", "'read' must be a mapping"),
    ],
)
def test_config_values_type_checked(tmp_path: Path, yaml_text: str, needle: str):
    p = tmp_path / "config.yaml"
    p.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(SegworkInputError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: ") and needle in msg and "\n" not in msg


def test_config_types_coerced_from_yaml(tmp_path: Path):
    p = tmp_path / "config.yaml"
    p.write_text(
        "read:\n  sheet: [Year 2009-2010, 1]\n  header_row: 3\n"
        "clean:\n  non_product_codes: [POST, P0001]\n  drop_duplicates: no\n"
        "rfm:\n  fixed_edges:\n    recency_days: [30, 60, 90, 180]\n"
        "columns:\n  customer_id: 고객번호\n  invoice_date: 주문일자\n  amount: 금액\n"
        "  status: 주문상태\n",
        encoding="utf-8",
    )
    cfg = load_config(p)
    assert cfg.read.sheet == ["Year 2009-2010", 1] and cfg.read.header_row == 3
    assert cfg.clean.non_product_codes == ("POST", "P0001")  # a tuple, as the dataclass says
    assert cfg.clean.drop_duplicates is False
    assert cfg.rfm.fixed_edges == {"recency_days": [30.0, 60.0, 90.0, 180.0]}
    assert cfg.columns.status == "주문상태"
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_unknown_keys_suggest_the_closest():
    with pytest.raises(SegworkInputError, match="unknown key clean.drop_duplicate; did you mean"):
        config_from_dict({"clean": {"drop_duplicate": True}})
    with pytest.raises(SegworkInputError, match="'colums'; did you mean 'columns'"):
        config_from_dict({"colums": {}})
    with pytest.raises(SegworkInputError, match="read.header_row counts from 1"):
        config_from_dict({"read": {"header_row": 0}})


def test_cluster_section_defaults_and_values():
    assert Config().cluster == ClusterOptions(k_range=(3, 8), k=None, min_share=0.02)
    cfg = config_from_dict({"cluster": {"k_range": [4, 6], "k": 5, "min_share": 0.05}})
    assert cfg.cluster.k_range == (4, 6) and cfg.cluster.k == 5
    assert cfg.cluster.min_share == 0.05 and cfg.cluster.dbcv_threshold == 0.25
    assert config_to_dict(cfg)["cluster"]["k_range"] == [4, 6]
    assert config_from_dict(config_to_dict(cfg)) == cfg
