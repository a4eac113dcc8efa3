"""What the `daily` flow decides between stages: stop after a failed ingest or go on, train today or not.

The decisions are pure functions of conf values and a few facts (ingest result, last training, new rows), so they
are tested without Spark or MLflow; gathering the facts (`training_facts`, `has_champion`) is kept apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from py4j.protocol import Py4JError
from pyspark.errors import PySparkException

from lake import Conf, Lake
from lake.errors import ConfigError, StageError
from pipelines.common import StageResult

ON_INGEST_FAILURE = ("fail", "continue")
RETRAIN_POLICIES = ("never", "daily", "weekly", "when_new_rows")
WEEK_DAYS = 7
FEATURES_TABLE = "gold.trip_features"
RUN_DATE_TAG = "orchestration.run_date"  # set on a training run by the daily flow: the date it trained for


class IngestFailed(StageError):
    """Ingest could not land some file(s) and orchestration.on_ingest_failure is `fail`: the run ends Failed."""

    def __init__(self, status: str, problems: list[str], total: int) -> None:
        self.status = status
        self.problems = problems
        super().__init__(
            f"ingest {status}: {len(problems)} of {total} file(s) not ingested: {'; '.join(problems)} "
            "(set orchestration.on_ingest_failure: continue to go on without training)"
        )


def _choice(conf: Conf, key: str, allowed: tuple[str, ...]) -> str:
    value = str(conf.require(key))
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def on_ingest_failure(conf: Conf) -> str:
    """orchestration.on_ingest_failure: `fail` (default) ends the run Failed, `continue` goes on without training."""
    return _choice(conf, "orchestration.on_ingest_failure", ON_INGEST_FAILURE)


def failed_files(result: StageResult) -> list[str]:
    """`<file>: <reason>` for each file the ingest run could not land."""
    files: list[dict[str, Any]] = result.details.get("files") or []
    return [
        f"{entry['source_file']}: {entry.get('reason') or 'failed'}" for entry in files if entry["status"] == "failed"
    ]


def ingest_failure(result: StageResult) -> IngestFailed | None:
    """The error describing a failed or partial ingest, None when every file landed (or was a duplicate)."""
    if result.status not in ("failed", "partial"):
        return None
    problems = failed_files(result) or ["(no file named)"]
    return IngestFailed(result.status, problems, int(result.counts.get("files", len(problems))))


@dataclass(frozen=True)
class TrainingFacts:
    """What the retrain decision needs to know about the last training run, None when there is none yet."""

    last_trained: date | None  # the run date it trained for (its start date when trained outside the flow)
    new_rows: int | None  # gold.trip_features rows added since the version it trained on; None when unknown


@dataclass(frozen=True)
class Decision:
    run: bool
    reason: str


def retrain_policy(conf: Conf) -> tuple[str, int]:
    """orchestration.retrain and orchestration.retrain_min_new_rows."""
    policy = _choice(conf, "orchestration.retrain", RETRAIN_POLICIES)
    min_rows = int(conf.require("orchestration.retrain_min_new_rows"))
    return policy, min_rows


def should_retrain(policy: str, min_new_rows: int, run_date: date, facts: TrainingFacts) -> Decision:
    """Whether the daily run trains.

    never: only `lake train` or the `train` flow train. daily: every run. weekly: 7 days (of run dates) after the
    last training, if rows were added since. when_new_rows: once at least min_new_rows rows were added. Every
    policy but `never` trains when no model was trained yet.
    """
    if policy not in RETRAIN_POLICIES:
        raise ConfigError(f"orchestration.retrain must be one of {', '.join(RETRAIN_POLICIES)}, not {policy!r}")
    if policy == "never":
        return Decision(False, "orchestration.retrain is never: train with `lake train` or the train flow")
    if facts.last_trained is None:
        return Decision(True, "no model trained yet")
    if policy == "daily":
        return Decision(True, "orchestration.retrain is daily")
    new_rows = "unknown" if facts.new_rows is None else f"{facts.new_rows:,}"
    if policy == "when_new_rows":
        if facts.new_rows is None or facts.new_rows >= min_new_rows:
            return Decision(True, f"{new_rows} new row(s) since the last training (threshold {min_new_rows:,})")
        return Decision(False, f"{new_rows} new row(s) since the last training, below {min_new_rows:,}")
    elapsed = (run_date - facts.last_trained).days
    if elapsed < WEEK_DAYS:
        when = f"{elapsed} day(s)" if elapsed >= 0 else f"{-elapsed} day(s) after this run date"
        return Decision(False, f"weekly: last trained for {facts.last_trained.isoformat()} ({when})")
    if facts.new_rows == 0:
        return Decision(False, f"weekly: no new rows since the last training ({facts.last_trained.isoformat()})")
    return Decision(True, f"weekly: last trained for {facts.last_trained.isoformat()}, {elapsed} days ago")


def training_facts(lake: Lake) -> TrainingFacts:
    """The latest run of the lake's MLflow experiment: its run date and the gold.trip_features rows added since."""
    from pipelines.train.tracking import input_tag, open_tracking  # MLflow: imported only when the flow gets here

    tracking = open_tracking(lake)
    runs = tracking.client.search_runs(
        [tracking.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["start_time DESC"],
        max_results=1,
    )
    if not runs:
        return TrainingFacts(None, None)
    last = runs[0]
    tagged = last.data.tags.get(RUN_DATE_TAG)
    if tagged:
        trained = date.fromisoformat(tagged)
    else:
        zone = ZoneInfo(str(lake.conf.require("orchestration.timezone")))
        trained = datetime.fromtimestamp(last.info.start_time / 1000, tz=timezone.utc).astimezone(zone).date()
    version = last.data.tags.get(input_tag(FEATURES_TABLE, "version"))
    return TrainingFacts(trained, rows_added_since(lake, int(version)) if version is not None else None)


def rows_added_since(lake: Lake, version: int) -> int | None:
    """Rows of gold.trip_features now minus at version (Delta answers both counts from its log, no data scan)."""
    try:
        return max(0, lake.read(FEATURES_TABLE).count() - lake.read(FEATURES_TABLE, version=version).count())
    except (PySparkException, Py4JError):  # the version was vacuumed, or the table recreated: unknown
        return None


def tag_training_run(lake: Lake, mlflow_run_id: str, run_date: date) -> None:
    """Records on the MLflow run which run date it trained for: the clock of the weekly policy."""
    from pipelines.train.tracking import open_tracking

    open_tracking(lake).client.set_tag(mlflow_run_id, RUN_DATE_TAG, run_date.isoformat())


def has_champion(lake: Lake) -> bool:
    """True when the registry has a champion version to score with."""
    from pipelines.train.tracking import champion_version, open_tracking

    return champion_version(open_tracking(lake)) is not None
