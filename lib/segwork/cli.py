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
    r.add_argument("--no-report", action="store_true", help="skip the notebooks and HTML report")
    r.add_argument("--quiet", action="store_true", help="no progress messages")
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
                pseudonymise=args.pseudonymise,
            )
            key = os.environ.get(PSEUDONYM_ENV, "")
            if args.pseudonymise and not key:
                raise SegworkInputError(
                    f"--pseudonymise needs a secret key in the environment variable {PSEUDONYM_ENV}"
                )
            out = run(params, progress=say, pseudonym_key=key.encode("utf-8") or None)
            say(f"done: {out}")
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
