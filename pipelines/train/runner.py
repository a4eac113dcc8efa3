"""`run_train`: evaluate on rolling windows, fit on every labelled row, log to MLflow, register, promote."""

from __future__ import annotations

import mlflow
import pyspark
from mlflow.models import infer_signature
from pyspark.sql import DataFrame

from lake import Lake
from pipelines.common import StageResult, new_run_id
from pipelines.train.evaluate import MODEL
from pipelines.train.fit import Evaluation, FitResult, evaluate_windows, fit_final
from pipelines.train.model import FEATURES_TABLE, PREDICTION_COL
from pipelines.train.params import ModelParams, load_params
from pipelines.train.promote import DECISION_METRIC, champion_score, decide_and_register
from pipelines.train.record import log_candidate, log_run, log_tuning
from pipelines.train.reproduce import reproduce_run
from pipelines.train.tracking import MODEL_ARTIFACT, log_delta_input, model_staging, open_tracking
from pipelines.train.tune import tune as tune_grid
from pipelines.train.windows import choose_windows, hygiene_counts, in_bounds, labelled, test_span

STAGE = "train"
INPUT_EXAMPLE_ROWS = 5
# The model's own Python requirements, stated so MLflow does not spend a subprocess inferring them.
PIP_REQUIREMENTS = [f"pyspark=={pyspark.__version__}", f"mlflow=={mlflow.__version__}"]


def log_model(lake: Lake, final: FitResult, rows: DataFrame, params: ModelParams) -> str:
    """Logs the Spark pipeline with a signature and an input example (not registered yet); returns its URI. On a
    cluster, Spark writes the model's files where the driver can read them back for MLflow (model_staging)."""
    example = rows.select(*params.features).dropna().limit(INPUT_EXAMPLE_ROWS)
    example_pdf = example.toPandas()  # five rows
    output_pdf = final.model.transform(example).select(PREDICTION_COL).toPandas()
    with model_staging(lake, "train") as (staging, _):
        info = mlflow.spark.log_model(
            final.model,
            MODEL_ARTIFACT,
            signature=infer_signature(example_pdf, output_pdf),
            input_example=example_pdf,
            pip_requirements=PIP_REQUIREMENTS,
            dfs_tmpdir=staging,
        )
    return info.model_uri


def run_train(
    lake: Lake,
    promote: bool = False,
    reproduce_run_id: str | None = None,
    run_id: str | None = None,
    tune: bool = False,
) -> StageResult:
    """Trains the trip-duration model on gold.trip_features (or reproduces an earlier MLflow run exactly)."""
    run_id = run_id or new_run_id(STAGE)
    if reproduce_run_id:
        return reproduce_run(lake, open_tracking(lake), reproduce_run_id, run_id)
    params = load_params(lake).resolved(lake.spark.sparkContext.defaultParallelism)
    lake.read(FEATURES_TABLE)  # a missing table fails here, before anything is created in MLflow
    version = lake.version(FEATURES_TABLE)
    rows = labelled(lake.read(FEATURES_TABLE, version=version), params)  # pinned: appends cannot leak in
    windows = choose_windows(rows, params)
    tracking = open_tracking(lake)
    evaluation = None
    with mlflow.start_run(experiment_id=tracking.experiment_id, run_name=run_id) as run:
        try:
            mlflow.set_tags({"stage_run_id": run_id, "tuned": str(tune).lower()})
            if tune:
                tuned = tune_grid(rows, windows[0].test_from, params, log_candidate)
                log_tuning(tuned)
                params = tuned.params
            evaluation = evaluate_windows(rows, windows, params)
            final = fit_final(rows, params)
            hygiene = hygiene_counts(rows, params)
            training, testing = rows.where(in_bounds(params)), test_span(rows, windows)
            log_delta_input(lake, FEATURES_TABLE, version, training, "training", final.rows)
            log_delta_input(lake, FEATURES_TABLE, version, testing, "testing", evaluation.test_rows)
            log_run(evaluation, params, hygiene, final)
            model_uri = log_model(lake, final, rows, params)
            new_score = evaluation.summary[MODEL][DECISION_METRIC]
            decision = decide_and_register(
                tracking,
                model_uri,
                new_score,
                promote,
                lambda current: champion_score(rows, windows, params, evaluation, tracking, current),
            )
        finally:
            if evaluation is not None:
                evaluation.release()
    return StageResult(
        STAGE,
        run_id,
        counts={
            "train_rows": final.rows,
            "excluded_under_floor": hygiene["under_floor"],
            "excluded_over_cap": hygiene["over_cap"],
            "windows": len(windows),
            "test_rows": evaluation.test_rows,
        },
        versions={FEATURES_TABLE: version},
        details={
            "mlflow_run_id": run.info.run_id,
            "mlflow_run_url": tracking.run_url(run.info.run_id),
            "windows": [w.window.name for w in evaluation.windows],
            "metrics": summary_metrics(evaluation),
            "model_name": tracking.model_name,
            "train_seconds": final.seconds,
            "train_rows_per_second": final.rows_per_second,
            "params": params.to_dict(),
            **decision,
        },
    )


def summary_metrics(evaluation: Evaluation) -> dict[str, float]:
    """The aggregates (mean and worst over the windows) of the model and the baselines, for summaries."""
    return {name: value for name, value in evaluation.metrics.items() if not name.startswith("window")}
