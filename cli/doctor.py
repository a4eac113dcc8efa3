"""`lake doctor`: is this machine and this lake healthy? Java, Delta JARs, config, tables, row accounting."""

from __future__ import annotations

import argparse

from lake.errors import ConfigError


def doctor(args: argparse.Namespace) -> int:
    from lake import Lake, load_conf
    from lake.doctor import FAIL, Check, check_java_runtime, run_checks

    try:
        lake = Lake(load_conf(args.env))
    except ConfigError as exc:
        checks = [check_java_runtime(), Check("config", FAIL, str(exc), "fix conf/ (or LAKE_CONF_DIR / LAKE_ENV)")]
    else:
        checks = run_checks(lake, spark=args.spark)
    for check in checks:
        print(check.line())
    failed = [check.name for check in checks if check.status == FAIL]
    print(f"\n{len(checks)} checks, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check Java, Delta JARs, config, every table and the bronze-to-silver row accounting",
        description="Prints each check as ok, warn or fail with how to fix it; exit code 1 when one fails.",
    )
    parser.add_argument("--spark", action="store_true", help="also start Spark and read every table with it")
    parser.set_defaults(handler=doctor)
