"""`lake silver`: clean, validate and deduplicate new bronze rows into silver.trips (or re-check the quarantine)."""

from __future__ import annotations

import argparse
import sys

from cli.main import open_lake
from pipelines.common import ExpectationFailed, StageResult


def format_rules(result: StageResult) -> list[str]:
    """One line per rule: action, rows evaluated and failed."""
    lines = [f"{'rule':<28} {'action':<6} {'evaluated':>10} {'failed':>8}"]
    for rule in result.details.get("rules", []):
        lines.append(f"{rule['rule']:<28} {rule['action']:<6} {rule['evaluated']:>10,} {rule['failed']:>8,}")
    return lines


def silver(args: argparse.Namespace) -> int:
    from pipelines.silver import run_silver  # imports Great Expectations: slow, so only when the command runs

    lake = open_lake(args)
    try:
        result = run_silver(
            lake,
            reprocess_quarantine=args.reprocess_quarantine,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except ExpectationFailed as exc:
        print(f"silver stopped: {exc}. silver.trips was not changed; see quality.runs for the counts per rule.")
        return 1
    print(result.summary_markdown())
    if result.details.get("rules"):
        print()
        print("\n".join(format_rules(result)))
        details = result.details
        print(
            f"\nGreat Expectations suite success: {details['ge_success']} "
            f"({details.get('ge_engine', 'spark')} engine, {details['ge_seconds']} s)"
        )
    docs = result.details.get("data_docs")
    print(f"Data Docs: {docs}" if docs else "Data Docs: not built (silver.data_docs is false or the lake is remote)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "silver", help="type, validate (Great Expectations), quarantine and deduplicate new bronze rows into silver"
    )
    parser.add_argument(
        "--reprocess-quarantine",
        action="store_true",
        help="re-check the open rows of silver.quarantine against the current rules; rows that pass move to silver",
    )
    parser.set_defaults(handler=silver)
