"""`daily`: the whole chain for a run date - ingest the landing folder, silver, gold, train (promote), score."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any, NoReturn

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.artifacts import failure_markdown, publish_run, publish_skipped
from flows.policy import (
    Decision,
    has_champion,
    ingest_failure,
    on_ingest_failure,
    retrain_policy,
    should_retrain,
    tag_training_run,
    training_facts,
)
from flows.runtime import landing_source, open_lake, resolve_run_date
from flows.tasks import gold_task, ingest_with_retries, score_task, silver_task, train_task
from lake import Lake, load_conf
from pipelines.common import StageResult

FLOW_NAME = "daily"
STAGES = ["ingest", "silver", "gold", "train", "score"]
SKIPPED = "skipped"


class Chain:
    """The stages of one run in order: each result kept; the first failure published with the stages it kept from
    running, then raised; a skipped stage recorded with its reason."""

    def __init__(self, title: str, stages: list[str]) -> None:
        self.title = title
        self.stages = stages
        self.results: list[StageResult] = []
        self.started = time.monotonic()

    def progress(self, stage: str, what: str) -> None:
        """`[3/5] gold done in 12.4 s (run 40 s): ...`: what `lake run daily` shows while the chain runs."""
        position = f"[{self.stages.index(stage) + 1}/{len(self.stages)}]"
        get_run_logger().info("%s %s %s (run %.0f s)", position, stage, what, time.monotonic() - self.started)

    def run(self, stage: str, step: Callable[[], StageResult]) -> StageResult:
        self.progress(stage, "started")
        began = time.monotonic()
        try:
            result = step()
        except Exception as exc:
            self.progress(stage, f"failed after {time.monotonic() - began:.1f} s")
            self.fail(stage, exc)
        counts = ", ".join(f"{name} {value:,}" for name, value in result.counts.items())
        self.progress(stage, f"{result.status} in {time.monotonic() - began:.1f} s: {counts or 'no counts'}")
        self.results.append(result)
        return result

    def fail(self, stage: str, error: Exception) -> NoReturn:
        not_run = self.stages[self.stages.index(stage) + 1 :]
        publish_run(FLOW_NAME, self.title, self.results, failure_markdown(stage, error, not_run))
        raise error

    def skip(self, stage: str, reason: str) -> StageResult:
        result = StageResult(stage, "-", status=SKIPPED, details={"reason": reason})
        self.progress(stage, f"skipped: {reason}")
        publish_skipped(result)
        self.results.append(result)
        return result

    def finish(self) -> list[StageResult]:
        publish_run(FLOW_NAME, self.title, self.results)
        return self.results


def run_chain(title: str, steps: list[tuple[str, Callable[[], StageResult]]]) -> list[StageResult]:
    """Runs the stages in order; the first failure is published with the stages it kept from running, then raised."""
    chain = Chain(title, [stage for stage, _ in steps])
    for stage, step in steps:
        chain.run(stage, step)
    return chain.finish()


def train_decision(lake: Lake, run_date: date, ingest_problem: Exception | None) -> Decision:
    """No training after a failed ingest; otherwise orchestration.retrain decides."""
    if ingest_problem is not None:
        return Decision(False, f"not trained after a failed ingest ({ingest_problem})")
    policy, min_new_rows = retrain_policy(lake.conf)
    return should_retrain(policy, min_new_rows, run_date, training_facts(lake))


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
    train and score, in one Spark session.

    A failing `fail` expectation ends the run Failed; so does a file ingest could not land, unless
    orchestration.on_ingest_failure is `continue` (then nothing trains). Training follows orchestration.retrain;
    score uses the champion, and is skipped while there is none."""
    lake = open_lake(env, lake_root)
    day = resolve_run_date(run_date, lake.conf)
    source = landing_source(lake.conf, day, landing)
    chain = Chain(f"daily run {day.isoformat()} from {source}", STAGES)

    ingested = chain.run("ingest", lambda: ingest_with_retries(lake.conf)(lake, [source]))
    problem = ingest_failure(ingested)
    if problem is not None and on_ingest_failure(lake.conf) == "fail":
        chain.fail("ingest", problem)
    chain.run("silver", lambda: silver_task(lake, reprocess_quarantine))
    chain.run("gold", lambda: gold_task(lake, full_refresh))

    decision = train_decision(lake, day, problem)
    if decision.run:
        trained = chain.run("train", lambda: train_task(lake, promote))
        if trained.details.get("mlflow_run_id"):
            tag_training_run(lake, trained.details["mlflow_run_id"], day)
        trained.details["train_reason"] = decision.reason
    else:
        chain.skip("train", decision.reason)

    if has_champion(lake):
        chain.run("score", lambda: score_task(lake))
    else:
        chain.skip(
            "score",
            "no champion model yet: nothing to score with (run `lake train`, or set "
            "orchestration.retrain to a policy that trains)",
        )
    return [result.to_dict() for result in chain.finish()]
