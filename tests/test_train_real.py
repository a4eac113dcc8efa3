"""`lake train` on a small lake built from real TLC samples (bronze -> silver -> gold): monthly windows, label
hygiene, and the log1p target transformed back to minutes in the registered model."""

from __future__ import annotations

import mlflow
import pytest
from pyspark.sql import functions as F
from test_train_support import make_lake, write_params

from pipelines.bronze import run_ingest
from pipelines.gold import run_gold
from pipelines.silver import run_silver
from pipelines.train import run_train
from pipelines.train.model import FEATURES_TABLE, RAW_PREDICTION_COL
from pipelines.train.tracking import champion_uri, open_tracking

MONTHS = ("2019-01", "2019-02", "2019-03")
ROWS_PER_MONTH = 1500  # the samples are in random order: the first rows are a random sample of the month
FLOOR, CAP = 1.0, 180.0


@pytest.fixture(scope="module")
def real_lake(spark, samples, tmp_path_factory):
    """Three real months (1,500 trips each) through every stage, and one training run with two month windows."""
    root = tmp_path_factory.mktemp("real-model")
    landing = root / "landing"
    landing.mkdir()
    for month in MONTHS:
        source = samples / "yellow" / f"yellow_tripdata_sample_{month}.csv"
        lines = source.read_text().splitlines()[: ROWS_PER_MONTH + 1]
        (landing / source.name).write_text("\n".join(lines) + "\n")
    params = write_params(
        root / "conf",
        target="log1p",
        label_bounds={"min_minutes": FLOOR, "max_minutes": CAP},
        regressor={"type": "gbt", "params": {"maxIter": 10, "maxDepth": 4, "maxBins": 270}},
        split={"windows": 2, "window": "month", "test_days": 14, "min_train_rows": 500, "min_test_rows": 200},
    )
    lake = make_lake(spark, root / "lake", params)
    run_ingest(lake, [str(path) for path in sorted(landing.glob("*.csv"))])
    run_silver(lake)
    run_gold(lake)
    result = run_train(lake)
    tracking = open_tracking(lake)
    return lake, result, tracking, tracking.client.get_run(result.details["mlflow_run_id"])


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
