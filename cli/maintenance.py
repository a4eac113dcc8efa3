"""`lake optimize` and `lake vacuum`: keeping Delta tables fast and their storage bounded."""

from __future__ import annotations

import argparse

from cli.main import open_lake
from lake import maintenance


def optimize(args: argparse.Namespace) -> int:
    done = maintenance.optimize(open_lake(args), args.table, args.zorder_by)
    print(
        f"{args.table}: {done['files_removed']} file(s) compacted into {done['files_added']}, version {done['version']}"
    )
    return 0


def vacuum(args: argparse.Namespace) -> int:
    lake = open_lake(args)
    if args.retain_hours < maintenance.DEFAULT_RETAIN_HOURS:
        lake.spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    version = maintenance.vacuum(lake, args.table, args.retain_hours)
    print(
        f"{args.table}: vacuumed files older than {args.retain_hours} h (time travel before that is gone), "
        f"version {version}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("optimize", help="compact a table's small files (optionally Z-order)")
    parser.add_argument("table")
    parser.add_argument("--zorder-by", nargs="*", default=None)
    parser.set_defaults(handler=optimize)
    parser = subparsers.add_parser("vacuum", help="delete files no retained version needs")
    parser.add_argument("table")
    parser.add_argument("--retain-hours", type=float, default=maintenance.DEFAULT_RETAIN_HOURS)
    parser.set_defaults(handler=vacuum)
