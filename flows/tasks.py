"""One Prefect task per stage: a thin call of pipelines.<stage>.run_<stage>() that publishes the stage's summary.

Each stage module is imported inside its task so that running one stage does not load every stage's
dependencies (Great Expectations, MLflow). Tasks take the run's Lake and return the StageResult (counts and
Delta versions), never DataFrames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from py4j.protocol import Py4JError

from flows.artifacts import publish_failure, publish_stage, web_link
from lake import Conf, Lake
from pipelines.common import StageError, StageResult

# Errors retrying cannot fix: the input is missing or unreadable, or the stage stopped on purpose.
PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def is_transient(error: BaseException | None) -> bool:
    """I/O failures (network, object store, JVM I/O) that a retry may get past."""
    return isinstance(error, (OSError, Py4JError)) and not isinstance(error, PERMANENT_OS_ERRORS)


def retry_on_io_error(_task: Task, _task_run: TaskRun, state: State) -> bool:
    return is_transient(state.data if isinstance(state.data, BaseException) else None)


def run_stage(stage: str, call: Callable[[], StageResult]) -> StageResult:
    """Runs the stage, logs and publishes its summary; a deliberate stop is published before it propagates."""
    logger = get_run_logger()
    try:
        result = call()
    except StageError as exc:
        publish_failure(stage, exc)
        raise
    logger.info("%s %s: counts %s, versions %s", stage, result.status, result.counts, result.versions)
    publish_stage(result)
    return result


# Tasks receive the Lake, which holds a SparkSession: there is nothing to hash, so nothing is cached.
@task(name="ingest", cache_policy=NO_CACHE, retry_condition_fn=retry_on_io_error)
def ingest_task(lake: Lake, paths: list[str]) -> StageResult:
    """Lands new raw files in bronze.trips; files already ingested (same content hash) are skipped."""
    from pipelines.bronze import run_ingest

    logger = get_run_logger()
    return run_stage("ingest", lambda: run_ingest(lake, paths, progress=logger.info))


@task(name="silver", cache_policy=NO_CACHE)
def silver_task(lake: Lake, reprocess_quarantine: bool = False) -> StageResult:
    """Cleans, types, dedupes and validates new bronze rows into silver.trips; failing rows go to quarantine."""
    from pipelines.silver import run_silver

    logger = get_run_logger()
    return run_stage(
        "silver", lambda: run_silver(lake, reprocess_quarantine=reprocess_quarantine, progress=logger.info)
    )


@task(name="gold", cache_policy=NO_CACHE)
def gold_task(lake: Lake, full_refresh: bool = False) -> StageResult:
    """Builds the features and analytics tables from silver.trips."""
    from pipelines.gold import run_gold

    logger = get_run_logger()
    return run_stage("gold", lambda: run_gold(lake, full_refresh=full_refresh, progress=logger.info))


def with_mlflow_ui_link(lake: Lake, result: StageResult) -> StageResult:
    """A local tracking store has no web address: adds the run's page in the MLflow UI (orchestration.mlflow_ui_url,
    served by `make mlflow-ui` over the same store) as details["mlflow_ui_url"], built by Tracking.run_url."""
    ui_url = lake.conf.get("orchestration.mlflow_ui_url")
    run_id = result.details.get("mlflow_run_id")
    if not ui_url or not run_id or web_link(result.details):
        return result
    from pipelines.train.tracking import open_tracking

    # The UI serves the same store: the run's address is the tracking store's run URL with the UI as its server.
    ui = replace(open_tracking(lake), uri=str(ui_url))
    result.details["mlflow_ui_url"] = ui.run_url(run_id)
    return result


@task(name="train", cache_policy=NO_CACHE)
def train_task(lake: Lake, promote: bool = False, reproduce_run_id: str | None = None) -> StageResult:
    """Trains the trip-duration model on pinned gold versions and logs it to MLflow."""
    from pipelines.train import run_train

    def train() -> StageResult:
        return with_mlflow_ui_link(lake, run_train(lake, promote=promote, reproduce_run_id=reproduce_run_id))

    return run_stage("train", train)


@task(name="score", cache_policy=NO_CACHE)
def score_task(lake: Lake, rescore: bool = False) -> StageResult:
    """Scores the trips of gold.trip_features added since the last run (all of them with rescore) with the
    champion model into gold.trip_predictions."""
    from pipelines.score import run_score

    return run_stage("score", lambda: run_score(lake, rescore=rescore))


def ingest_with_retries(conf: Conf) -> Task:
    """The ingest task with orchestration.ingest_retries: re-running is safe, ingestion skips landed files."""
    return ingest_task.with_options(
        retries=int(conf.get("orchestration.ingest_retries", 0)),
        retry_delay_seconds=float(conf.get("orchestration.ingest_retry_delay_seconds", 0)),
    )
