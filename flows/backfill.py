"""Backfill: one `daily` flow run per date, created on the Prefect server (or run here, one after the other)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL

from flows.daily import daily
from lake.errors import InputError

DAILY_DEPLOYMENT = "daily/daily"


def run_dates(start: date, end: date) -> list[date]:
    """Every date from start to end, both included."""
    if end < start:
        raise InputError(f"backfill: --to {end} is before --from {start}")
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def backfill_on_server(
    start: date, end: date, deployment: str = DAILY_DEPLOYMENT, parameters: dict[str, Any] | None = None
) -> list[FlowRun]:
    """Creates one flow run of the deployment per date and returns at once; `lake serve` executes them."""
    api_url = PREFECT_API_URL.value()
    if not api_url:
        raise InputError(
            "backfill creates flow runs on a Prefect server, and none is configured: start one "
            "(`prefect server start`), set PREFECT_API_URL=http://127.0.0.1:4200/api, run `lake serve`, "
            "or use --local to run the dates here without a server"
        )
    runs = []
    for day in run_dates(start, end):
        try:
            runs.append(
                run_deployment(
                    deployment,
                    parameters={**(parameters or {}), "run_date": day.isoformat()},
                    flow_run_name=f"daily-{day.isoformat()}",
                    timeout=0,
                )
            )
        except ObjectNotFound as exc:
            raise InputError(f"deployment {deployment} not found on {api_url}: is `lake serve` running?") from exc
        except httpx.ConnectError as exc:
            raise InputError(f"no Prefect server answers at {api_url}: start it with `prefect server start`") from exc
    return runs


def backfill_locally(start: date, end: date, **parameters: Any) -> dict[date, list[dict[str, Any]]]:
    """Runs `daily` in this process for each date in turn, stopping at the first failure."""
    return {day: daily(run_date=day, **parameters) for day in run_dates(start, end)}
