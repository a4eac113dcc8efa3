"""What one flow run shares: its Lake (hence one SparkSession), its run date and the folder it ingests from.

`open_lake` is also the CLI's: this module imports Prefect only inside the functions that need it, so that every
`lake` command can use it without paying for Prefect's import.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from zoneinfo import ZoneInfo

from lake import Conf, Lake, load_conf
from lake.errors import MissingInputError
from pipelines.bronze.files import expand_paths

DEFAULT_TIMEZONE = "UTC"
EPHEMERAL_STARTUP_SECONDS = 180


def open_lake(env: str | None = None, lake_root: str | None = None) -> Lake:
    """The Lake of a flow run or a `lake` command: conf env (default LAKE_ENV), optionally another lake root.
    Its SparkSession starts on first use and is shared by every task of the run."""
    overrides = {"lake.root": lake_root} if lake_root else None
    return Lake(load_conf(env, overrides))


def resolve_run_date(run_date: date | None, conf: Conf) -> date:
    """The given date, else the date the run was scheduled for in orchestration.timezone (today for ad-hoc runs)."""
    if run_date is not None:
        return run_date
    from prefect.runtime import flow_run

    zone = ZoneInfo(conf.get("orchestration.timezone") or DEFAULT_TIMEZONE)
    return flow_run.scheduled_start_time.astimezone(zone).date()


def landing_source(conf: Conf, run_date: date, landing: str | None = None) -> str:
    """`<landing>/<run date>` when that folder exists, else the whole landing folder (ingestion skips known files)."""
    root = (landing or conf.path("lake.landing")).rstrip("/")
    try:
        expand_paths([root])
    except FileNotFoundError as exc:
        raise MissingInputError(
            f"landing folder {root} does not exist: put raw TLC files there, or point lake.landing "
            "(LAKE_LANDING) or the flow's `landing` parameter at the folder holding them"
        ) from exc
    dated = f"{root}/{run_date.isoformat()}"
    try:
        expand_paths([dated])
    except FileNotFoundError:
        return root
    return dated


@contextmanager
def patient_ephemeral_api() -> Iterator[None]:
    """Without a configured server, Prefect starts a temporary API for the run and gives it 20 s, which a small
    machine busy with Spark exceeds: allow EPHEMERAL_STARTUP_SECONDS unless the user set the timeout."""
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    if PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.name in os.environ:
        yield
        return
    with temporary_settings(updates={PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: EPHEMERAL_STARTUP_SECONDS}):
        yield
