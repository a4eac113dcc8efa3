"""Batch inference: the registry's champion model predicts the duration of every trip not scored yet."""

from __future__ import annotations

import mlflow
from pyspark.sql import functions as F

from lake import Lake
from lake.catalog import schema_of
from pipelines.common import StageError, StageResult, new_run_id
from pipelines.train.evaluate import clipped_prediction
from pipelines.train.tracking import CHAMPION, champion_uri, champion_version, open_tracking

STAGE = "score"
FEATURES_TABLE = "gold.trip_features"
PREDICTIONS_TABLE = "gold.trip_predictions"

# gold.trip_predictions: one row per scored trip; a trip is scored once, by the champion of that moment.
TRIP_PREDICTIONS = schema_of("gold.trip_predictions")


def run_score(lake: Lake, run_id: str | None = None) -> StageResult:
    """Appends predictions of the champion model for the trips of gold.trip_features that have none yet."""
    run_id = run_id or new_run_id(STAGE)
    tracking = open_tracking(lake)
    champion = champion_version(tracking)
    if champion is None:
        raise StageError(
            f"no '{CHAMPION}' version of model {tracking.model_name} in {tracking.uri}: run `lake train` first"
        )
    features = lake.read(FEATURES_TABLE, version=lake.version(FEATURES_TABLE))
    if lake.exists(PREDICTIONS_TABLE):
        features = features.join(lake.read(PREDICTIONS_TABLE).select("trip_key"), on="trip_key", how="left_anti")
    pending = features.persist()
    try:
        candidates = pending.count()
        version = lake.version(PREDICTIONS_TABLE)
        if candidates:
            model = mlflow.spark.load_model(champion_uri(tracking))
            predictions = model.transform(pending).select(
                "trip_key",
                "pickup_ts",
                clipped_prediction().alias("predicted_duration_min"),
                F.lit(tracking.model_name).alias("model_name"),
                F.lit(str(champion.version)).alias("model_version"),
                F.current_timestamp().alias("scored_at"),
                F.lit(run_id).alias("_run_id"),
                "pickup_date",
            )
            version = lake.append(PREDICTIONS_TABLE, predictions, user_metadata=run_id)
    finally:
        pending.unpersist()
    return StageResult(
        STAGE,
        run_id,
        counts={"scored": candidates},
        versions={PREDICTIONS_TABLE: version},
        details={
            "model_name": tracking.model_name,
            "model_version": str(champion.version),
            "model_run_id": champion.run_id,
        },
    )
