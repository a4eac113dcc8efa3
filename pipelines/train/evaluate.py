"""Test metrics (in minutes) of the model and its two baselines, per window and aggregated over windows."""

from __future__ import annotations

import math

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake.errors import InputError
from pipelines.common import StageResult
from pipelines.train.model import FEATURES_COL, PREDICTION_COL, TARGET_COL, build_linear, build_preparation
from pipelines.train.params import ModelParams

METRICS = ("rmse", "mae", "r2", "rmsle")
HIGHER_IS_BETTER = {"r2"}
MODEL = "model"
PAIR_MEDIAN = "pair_median"
LINEAR = "linear"
APPROACHES = (MODEL, PAIR_MEDIAN, LINEAR)
PAIR_KEYS = ["pickup_zone_id", "dropoff_zone_id"]
# MLflow metric prefixes: test_rmse for the model, baseline_<name>_test_rmse for the baselines.
PREFIX = {MODEL: "test", PAIR_MEDIAN: "baseline_pair_median_test", LINEAR: "baseline_linear_test"}
AGGREGATES = ("mean", "worst")

Results = dict[str, dict[str, float]]  # approach -> metric -> value


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


def fit_linear(train: DataFrame, params: ModelParams) -> PipelineModel:
    """The linear-regression baseline on one-hot features, fitted on minutes (whatever the model's target)."""
    preparation = build_preparation(params, one_hot=True).fit(train)
    assembled = preparation.transform(train).select(FEATURES_COL, F.col(params.label).cast("double").alias(TARGET_COL))
    return PipelineModel(stages=[*preparation.stages, build_linear(params).fit(assembled)])


def baseline_results(train: DataFrame, test: DataFrame, params: ModelParams) -> Results:
    """Test metrics of the zone-pair median and the linear regression, both trained on the model's train rows."""
    label = params.label
    return {
        PAIR_MEDIAN: regression_metrics(pair_median_predictions(train, test, label), label),
        LINEAR: regression_metrics(fit_linear(train, params).transform(test), label),
    }


def worst(metric: str, values: list[float]) -> float:
    return min(values) if metric in HIGHER_IS_BETTER else max(values)


def aggregate(per_window: list[Results]) -> Results:
    """Mean and worst value over the windows, per approach: {"model": {"rmse_mean": .., "rmse_worst": ..}, ..}."""
    summary: Results = {}
    for approach in per_window[0]:
        summary[approach] = {}
        for metric in METRICS:
            values = [results[approach][metric] for results in per_window]
            summary[approach][f"{metric}_mean"] = sum(values) / len(values)
            summary[approach][f"{metric}_worst"] = worst(metric, values)
    return summary


def flat_metrics(per_window: list[Results]) -> dict[str, float]:
    """MLflow metric names: test_rmse_mean / _worst and window<k>_test_rmse for the model; the same with
    baseline_<name>_test for the baselines."""
    flat = {}
    for approach, values in aggregate(per_window).items():
        flat.update({f"{PREFIX[approach]}_{name}": value for name, value in values.items()})
    for number, results in enumerate(per_window, start=1):
        for approach, metrics in results.items():
            flat.update({f"window{number}_{PREFIX[approach]}_{name}": value for name, value in metrics.items()})
    return flat


SUMMARY_COLUMNS = ("rmse_mean", "rmse_worst", "mae_mean", "rmsle_mean", "r2_mean")
APPROACH_NAMES = {MODEL: "model", PAIR_MEDIAN: "zone-pair median", LINEAR: "linear"}


def metrics_markdown(metrics: dict[str, float]) -> str:
    """The model's and the baselines' test metrics over the windows (mean and worst) as a markdown table: what a
    train summary shows, in the CLI and in the flows' artifacts ('' when the run logged no test metrics)."""
    lines = ["| approach | " + " | ".join(SUMMARY_COLUMNS) + " |", "|---" + "|---:" * len(SUMMARY_COLUMNS) + "|"]
    for approach in APPROACHES:
        values = [metrics.get(f"{PREFIX[approach]}_{column}") for column in SUMMARY_COLUMNS]
        if all(value is not None for value in values):
            lines.append(f"| {APPROACH_NAMES[approach]} | " + " | ".join(f"{value:.3f}" for value in values) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def train_markdown(result: StageResult) -> str:
    """A train StageResult's summary: its counts and versions, then the test metrics over its windows."""
    table = metrics_markdown(result.details.get("metrics") or {})
    windows = ", ".join(result.details.get("windows") or [])
    return result.summary_markdown() + (f"\n\nTest metrics over the windows {windows}:\n\n{table}" if table else "")
