"""`lake`: one command with a subcommand per stage; each cli/<module>.py registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from lake import Lake
from lake.errors import UserError

COMMAND_MODULES = [
    "cli.bronze",
    "cli.maintenance",
    "cli.silver",
    "cli.gold",
    "cli.model",
    "cli.orchestrate",
    "cli.doctor",
    "cli.generate",
]


def open_lake(args: argparse.Namespace) -> Lake:
    """The Lake for the --env chosen on the command line (flows.runtime.open_lake: one place opens a lake)."""
    from flows.runtime import open_lake as open_run_lake

    return open_run_lake(args.env)


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
    """Runs one subcommand. Only the UserError family is a one-line message; anything else is a bug: traceback."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int | None] = args.handler
    try:
        return int(handler(args) or 0)
    except UserError as exc:
        word = "error" if exc.exit_code == 2 else "failed"
        print(f"lake {args.command}: {word}: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
