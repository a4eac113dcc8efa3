"""Test-window metrics (in minutes) of the model and of its two baselines."""

from __future__ import annotations

import math
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake.errors import InputError
from pipelines.train.model import PREDICTION_COL, build_linear_pipeline

METRICS = ("rmse", "mae", "r2", "rmsle")
MODEL = "model"
PAIR_MEDIAN = "pair_median"
LINEAR = "linear"
PAIR_KEYS = ["pickup_zone_id", "dropoff_zone_id"]


def clipped_prediction(column: str = PREDICTION_COL) -> F.Column:
    """A duration cannot be negative: regressors may extrapolate below 0, so predictions are floored at 0."""
    return F.greatest(F.col(column), F.lit(0.0))


def regression_metrics(predictions: DataFrame, label: str) -> dict[str, float]:
    """RMSE, MAE, R2 and RMSLE of the (clipped) prediction column against label, in one pass."""
    error = clipped_prediction() - F.col(label)
    log_error = F.log1p(clipped_prediction()) - F.log1p(F.greatest(F.col(label), F.lit(0.0)))
    row = predictions.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(error * error).alias("sse"),
        F.sum(F.abs(error)).alias("sae"),
        F.sum(log_error * log_error).alias("ssle"),
        F.sum(label).alias("sy"),
        F.sum(F.col(label) * F.col(label)).alias("syy"),
    ).first()
    n = row["n"]
    if not n:
        raise InputError("no predictions to evaluate")
    total = row["syy"] - row["sy"] * row["sy"] / n  # sum of squares around the mean, in the same single pass
    return {
        "rmse": math.sqrt(row["sse"] / n),
        "mae": row["sae"] / n,
        "r2": 1.0 - row["sse"] / total if total > 0 else float("nan"),
        "rmsle": math.sqrt(row["ssle"] / n),
    }


def pair_median_predictions(train: DataFrame, test: DataFrame, label: str) -> DataFrame:
    """Baseline: the median training-window duration of the trip's zone pair (global median for unseen pairs)."""
    median = F.percentile(F.col(label), F.lit(0.5))
    global_median = train.agg(median.alias("m")).first()["m"]
    pair_medians = train.groupBy(*PAIR_KEYS).agg(median.alias("pair_median"))
    return test.join(pair_medians, on=PAIR_KEYS, how="left").withColumn(
        PREDICTION_COL, F.coalesce(F.col("pair_median"), F.lit(float(global_median)))
    )


def evaluate_all(
    model: PipelineModel, train: DataFrame, test: DataFrame, params: dict[str, Any]
) -> tuple[dict[str, dict[str, float]], DataFrame]:
    """Metrics per approach (model, pair_median, linear) on the test window, and the model's test predictions
    (persisted: the plots read them again)."""
    label = params["label"]
    predictions = (
        model.transform(test).select("trip_key", "pickup_date", "pickup_hour", label, PREDICTION_COL).persist()
    )
    linear = build_linear_pipeline(params).fit(train)
    results = {
        MODEL: regression_metrics(predictions, label),
        PAIR_MEDIAN: regression_metrics(pair_median_predictions(train, test, label), label),
        LINEAR: regression_metrics(linear.transform(test), label),
    }
    return results, predictions


def flat_metrics(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """MLflow metric names: test_rmse for the model, baseline_<name>_test_rmse for the baselines."""
    flat = {}
    for approach, metrics in results.items():
        prefix = "test" if approach == MODEL else f"baseline_{approach}_test"
        flat.update({f"{prefix}_{name}": value for name, value in metrics.items()})
    return flat
