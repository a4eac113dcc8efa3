"""`lake`: one command with a subcommand per stage; each cli/<module>.py registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from lake import Lake, load_conf
from lake.catalog import TableMissingError, UnknownTableError
from lake.config import ConfigError
from lake.jars import SparkSetupError

COMMAND_MODULES = ["cli.bronze", "cli.maintenance", "cli.silver", "cli.gold", "cli.model", "cli.orchestrate"]
# Errors a user can act on: printed as one line, exit code 2, no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    SparkSetupError,
    UnknownTableError,
    TableMissingError,
    FileNotFoundError,
    ValueError,
)


def open_lake(args: argparse.Namespace) -> Lake:
    """The Lake for the --env chosen on the command line."""
    return Lake(load_conf(args.env))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lake", description="taxi-lakehouse: NYC taxi trips on Delta Lake.")
    parser.add_argument("--env", default=None, help="configuration environment (conf/<env>.yaml); default LAKE_ENV")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a stage whose commands are not installed
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int | None] = args.handler
    try:
        return int(handler(args) or 0)
    except USER_ERRORS as exc:
        print(f"lake {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from pipelines.common import StageError

        if isinstance(exc, StageError):
            print(f"lake {args.command}: failed: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
