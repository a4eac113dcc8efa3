"""Batch inference: the registry's champion predicts the duration of the trips added since the last scoring run.

What a run reads follows new data: the days of gold.trip_features written after the `score` watermark (its change
data feed), and within them only the trips without a prediction yet. A trip is scored once, by the champion of
that moment: a new champion scores the new trips only, unless `rescore` asks to re-predict every trip. Writes are
a MERGE by trip_key (insert if absent; update too when rescoring), committed before the watermark moves, so a
rerun after a crash anywhere in between scores each trip exactly once.
"""

from __future__ import annotations

from datetime import date

from pyspark.errors import AnalysisException
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake import Lake
from lake.catalog import schema_of
from pipelines.common import StageError, StageResult, materialize, new_run_id
from pipelines.days import day_predicate, distinct_days
from pipelines.train.evaluate import clipped_prediction
from pipelines.train.tracking import CHAMPION, Tracking, champion_model, champion_version, open_tracking

STAGE = "score"
CONSUMER = "score"
FEATURES_TABLE = "gold.trip_features"
PREDICTIONS_TABLE = "gold.trip_predictions"

# gold.trip_predictions: one row per scored trip; a trip is scored once, by the champion of that moment.
TRIP_PREDICTIONS = schema_of("gold.trip_predictions")


def days_to_score(lake: Lake, current: int, rescore: bool) -> tuple[set[date] | None, str]:
    """The pickup days whose features changed after the watermark (None: every day), and why."""
    watermark = lake.watermark(CONSUMER, FEATURES_TABLE)
    if rescore:
        return None, "rescore requested: every trip, with the current champion"
    if watermark is None:
        return None, "first run"
    if watermark > current:
        return None, f"{FEATURES_TABLE} is at version {current}, behind the watermark {watermark} (table recreated)"
    if watermark == current:
        return set(), f"{FEATURES_TABLE} unchanged since version {watermark}"
    try:
        changed = lake.read_changes(FEATURES_TABLE, watermark, current)
        days = {day for day in distinct_days(changed) if day is not None}
    except AnalysisException:  # change files vacuumed, or the feed was off for some versions
        return None, "change feed unavailable: every day checked"
    return days, f"{FEATURES_TABLE} versions {watermark + 1}..{current}"


def unscored(lake: Lake, features: DataFrame, days: set[date] | None) -> DataFrame:
    """The trips of features (already limited to days) without a prediction; the anti-join reads those days only."""
    if not lake.exists(PREDICTIONS_TABLE):
        return features
    scored = lake.read(PREDICTIONS_TABLE)
    if days is not None:
        scored = scored.where(day_predicate(days))
    return features.join(scored.select("trip_key"), on="trip_key", how="left_anti")


def predict(model: PipelineModel, tracking: Tracking, version: str, trips: DataFrame, run_id: str) -> DataFrame:
    """gold.trip_predictions rows: the model's clipped prediction for each trip, with the model that made it."""
    return model.transform(trips).select(
        "trip_key",
        "pickup_ts",
        clipped_prediction().alias("predicted_duration_min"),
        F.lit(tracking.model_name).alias("model_name"),
        F.lit(version).alias("model_version"),
        F.current_timestamp().alias("scored_at"),
        F.lit(run_id).alias("_run_id"),
        "pickup_date",
    )


def run_score(lake: Lake, run_id: str | None = None, rescore: bool = False) -> StageResult:
    """Merges the champion's predictions for the trips of gold.trip_features added since the last run (every trip
    with rescore) into gold.trip_predictions, then moves the `score` watermark."""
    run_id = run_id or new_run_id(STAGE)
    tracking = open_tracking(lake)
    champion = champion_version(tracking)
    if champion is None:
        raise StageError(
            f"no '{CHAMPION}' version of model {tracking.model_name} in {tracking.uri}: run `lake train` first"
        )
    lake.read(FEATURES_TABLE)  # a missing table fails here, naming it
    current = lake.version(FEATURES_TABLE)
    days, reason = days_to_score(lake, current, rescore)
    version = lake.version(PREDICTIONS_TABLE)
    candidates = 0
    if days is None or days:
        features = lake.read(FEATURES_TABLE, version=current)
        if days is not None:
            features = features.where(day_predicate(days))
        pending = materialize(features if rescore else unscored(lake, features, days))
        try:
            candidates = pending.count()
            if candidates:
                target = day_predicate(days, "t.pickup_date") if days is not None else None
                with champion_model(lake, tracking) as model:  # its files stay until the merge has read them
                    predictions = predict(model, tracking, str(champion.version), pending, run_id)
                    merged = lake.merge(
                        PREDICTIONS_TABLE, predictions, ["trip_key"], update_matched=rescore, target_filter=target
                    )
                version = merged["version"]
        finally:
            del pending  # a local checkpoint: its blocks go with the frame
    lake.set_watermark(CONSUMER, FEATURES_TABLE, current)
    counts = {"scored": candidates} if days is None else {"scored": candidates, "days_read": len(days)}
    return StageResult(
        STAGE,
        run_id,
        counts=counts,
        versions={FEATURES_TABLE: current, PREDICTIONS_TABLE: version},
        details={
            "model_name": tracking.model_name,
            "model_version": str(champion.version),
            "model_run_id": champion.run_id,
            "mode": "rescore" if rescore else ("full" if days is None else "incremental"),
            "reason": reason,
        },
    )
