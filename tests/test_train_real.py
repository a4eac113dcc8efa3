"""`lake train` on a small lake built from real TLC samples (bronze -> silver -> gold): monthly windows, label
hygiene, and the log1p target transformed back to minutes in the registered model."""

from __future__ import annotations

import mlflow
import pytest
from pyspark.sql import functions as F
from real_lake import LABEL_CAP, LABEL_FLOOR

from pipelines.train.model import FEATURES_TABLE, RAW_PREDICTION_COL
from pipelines.train.tracking import champion_uri

FLOOR, CAP = LABEL_FLOOR, LABEL_CAP


@pytest.fixture(scope="module")
def real_lake(real_sample_lake):
    """The suite's real-sample lake (tests/real_lake.py): three real months (1,500 trips each) through every stage,
    and its one training run with two month windows, a log1p target and label bounds."""
    shared = real_sample_lake
    return shared.lake, shared.train, shared.tracking, shared.run


def test_windows_are_the_last_two_months(real_lake):
    _, result, _, run = real_lake
    assert result.details["windows"] == ["2019-02-01..2019-02-28", "2019-03-01..2019-03-31"]
    assert run.data.tags["split.first_test_day"] == "2019-02-01"


def test_out_of_bounds_labels_are_counted_kept_out_of_training_and_kept_in_test(real_lake):
    lake, result, _, run = real_lake
    labelled = lake.read(FEATURES_TABLE).where(F.col("duration_min").isNotNull())
    inside = F.col("duration_min").between(FLOOR, CAP)
    under = labelled.where(F.col("duration_min") < FLOOR).count()
    assert under > 0  # real data has sub-minute "trips"
    assert result.counts["excluded_under_floor"] == run.data.metrics["excluded_under_floor_rows"] == under
    assert result.counts["excluded_over_cap"] == labelled.where(F.col("duration_min") > CAP).count()
    january = labelled.where(F.col("pickup_date") < "2019-02-01")
    assert run.data.metrics["window1_train_rows"] == january.where(inside).count() < january.count()
    february = labelled.where(F.col("pickup_date").between("2019-02-01", "2019-02-28")).count()
    assert run.data.metrics["window1_test_rows"] == february  # test metrics see every labelled trip
    assert result.counts["train_rows"] == labelled.where(inside).count()


def test_log1p_model_predicts_minutes_and_beats_the_linear_baseline_on_rmsle(real_lake):
    lake, _, tracking, run = real_lake
    metrics = run.data.metrics
    assert metrics["test_r2_worst"] > 0
    assert metrics["test_rmsle_mean"] < metrics["baseline_linear_test_rmsle_mean"]
    march = lake.read(FEATURES_TABLE).where(F.col("pickup_date") >= "2019-03-01")
    scored = mlflow.spark.load_model(champion_uri(tracking)).transform(march)
    row = scored.agg(
        F.max(F.abs(F.expm1(RAW_PREDICTION_COL) - F.col("prediction"))).alias("transform_error"),
        F.median("prediction").alias("median_prediction"),
        F.median("duration_min").alias("median_duration"),
    ).first()
    assert row["transform_error"] < 1e-9
    assert 0.5 * row["median_duration"] < row["median_prediction"] < 2 * row["median_duration"]  # minutes, not logs
