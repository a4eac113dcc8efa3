"""`lake generate`: realistic synthetic TLC trip files (calibrated on the real samples) with defects at known rates."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date

from lake.errors import InputError
from pipelines.generate import EXPECTED, generate
from pipelines.generate.defects import BY_NAME
from pipelines.generate.run import DEFAULT_DEFECT_RATE, FORMATS, LAYOUTS


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def run(args: argparse.Namespace) -> int:
    kinds = [k.strip() for k in args.defect_kinds.split(",") if k.strip()] if args.defect_kinds else None
    if kinds is not None and not kinds:
        raise InputError("--defect-kinds names no kind")
    started = time.perf_counter()
    summary = generate(
        args.out,
        args.rows,
        args.start,
        days=args.days,
        file_format=args.format,
        seed=args.seed,
        defect_rate=args.defect_rate,
        taxi=args.taxi,
        layout=args.files,
        defect_kinds=kinds,
        progress=(lambda line: print(line, file=sys.stderr, flush=True)) if args.verbose else None,
    )
    seconds = time.perf_counter() - started
    print(
        f"generate: {summary['rows']:,} {args.taxi} trips in {len(summary['files'])} {args.format} file(s) under "
        f"{args.out} in {seconds:.1f} s; {sum(summary['defects_by_kind'].values()):,} defects "
        f"({summary['quarantined_rows']:,} rows silver should quarantine); expected counts in {EXPECTED}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help="write synthetic TLC trip files (calibrated on the real samples) with known defects"
    )
    parser.add_argument("--rows", type=int, required=True, help="trips in total, spread over the days")
    parser.add_argument("--start", type=_date, required=True, help="first pickup day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=1, help="number of days (default 1)")
    parser.add_argument("--out", required=True, help="folder to write the files and _expected.json into")
    parser.add_argument("--format", choices=FORMATS, default="csv")
    parser.add_argument("--files", choices=LAYOUTS, default="day", help="one file per day (default) or per month")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--defect-rate", type=float, default=DEFAULT_DEFECT_RATE, help="share of rows with one defect (default 0.01)"
    )
    parser.add_argument(
        "--defect-kinds", default=None, help=f"comma-separated kinds to inject (default all): {', '.join(BY_NAME)}"
    )
    parser.add_argument("--taxi", choices=["yellow", "green"], default="yellow")
    parser.add_argument("--verbose", action="store_true", help="print one line per day written")
    parser.set_defaults(handler=run)
