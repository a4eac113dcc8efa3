"""`lake train --reproduce RUN_ID`: retrain from the exact Delta versions, parameters and split of an earlier run."""

from __future__ import annotations

import datetime as dt

import mlflow
from mlflow.exceptions import MlflowException
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame

from lake import Lake
from lake.errors import InputError
from pipelines.common import StageError, StageResult
from pipelines.train.fit import fit_and_evaluate
from pipelines.train.model import FEATURES_TABLE, Split
from pipelines.train.record import log_fitted
from pipelines.train.tracking import PARAMS_ARTIFACT, Tracking, input_tag, log_delta_input

STAGE = "train"
# Metrics are sums over the same rows in the same order, so a reproduction matches to rounding noise at most.
TOLERANCE = 1e-9


def missing_files(lake: Lake, table: str, version: int) -> tuple[list[str], int]:
    """The data files that table's snapshot at version references but storage no longer has, and their total."""
    try:
        files = lake.read(table, version=version).inputFiles()
    except AnalysisException as exc:
        raise StageError(
            f"{table} cannot be read at Delta version {version} (time travel failed: {str(exc).splitlines()[0]}); "
            "the version's log entries are gone, so the run cannot be reproduced"
        ) from exc
    spark = lake.spark
    hadoop_conf = spark._jsc.hadoopConfiguration()
    hadoop_path = spark._jvm.org.apache.hadoop.fs.Path
    gone = [f for f in files if not hadoop_path(f).getFileSystem(hadoop_conf).exists(hadoop_path(f))]
    return gone, len(files)


def pinned_inputs(run: mlflow.entities.Run) -> dict[str, int]:
    """table -> Delta version from the run's input.<table>.version tags."""
    versions = {}
    for key, value in run.data.tags.items():
        if key.startswith("input.") and key.endswith(".version"):
            versions[key.removeprefix("input.").removesuffix(".version")] = int(value)
    return versions


def read_pinned(lake: Lake, table: str, version: int) -> DataFrame:
    """The table as of version, after checking that every data file of that version still exists."""
    gone, total = missing_files(lake, table, version)
    if gone:
        raise StageError(
            f"{table} at Delta version {version} cannot be reproduced: {len(gone)} of its {total} data file(s) "
            f"no longer exist (removed by VACUUM?), e.g. {gone[0]}"
        )
    return lake.read(table, version=version)


def reproduce_run(lake: Lake, tracking: Tracking, source_run_id: str, run_id: str) -> StageResult:
    """Retrains as source_run_id did; raises StageError if an input version is gone or a metric differs."""
    try:
        source = tracking.client.get_run(source_run_id)
    except MlflowException as exc:
        raise InputError(f"MLflow run {source_run_id} not found in {tracking.uri}") from exc
    versions = pinned_inputs(source)
    if FEATURES_TABLE not in versions:
        raise InputError(f"MLflow run {source_run_id} has no {input_tag(FEATURES_TABLE, 'version')} tag to reproduce")
    params = mlflow.artifacts.load_dict(f"{source.info.artifact_uri}/{PARAMS_ARTIFACT}")
    tags = source.data.tags
    split = Split(
        dt.date.fromisoformat(tags["split.test_from"]),
        dt.date.fromisoformat(tags["split.train_from"]),
        dt.date.fromisoformat(tags["split.test_to"]),
    )
    version = versions[FEATURES_TABLE]
    fitted = fit_and_evaluate(read_pinned(lake, FEATURES_TABLE, version), split, params)
    expected = {name: source.data.metrics.get(name) for name in fitted.metrics}
    differences = {
        name: abs(value - expected[name]) if expected[name] is not None else float("inf")
        for name, value in fitted.metrics.items()
    }
    matched = all(diff <= TOLERANCE for diff in differences.values())
    try:
        with mlflow.start_run(experiment_id=tracking.experiment_id, run_name=run_id) as run:
            mlflow.set_tags({"stage_run_id": run_id, "reproduces": source_run_id, "reproduced": str(matched).lower()})
            log_delta_input(lake, FEATURES_TABLE, version, fitted.train, context="training")
            log_delta_input(lake, FEATURES_TABLE, version, fitted.test, context="testing")
            log_fitted(fitted, params)
            mlflow.log_metric("reproduction_max_abs_diff", max(differences.values()))
    finally:
        fitted.release()
    if not matched:
        worst = {name: diff for name, diff in differences.items() if diff > TOLERANCE}
        raise StageError(f"run {source_run_id} was not reproduced (MLflow run {run.info.run_id}): differences {worst}")
    return StageResult(
        STAGE,
        run_id,
        counts={"train_rows": fitted.train_rows, "test_rows": fitted.test_rows},
        versions={FEATURES_TABLE: version},
        details={
            "mlflow_run_id": run.info.run_id,
            "mlflow_run_url": tracking.run_url(run.info.run_id),
            "reproduced_run_id": source_run_id,
            "metrics": fitted.metrics,
            "original_metrics": expected,
            "max_abs_diff": max(differences.values()),
            "model_name": tracking.model_name,
            "model_version": None,
            "promoted": False,
        },
    )
