"""`run_train`: train on the current gold.trip_features version, log everything to MLflow, register, promote."""

from __future__ import annotations

from typing import Any

import mlflow
import pyspark
from mlflow.models import infer_signature

from lake import Lake
from pipelines.common import StageResult, new_run_id
from pipelines.train.evaluate import regression_metrics
from pipelines.train.fit import Fitted, fit_and_evaluate
from pipelines.train.model import FEATURES_TABLE, choose_split, feature_columns, load_params
from pipelines.train.record import log_fitted
from pipelines.train.reproduce import reproduce_run
from pipelines.train.tracking import (
    MODEL_ARTIFACT,
    Tracking,
    champion_uri,
    champion_version,
    log_delta_input,
    open_tracking,
    set_champion,
)

STAGE = "train"
INPUT_EXAMPLE_ROWS = 5
# The model's own Python requirements, stated so MLflow does not spend a subprocess inferring them.
PIP_REQUIREMENTS = [f"pyspark=={pyspark.__version__}", f"mlflow=={mlflow.__version__}"]


def log_model(fitted: Fitted, params: dict[str, Any], tracking: Tracking) -> str:
    """Logs the Spark pipeline with a signature and an input example, registers it; returns the model version."""
    columns = feature_columns(params)
    example = fitted.test.select(*columns).dropna().limit(INPUT_EXAMPLE_ROWS)
    example_pdf = example.toPandas()
    output_pdf = fitted.model.transform(example).select("prediction").toPandas()
    info = mlflow.spark.log_model(
        fitted.model,
        MODEL_ARTIFACT,
        signature=infer_signature(example_pdf, output_pdf),
        input_example=example_pdf,
        registered_model_name=tracking.model_name,
        pip_requirements=PIP_REQUIREMENTS,
    )
    return str(info.registered_model_version)


def decide_champion(
    fitted: Fitted, params: dict[str, Any], tracking: Tracking, version: str, promote: bool
) -> dict[str, Any]:
    """Moves the champion alias to version if there is none yet, or if promote and it beats the champion's RMSE
    on this run's own test window; records both RMSEs in the run."""
    current = champion_version(tracking)
    if current is None:
        set_champion(tracking, version)
        decision = {"promoted": True, "reason": "first registered model: became champion"}
    elif not promote:
        decision = {"promoted": False, "reason": f"champion stays version {current.version} (--promote not given)"}
    else:
        champion = mlflow.spark.load_model(champion_uri(tracking))
        champion_rmse = regression_metrics(champion.transform(fitted.test), params["label"])["rmse"]
        new_rmse = fitted.results["model"]["rmse"]
        mlflow.log_metric("champion_test_rmse", champion_rmse)
        mlflow.set_tag("champion.compared_version", current.version)
        beats = new_rmse < champion_rmse
        if beats:
            set_champion(tracking, version)
        decision = {
            "promoted": beats,
            "champion_rmse": champion_rmse,
            "reason": f"test RMSE {new_rmse:.4f} vs champion version {current.version} {champion_rmse:.4f} "
            f"on the same window: {'promoted' if beats else 'not better, champion kept'}",
        }
    mlflow.set_tags({"champion.promoted": str(decision["promoted"]).lower(), "champion.reason": decision["reason"]})
    return decision


def run_train(
    lake: Lake, promote: bool = False, reproduce_run_id: str | None = None, run_id: str | None = None
) -> StageResult:
    """Trains the trip-duration model on gold.trip_features (or reproduces an earlier MLflow run exactly)."""
    run_id = run_id or new_run_id(STAGE)
    if reproduce_run_id:
        return reproduce_run(lake, open_tracking(lake), reproduce_run_id, run_id)
    params = load_params(lake)
    lake.read(FEATURES_TABLE)  # a missing table fails here, before anything is created in MLflow
    version = lake.version(FEATURES_TABLE)
    features = lake.read(FEATURES_TABLE, version=version)  # pinned: a concurrent append cannot leak in
    fitted = fit_and_evaluate(features, choose_split(features, params), params)
    tracking = open_tracking(lake)
    try:
        with mlflow.start_run(experiment_id=tracking.experiment_id, run_name=run_id) as run:
            mlflow.set_tag("stage_run_id", run_id)
            log_delta_input(lake, FEATURES_TABLE, version, fitted.train, context="training")
            log_delta_input(lake, FEATURES_TABLE, version, fitted.test, context="testing")
            log_fitted(fitted, params)
            model_version = log_model(fitted, params, tracking)
            decision = decide_champion(fitted, params, tracking, model_version, promote)
    finally:
        fitted.release()
    return StageResult(
        STAGE,
        run_id,
        counts={"train_rows": fitted.train_rows, "test_rows": fitted.test_rows},
        versions={FEATURES_TABLE: version},
        details={
            "mlflow_run_id": run.info.run_id,
            "mlflow_run_url": tracking.run_url(run.info.run_id),
            "metrics": fitted.metrics,
            "model_name": tracking.model_name,
            "model_version": model_version,
            "train_seconds": fitted.train_seconds,
            **decision,
        },
    )
