"""`lake serve`, `lake backfill` and `lake run FLOW`: the Prefect flows from the command line."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from lake.errors import InputError
from pipelines.common import StageResult

# Each flow's parameters that a command-line option can set (env and lake_root apply to every flow).
FLOW_OPTIONS: dict[str, set[str]] = {
    "ingest": {"paths", "run_date", "landing"},
    "silver": {"reprocess_quarantine"},
    "gold": {"full_refresh"},
    "train": {"promote", "reproduce_run_id"},
    "score": {"rescore"},
    "daily": {"run_date", "landing", "reprocess_quarantine", "full_refresh", "promote"},
}
DAILY_OPTIONS = FLOW_OPTIONS["daily"] - {"run_date"}
ALL_OPTIONS = set().union(*FLOW_OPTIONS.values())


def add_flow_options(parser: argparse.ArgumentParser, names: set[str]) -> None:
    if "paths" in names:
        parser.add_argument("--paths", nargs="+", help="files, folders or globs to ingest (default: landing folder)")
    if "run_date" in names:
        parser.add_argument("--date", dest="run_date", type=date.fromisoformat, help="run date YYYY-MM-DD")
    if "landing" in names:
        parser.add_argument("--landing", help="landing folder (default: lake.landing)")
    if "reprocess_quarantine" in names:
        parser.add_argument("--reprocess-quarantine", action="store_true", default=None)
    if "full_refresh" in names:
        parser.add_argument("--full-refresh", action="store_true", default=None)
    if "promote" in names:
        parser.add_argument("--promote", action=argparse.BooleanOptionalAction, default=None)
    if "rescore" in names:
        parser.add_argument(
            "--rescore", action="store_true", default=None, help="re-predict every trip with the current champion"
        )
    if "reproduce_run_id" in names:
        parser.add_argument("--reproduce-run-id", help="retrain on the data versions of this MLflow run")
    parser.add_argument("--lake-root", help="lake root for this run (default: lake.root)")


def given(args: argparse.Namespace, names: set[str]) -> dict[str, Any]:
    """The flow parameters set on the command line; the others keep the flow's defaults."""
    values = {name: getattr(args, name, None) for name in names | {"lake_root"}}
    return {name: value for name, value in values.items() if value is not None}


def print_results(results: list[dict[str, Any]]) -> None:
    from pipelines.train.evaluate import train_markdown  # a train summary shows the model's and baselines' metrics

    for result in (StageResult(**fields) for fields in results):
        print(train_markdown(result) if result.stage == "train" else result.summary_markdown(), end="\n\n")


def serve_command(args: argparse.Namespace) -> int:
    # Prefect is imported by the commands that use it: it takes seconds, and every `lake` command builds this parser.
    from flows.serve import serve_all

    serve_all(args.env)
    return 0


def deploy_command(args: argparse.Namespace) -> int:
    from flows.pool import deploy_to_pool

    ids = deploy_to_pool(args.pool, args.env, args.source)
    print(f"{len(ids)} deployment(s) on work pool {args.pool!r}; run them: prefect worker start --pool {args.pool}")
    return 0


def run_command(args: argparse.Namespace) -> int:
    from flows.runtime import patient_ephemeral_api
    from flows.serve import FLOWS

    not_applicable = sorted(set(given(args, ALL_OPTIONS)) - FLOW_OPTIONS[args.flow] - {"lake_root"})
    if not_applicable:
        options = ", ".join("--" + name.replace("_", "-") for name in not_applicable)
        raise InputError(f"{options} does not apply to flow {args.flow}")
    with patient_ephemeral_api():
        outcome = FLOWS[args.flow](env=args.env, **given(args, FLOW_OPTIONS[args.flow]))
    print_results(outcome if isinstance(outcome, list) else [outcome])
    return 0


def backfill_command(args: argparse.Namespace) -> int:
    from flows.backfill import backfill_locally, backfill_on_server
    from flows.runtime import patient_ephemeral_api

    parameters = given(args, DAILY_OPTIONS)
    if args.local:
        with patient_ephemeral_api():
            ran = backfill_locally(args.start, args.end, env=args.env, **parameters)
        for day, results in ran.items():
            print(f"## daily {day.isoformat()}\n")
            print_results(results)
        return 0
    parameters.pop("lake_root", None)  # served runs use the lake of the `lake serve` process
    for run in backfill_on_server(args.start, args.end, args.deployment, parameters):
        print(f"created flow run {run.name} ({run.id}) of {args.deployment}: {run.state_name}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve", help="serve every flow as a Prefect deployment; `daily` on orchestration.daily_cron"
    )
    serve.set_defaults(handler=serve_command)

    deploy = subparsers.add_parser(
        "deploy", help="register every flow on a Prefect work pool (run by `prefect worker start --pool POOL`)"
    )
    deploy.add_argument("--pool", required=True, help="a process work pool (prefect work-pool create POOL -t process)")
    deploy.add_argument("--source", default=None, help="folder holding the project's code (default: this project)")
    deploy.set_defaults(handler=deploy_command)

    run = subparsers.add_parser("run", help="run one flow in this process (no Prefect server needed)")
    run.add_argument("flow", choices=sorted(FLOW_OPTIONS))
    add_flow_options(run, ALL_OPTIONS)
    run.set_defaults(handler=run_command)

    backfill = subparsers.add_parser("backfill", help="one `daily` flow run per date from --from to --to")
    backfill.add_argument("--from", dest="start", type=date.fromisoformat, required=True, help="first date")
    backfill.add_argument("--to", dest="end", type=date.fromisoformat, required=True, help="last date (included)")
    backfill.add_argument("--local", action="store_true", help="run the dates here, one after the other")
    backfill.add_argument("--deployment", default="daily/daily", help="deployment to run (default: daily/daily)")
    add_flow_options(backfill, DAILY_OPTIONS)
    backfill.set_defaults(handler=backfill_command)
