"""Every flow as a deployment of a Prefect work pool: the alternative to `lake serve` when a `prefect worker` (here or
on another machine with the project installed) should run the flows, e.g. one worker per Spark driver host."""

from __future__ import annotations

from pathlib import Path

from prefect.settings import PREFECT_API_URL

from flows.serve import STAGE_FLOWS, deployment_settings
from lake import load_conf
from lake.errors import SetupError

PROJECT = Path(__file__).resolve().parents[1]
ENTRYPOINTS = {"daily": "flows/daily.py:daily", **{f.name: f"flows/stages.py:{f.fn.__name__}" for f in STAGE_FLOWS}}


def deploy_to_pool(pool: str, env: str | None = None, source: str | None = None) -> list[str]:
    """Registers `<flow>/<flow>` deployments on work pool `pool` (a `process` pool: `prefect work-pool create <pool>
    --type process`) with code from `source` (default: this project folder); returns the deployment ids.

    Runs get the worker's environment plus LAKE_ENV of `env`: start the worker where LAKE_ROOT, SPARK_MASTER,
    MLFLOW_TRACKING_URI... are set for the runs."""
    if not PREFECT_API_URL.value():
        raise SetupError("no Prefect server configured: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)")
    conf = load_conf(env)
    ids = []
    for flow, settings in deployment_settings(conf):
        remote = flow.from_source(source=source or str(PROJECT), entrypoint=ENTRYPOINTS[flow.name])
        # to_deployment + apply, not Flow.deploy: Prefect 3.8.8's deploy() asks the server for the pool's workers
        # with limit=None, which its own server refuses (HTTP 422)
        deployment = remote.to_deployment(
            **settings, work_pool_name=pool, job_variables={"env": {"LAKE_ENV": conf.env}}
        )
        ids.append(str(deployment.apply()))
    return ids
