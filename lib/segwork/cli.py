"""Command line: argument parsing and exit codes only; the work is in :mod:`segwork.run`.

Exit codes: 0 success, 2 bad input (one line on stderr), 1 a failed report stage, 3 out of
memory or disk (one line), 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from segwork import __version__
from segwork.config import (
    DEFAULT_LANG,
    DEFAULT_SEED,
    DEFAULT_SYNTH_CUSTOMERS,
    LANGS,
    LOCK_TIMEOUT,
    RunParams,
    parse_k_range,
)
from segwork.errors import ReportError, ResourceError, SegworkInputError
from segwork.publish import read_marker
from segwork.run import run

PSEUDONYM_ENV = "SEGWORK_PSEUDONYM_KEY"


def _progress(quiet: bool):
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    return say


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends '(default: X)' unless the help already says its default or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default:" in text
            or default is None
            or default is False
            or default == argparse.SUPPRESS
        ):
            return text
        return super()._get_help_string(action) or text


def build_parser() -> argparse.ArgumentParser:
    """The ``segwork`` parser with every option and its default in the help."""
    fmt = _HelpFormatter
    parser = argparse.ArgumentParser(
        prog="segwork",
        description="Customer segmentation from transactions: ledger, RFM segments, clusters, reports.",
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"segwork {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    r = sub.add_parser(
        "run",
        help="read, clean, segment and write segments.csv + summary.json (and the report)",
        description="Read a transactions file, clean it with a ledger, score RFM, name segments "
        "and write OUT/segments.csv and OUT/summary.json. Without --data it runs on the seeded "
        "synthetic shop.",
        formatter_class=fmt,
    )
    r.add_argument(
        "--data",
        metavar="PATH",
        default=None,
        help="CSV, Excel or Parquet of transactions (default: synthetic shop)",
    )
    r.add_argument(
        "--events",
        metavar="FILE",
        default=None,
        help="CSV, Excel or Parquet of behaviour events (visits, views, carts, sign-ups) to "
        "segment on visits; 'synthetic' uses the synthetic shop's events (default: none)",
    )
    r.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="YAML config: column mapping, read options, cleaning rules (default: none; known layouts need none)",
    )
    r.add_argument(
        "--as-of",
        metavar="YYYY-MM-DD",
        default=None,
        help="date RFM is measured at (default: day after the latest kept transaction)",
    )
    r.add_argument(
        "--compare-to",
        metavar="YYYY-MM-DD",
        default=None,
        help="segment migration since this date, both dates scored with this run's bin edges "
        "(default: the latest earlier month's report under reports/, if any)",
    )
    r.add_argument(
        "--no-compare",
        action="store_true",
        help="do not compare with an earlier month's report found under reports/",
    )
    r.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="output folder: new, empty, or an earlier segwork report, which is replaced "
        "(default: reports/<YYYY-MM of the as-of date>/)",
    )
    r.add_argument(
        "--wait",
        metavar="SECONDS",
        type=float,
        default=LOCK_TIMEOUT,
        help="how long to wait for another segwork run writing the same OUT",
    )
    r.add_argument(
        "--kernel-timeout",
        metavar="SECONDS",
        type=float,
        default=RunParams.kernel_start_timeout,
        help="how long a notebook's kernel may take to start (retried once)",
    )
    r.add_argument(
        "--notebook-timeout",
        metavar="SECONDS",
        type=float,
        default=RunParams.notebook_timeout,
        help="how long one report notebook may run before the run fails",
    )
    r.add_argument(
        "--lang", choices=LANGS, default=DEFAULT_LANG, help="language of labels and reports"
    )
    r.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="random seed for sampling and synthetic data"
    )
    r.add_argument(
        "--synth-customers",
        type=int,
        default=DEFAULT_SYNTH_CUSTOMERS,
        help="customers in the synthetic shop when --data is absent",
    )
    r.add_argument(
        "--pseudonymise",
        action="store_true",
        help=f"show keyed hashes instead of customer IDs in report files (key: ${PSEUDONYM_ENV}); "
        "segments.csv keeps the real IDs",
    )
    r.add_argument(
        "--k",
        type=int,
        default=None,
        help="a fixed number of clusters for K-Means, Ward and the Gaussian mixture "
        "(default: config cluster.k, else chosen in the k range)",
    )
    r.add_argument(
        "--k-range",
        metavar="LOW-HIGH",
        default=None,
        help="range the number of clusters is chosen in, e.g. 3-8 "
        "(default: config cluster.k_range, else 3-8)",
    )
    r.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default="duckdb",
        help="where the ledger and RFM run: duckdb on this machine or spark "
        "(master from $SEGWORK_SPARK_MASTER, default local[*]; --data may be a folder, "
        "hdfs:// or s3a://)",
    )
    r.add_argument("--no-report", action="store_true", help="skip the notebooks and HTML report")
    r.add_argument(
        "--no-predict",
        action="store_true",
        help="skip the back-tested purchase predictions (p_purchase, expected orders and revenue)",
    )
    r.add_argument("--quiet", action="store_true", help="no progress messages")
    e = sub.add_parser(
        "export",
        help="write one customer list per segment, a movers list and segments.json",
        description="Export a run's segments for a CRM or ad tool: one customer list per "
        "segment (ID, segment, stage, RFM values, predictions and previous segment when the run "
        "has them), movers.<fmt> (customers whose segment changed) and segments.json (rules, "
        "sizes, KPI, actions). DIR must be new, empty or an earlier export.",
        formatter_class=fmt,
    )
    e.add_argument("--run", metavar="OUT", required=True, help="folder of a finished segwork run")
    e.add_argument("--to", metavar="DIR", required=True, help="export folder")
    e.add_argument("--format", choices=("csv", "parquet", "xlsx"), default="csv")
    e.add_argument(
        "--segments", metavar="ID,...", default=None, help="only these segment ids (default: all)"
    )
    e.add_argument("--lang", choices=LANGS, default=DEFAULT_LANG, help="language of segment names")
    e.add_argument("--wait", metavar="SECONDS", type=float, default=LOCK_TIMEOUT)
    e.add_argument("--quiet", action="store_true", help="no progress messages")
    f = sub.add_parser(
        "feedback",
        help="measure a campaign against its control group, per segment",
        description="Read a campaign outcome file (customer_id, group treated/control, "
        "converted 0/1, revenue; optional segment, cost) and write feedback.json into the run "
        "folder: response rates, uplift with a 95%% Newcombe interval, incremental revenue per "
        "contact and ROI per segment.",
        formatter_class=fmt,
    )
    f.add_argument("--campaign", metavar="FILE", required=True, help="CSV, Excel or Parquet")
    f.add_argument(
        "--run",
        metavar="OUT",
        default=None,
        help="run whose segments to use (default: the latest report under reports/)",
    )
    f.add_argument(
        "--config",
        metavar="YAML",
        default=None,
        help="header mapping under campaign: (default: none)",
    )
    f.add_argument("--quiet", action="store_true", help="no progress messages")
    return parser


def _marker(args: argparse.Namespace) -> dict[str, Any] | None:
    """The marker in ``--out``: after a Ctrl-C it tells whether this run had published OUT."""
    out = getattr(args, "out", None)
    return read_marker(Path(out)) if out else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``segwork`` command."""
    args = build_parser().parse_args(argv)
    say = _progress(getattr(args, "quiet", False))
    marker_before = _marker(args)
    try:
        if args.command == "run":
            params = RunParams(
                data_path=args.data,
                events_path=args.events,
                config_path=args.config,
                as_of=args.as_of,
                out_dir=args.out,
                lock_timeout=args.wait,
                kernel_start_timeout=args.kernel_timeout,
                notebook_timeout=args.notebook_timeout,
                lang=args.lang,
                seed=args.seed,
                synth_customers=args.synth_customers,
                report=not args.no_report,
                predict=not args.no_predict,
                pseudonymise=args.pseudonymise,
                compare_to=args.compare_to,
                auto_compare=not args.no_compare,
                k=args.k,
                k_range=parse_k_range(args.k_range),
                engine=args.engine,
            )
            key = os.environ.get(PSEUDONYM_ENV, "")
            if args.pseudonymise and not key:
                raise SegworkInputError(
                    f"--pseudonymise needs a secret key in the environment variable {PSEUDONYM_ENV}"
                )
            out = run(params, progress=say, pseudonym_key=key.encode("utf-8") or None)
            say(f"done: {out}")
        elif args.command == "export":
            from segwork.audience import export

            only = args.segments.split(",") if args.segments is not None else None
            out = export(args.run, args.to, args.format, only, args.lang, say, args.wait)
            say(f"done: {out}")
        elif args.command == "feedback":
            from segwork.feedback import feedback

            path, _ = feedback(args.campaign, args.run, args.config, say=say)
            say(f"done: {path}")
    except SegworkInputError as exc:
        print(f"segwork: {exc}", file=sys.stderr)
        return 2
    except ReportError as exc:
        print(f"segwork: {exc}", file=sys.stderr)
        return 1
    except ResourceError as exc:
        print(f"segwork: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        where = getattr(args, "out", None) or "OUT"
        after = _marker(args)
        if after is not None and after != marker_before and after.get("pid") == os.getpid():
            print(f"segwork: interrupted after {where} was written", file=sys.stderr)
        else:
            print(f"segwork: interrupted; nothing published, {where} untouched", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
