from pathlib import Path

import pytest

from segwork.errors import SegworkInputError
from segwork.schema import CleanRules, Config, config_from_dict, config_to_dict, load_config


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
