"""`lake ingest`, `lake tables`, `lake history`: landing raw files and looking at the lake."""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import functions as F

from cli.main import open_lake
from pipelines.bronze import run_ingest

HISTORY_COLUMNS = ["version", "timestamp", "operation", "operationMetrics", "userMetadata"]


def ingest(args: argparse.Namespace) -> int:
    lake = open_lake(args)
    result = run_ingest(lake, args.paths, progress=lambda line: print(line, file=sys.stderr, flush=True))
    for entry in result.details["files"]:
        if entry["status"] == "failed":
            print(f"FAILED {entry['source_file']}: {entry['reason']}")
        elif entry["reason"] and entry["status"] == "ingested":
            print(f"NOTE {entry['source_file']}: {entry['reason']}")
    c = result.counts
    print(
        f"ingest {result.run_id}: {c['files']} file(s): {c['ingested_files']} ingested "
        f"({c['new_versions']} new version(s)), {c['duplicate_files']} skipped as duplicates, "
        f"{c['failed_files']} failed; {c['rows']:,} rows ({c['corrupt_rows']:,} malformed, kept with raw text); "
        f"bronze.trips version {result.versions['bronze.trips']}"
    )
    return 1 if c["failed_files"] else 0


def tables(args: argparse.Namespace) -> int:
    lake = open_lake(args)
    print(f"lake root: {lake.root}")
    print(f"{'table':<24} {'rows':>12} {'version':>8}  description")
    for spec in lake.specs.values():
        if lake.exists(spec.full_name):
            rows = f"{lake.read(spec.full_name).count():,}"
            version = str(lake.version(spec.full_name))
        else:
            rows, version = "-", "-"
        print(f"{spec.full_name:<24} {rows:>12} {version:>8}  {spec.description}")
    return 0


def history(args: argparse.Namespace) -> int:
    lake = open_lake(args)
    entries = lake.history(args.table, args.limit).select(*HISTORY_COLUMNS).orderBy(F.col("version").desc())
    for row in entries.collect():
        metrics = ", ".join(f"{k}={v}" for k, v in sorted((row["operationMetrics"] or {}).items()))
        note = f"  [{row['userMetadata']}]" if row["userMetadata"] else ""
        print(f"v{row['version']:<4} {row['timestamp']}  {row['operation']:<12} {metrics}{note}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest", help="ingest TLC trip files (CSV/Parquet, files, folders, globs) into bronze"
    )
    parser.add_argument("paths", nargs="+", help="files, folders or glob patterns (local paths or URIs)")
    parser.set_defaults(handler=ingest)
    parser = subparsers.add_parser("tables", help="list catalog tables with row counts and current Delta version")
    parser.set_defaults(handler=tables)
    parser = subparsers.add_parser("history", help="show a table's Delta history")
    parser.add_argument("table", help="catalog name, e.g. bronze.trips")
    parser.add_argument("--limit", type=int, default=None)
    parser.set_defaults(handler=history)
