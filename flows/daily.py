"""`daily`: the whole chain for a run date - ingest the landing folder, silver, gold, train (promote), score."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from flows.artifacts import failure_markdown, publish_run
from flows.runtime import landing_source, open_lake, resolve_run_date
from flows.tasks import gold_task, ingest_with_retries, score_task, silver_task, train_task
from lake import load_conf
from pipelines.common import StageResult

FLOW_NAME = "daily"


def run_chain(title: str, steps: list[tuple[str, Callable[[], StageResult]]]) -> list[StageResult]:
    """Runs the stages in order; the first failure is published with the stages it kept from running, then raised."""
    results: list[StageResult] = []
    for index, (stage, step) in enumerate(steps):
        try:
            results.append(step())
        except Exception as exc:
            not_run = [name for name, _ in steps[index + 1 :]]
            publish_run(FLOW_NAME, title, results, failure_markdown(stage, exc, not_run))
            raise
    publish_run(FLOW_NAME, title, results)
    return results


def daily_run_name() -> str:
    """`daily-<run date>`: scheduled runs are named after the date they were scheduled for."""
    parameters = flow_run.parameters
    run_date = parameters.get("run_date")
    if run_date is None:
        run_date = resolve_run_date(None, load_conf(parameters.get("env")))
    return f"{FLOW_NAME}-{run_date}"


@flow(name=FLOW_NAME, flow_run_name=daily_run_name)
def daily(
    run_date: date | None = None,
    landing: str | None = None,
    reprocess_quarantine: bool = False,
    full_refresh: bool = False,
    promote: bool = True,
    env: str | None = None,
    lake_root: str | None = None,
) -> list[dict[str, Any]]:
    """Ingests `<landing>/<run_date>` (or the whole landing folder: known files are skipped), then silver, gold,
    train and score, in one Spark session. A failing `fail` expectation ends the run Failed; nothing after it runs."""
    lake = open_lake(env, lake_root)
    day = resolve_run_date(run_date, lake.conf)
    source = landing_source(lake.conf, day, landing)
    steps: list[tuple[str, Callable[[], StageResult]]] = [
        ("ingest", lambda: ingest_with_retries(lake.conf)(lake, [source])),
        ("silver", lambda: silver_task(lake, reprocess_quarantine)),
        ("gold", lambda: gold_task(lake, full_refresh)),
        ("train", lambda: train_task(lake, promote)),
        ("score", lambda: score_task(lake)),
    ]
    results = run_chain(f"daily run {day.isoformat()} from {source}", steps)
    return [result.to_dict() for result in results]
