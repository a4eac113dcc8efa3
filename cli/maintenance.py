"""`lake optimize`, `lake vacuum` and `lake restore`: keeping Delta tables fast, their storage bounded, and undoing a
bad write."""

from __future__ import annotations

import argparse

from cli.main import open_lake
from lake import maintenance
from lake.errors import SetupError


def optimize(args: argparse.Namespace) -> int:
    done = maintenance.optimize(open_lake(args), args.table, args.zorder_by)
    print(
        f"{args.table}: {done['files_removed']} file(s) compacted into {done['files_added']}, version {done['version']}"
    )
    return 0


def vacuum(args: argparse.Namespace) -> int:
    from pipelines.pins import pinned_versions

    lake = open_lake(args)
    lake.spec(args.table)  # an unknown name fails before MLflow is asked
    try:
        pins = pinned_versions(lake).get(args.table, {})
    except SetupError:
        if not args.force:
            raise
        pins = {}
    if pins:
        oldest = min(pins)
        print(f"{args.table}: version {oldest} is the oldest a registered model was trained on ({pins[oldest][0]})")
    plan = maintenance.vacuum(lake, args.table, args.retain_hours, pins, force=args.force, dry_run=args.dry_run)
    print(plan.describe())
    if plan.blocked:
        print("  --force given: files of protected versions deleted; those model versions cannot be reproduced")
    if args.dry_run:
        print("  (dry run: nothing deleted)")
    return 0


def restore(args: argparse.Namespace) -> int:
    lake = open_lake(args)
    layer = lake.spec(args.table).layer
    done = maintenance.restore(lake, args.table, args.version, reset_consumers=[layer])
    print(f"{args.table}: restored to version {done['restored_to']} as new version {done['version']}")
    for cleared in done["watermarks_cleared"]:
        print(f"  watermark cleared: {cleared} (its next run rebuilds from the restored data)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("optimize", help="compact a table's small files (optionally Z-order)")
    parser.add_argument("table")
    parser.add_argument("--zorder-by", nargs="*", default=None)
    parser.set_defaults(handler=optimize)
    parser = subparsers.add_parser(
        "vacuum",
        help="delete files no retained version needs",
        description="Refuses to delete files of a version a registered MLflow model version was trained on.",
    )
    parser.add_argument("table")
    parser.add_argument(
        "--retain-hours",
        type=float,
        default=None,
        help="keep files needed by versions of the last H hours (default: the table's retention, 168); a shorter "
        "retention turns Delta's safety check off for this vacuum only",
    )
    parser.add_argument("--force", action="store_true", help="also delete files that model versions' data needs")
    parser.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    parser.set_defaults(handler=vacuum)
    parser = subparsers.add_parser(
        "restore",
        help="restore a table to an earlier Delta version",
        description="A new commit with the old version's data; the watermarks of the stage that writes the table "
        "and of stages reading it are cleared, so their next runs rebuild from the restored data.",
    )
    parser.add_argument("table")
    parser.add_argument("--version", type=int, required=True)
    parser.set_defaults(handler=restore)
