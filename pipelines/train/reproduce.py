"""`lake train --reproduce RUN_ID`: re-evaluate an earlier run from its Delta version, parameters and windows."""

from __future__ import annotations

import mlflow
from mlflow.exceptions import MlflowException
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame

from lake import Lake
from lake.errors import InputError
from pipelines.common import StageError, StageResult
from pipelines.train.fit import evaluate_windows
from pipelines.train.model import FEATURES_TABLE
from pipelines.train.params import ModelParams
from pipelines.train.record import WINDOWS_TAG, log_run
from pipelines.train.tracking import PARAMS_ARTIFACT, Tracking, input_tag, log_delta_input
from pipelines.train.windows import Window, hygiene_counts, labelled, test_span, windows_from_tag

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


def recorded_windows(run: mlflow.entities.Run) -> list[Window]:
    """The run's evaluation windows (its split.windows tag)."""
    if WINDOWS_TAG not in run.data.tags:
        raise InputError(
            f"MLflow run {run.info.run_id} has no {WINDOWS_TAG} tag: it predates rolling-window evaluation and "
            "cannot be reproduced by this version"
        )
    return windows_from_tag(run.data.tags[WINDOWS_TAG])


def reproduce_run(lake: Lake, tracking: Tracking, source_run_id: str, run_id: str) -> StageResult:
    """Re-evaluates source_run_id's windows; raises StageError if an input version is gone or a metric differs.
    A tuned run is reproduced with its winning parameters (what it recorded), not by tuning again."""
    try:
        source = tracking.client.get_run(source_run_id)
    except MlflowException as exc:
        raise InputError(f"MLflow run {source_run_id} not found in {tracking.uri}") from exc
    versions = pinned_inputs(source)
    if FEATURES_TABLE not in versions:
        raise InputError(f"MLflow run {source_run_id} has no {input_tag(FEATURES_TABLE, 'version')} tag to reproduce")
    raw = mlflow.artifacts.load_dict(f"{source.info.artifact_uri}/{PARAMS_ARTIFACT}")
    params = ModelParams.from_dict(raw, source=f"run {source_run_id} {PARAMS_ARTIFACT}")
    windows = recorded_windows(source)
    version = versions[FEATURES_TABLE]
    rows = labelled(read_pinned(lake, FEATURES_TABLE, version), params)
    evaluation = evaluate_windows(rows, windows, params)
    expected = {name: source.data.metrics.get(name) for name in evaluation.metrics}
    differences = {
        name: abs(value - expected[name]) if expected[name] is not None else float("inf")
        for name, value in evaluation.metrics.items()
    }
    matched = all(diff <= TOLERANCE for diff in differences.values())
    try:
        with mlflow.start_run(experiment_id=tracking.experiment_id, run_name=run_id) as run:
            mlflow.set_tags({"stage_run_id": run_id, "reproduces": source_run_id, "reproduced": str(matched).lower()})
            log_delta_input(lake, FEATURES_TABLE, version, test_span(rows, windows), "testing", evaluation.test_rows)
            log_run(evaluation, params, hygiene_counts(rows, params))
            mlflow.log_metric("reproduction_max_abs_diff", max(differences.values()))
    finally:
        evaluation.release()
    if not matched:
        worst = {name: diff for name, diff in differences.items() if diff > TOLERANCE}
        raise StageError(f"run {source_run_id} was not reproduced (MLflow run {run.info.run_id}): differences {worst}")
    return StageResult(
        STAGE,
        run_id,
        counts={"windows": len(windows), "test_rows": sum(w.test_rows for w in evaluation.windows)},
        versions={FEATURES_TABLE: version},
        details={
            "mlflow_run_id": run.info.run_id,
            "mlflow_run_url": tracking.run_url(run.info.run_id),
            "reproduced_run_id": source_run_id,
            "metrics": evaluation.metrics,
            "original_metrics": expected,
            "max_abs_diff": max(differences.values()),
            "model_name": tracking.model_name,
            "model_version": None,
            "promoted": False,
        },
    )
