"""Serves every flow as a Prefect deployment; `daily` runs on the cron schedule from conf `orchestration`."""

from __future__ import annotations

from prefect import Flow, serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.settings import PREFECT_API_URL
from prefect.types.entrypoint import EntrypointType

from flows.daily import daily
from flows.stages import gold, ingest, score, silver, train
from lake import Conf, load_conf
from lake.errors import SetupError

DEFAULT_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "UTC"
TAGS = ["taxi-lakehouse"]


STAGE_FLOWS = (ingest, silver, gold, train, score)
FLOWS = {flow.name: flow for flow in (daily, *STAGE_FLOWS)}


def deployment_settings(conf: Conf) -> list[tuple[Flow, dict]]:
    """Per flow, its deployment's name, schedule, default parameters and tags (shared by serve and work pools)."""
    schedule = Cron(
        conf.get("orchestration.daily_cron") or DEFAULT_CRON,
        timezone=conf.get("orchestration.timezone") or DEFAULT_TIMEZONE,
    )
    daily_settings = {
        "name": "daily",
        "schedules": [schedule],
        "parameters": {"landing": conf.path("lake.landing"), "env": conf.env},
        "description": "The whole chain for a run date: ingest new landing files, silver, gold, train, score.",
        "tags": TAGS,
    }
    stages = [(stage, {"name": stage.name, "parameters": {"env": conf.env}, "tags": TAGS}) for stage in STAGE_FLOWS]
    return [(daily, daily_settings), *stages]


def deployments(conf: Conf) -> list[RunnerDeployment]:
    """One deployment per flow, named after it (`daily/daily`, `silver/silver`, ...), using conf's environment."""
    # Served runs are processes started by `lake serve`: they get its environment (LAKE_ENV, LAKE_ROOT...),
    # so the conf-dependent defaults shown in the UI are the ones the runs will use.
    return [
        flow.to_deployment(**settings, entrypoint_type=EntrypointType.MODULE_PATH)
        for flow, settings in deployment_settings(conf)
    ]


def serve_all(env: str | None = None) -> None:
    """Blocks, running scheduled and UI-triggered flow runs until interrupted.

    At most orchestration.max_concurrent_runs runs at a time (default 1): concurrent runs would write the same
    Delta tables and each would start its own Spark driver on the same machine.
    """
    if not PREFECT_API_URL.value():
        raise SetupError(
            "no Prefect server configured: start one (`make prefect-server` or `prefect server start`) and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api, so that the deployments, their schedule and the UI live there"
        )
    conf = load_conf(env)
    serve(*deployments(conf), limit=int(conf.get("orchestration.max_concurrent_runs", 1)))


if __name__ == "__main__":
    serve_all()
