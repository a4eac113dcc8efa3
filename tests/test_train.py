"""`lake train` on a small synthetic gold.trip_features: what a run logs, reproduction, promotion, clear errors."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import mlflow
import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F
from test_train_support import make_lake, synthetic_features, write_params

from lake.catalog import TableMissingError
from pipelines.common import StageError
from pipelines.train import run_train
from pipelines.train.evaluate import METRICS, regression_metrics
from pipelines.train.model import FEATURES_TABLE, Split, load_params, split_frames
from pipelines.train.tracking import CHAMPION, champion_uri, open_tracking

START = dt.date(2019, 1, 1)
DAYS = 30
PER_DAY = 40


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    """One lake with 30 days of trips and one training run (which became the first champion)."""
    root = tmp_path_factory.mktemp("model")
    lake = make_lake(spark, root / "lake", write_params(root / "conf"))
    lake.append(FEATURES_TABLE, synthetic_features(spark, START, DAYS, PER_DAY, seed=7))
    result = run_train(lake)
    tracking = open_tracking(lake)
    return lake, result, tracking, tracking.client.get_run(result.details["mlflow_run_id"])


def test_run_logs_inputs_pinned_to_their_delta_version(trained):
    lake, result, _, run = trained
    assert result.versions == {FEATURES_TABLE: 0}
    assert run.data.tags[f"input.{FEATURES_TABLE}.version"] == "0"
    assert run.data.tags[f"input.{FEATURES_TABLE}.path"] == lake.path(FEATURES_TABLE)
    contexts = sorted(tag.value for d in run.inputs.dataset_inputs for tag in d.tags)
    assert contexts == ["testing", "training"]
    for dataset_input in run.inputs.dataset_inputs:
        source = json.loads(dataset_input.dataset.source)
        assert source == {"path": lake.path(FEATURES_TABLE), "delta_table_version": "0"}


def test_run_splits_by_time_and_logs_counts_params_and_metrics(trained):
    lake, result, _, run = trained
    tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
    features = lake.read(FEATURES_TABLE)
    test_from = dt.date.fromisoformat(tags["split.test_from"])
    assert tags["split.train_from"] == str(START) and test_from == START + dt.timedelta(days=DAYS - 7)
    assert (
        metrics["train_rows"] == features.where(f"pickup_date < '{test_from}'").count() == result.counts["train_rows"]
    )
    assert metrics["test_rows"] == features.where(f"pickup_date >= '{test_from}'").count() == result.counts["test_rows"]
    assert params["regressor.type"] == "gbt" and params["seed"] == "42" and params["split.test_days"] == "7"
    assert "trip_distance" not in params["features.numeric"].split(",")
    for prefix in ("test", "baseline_pair_median_test", "baseline_linear_test"):
        assert {f"{prefix}_{m}" for m in METRICS} <= set(metrics)
    assert metrics["test_rmse"] == pytest.approx(result.details["metrics"]["test_rmse"])
    assert metrics["test_r2"] > 0  # durations depend on the features: the model must explain some of them
    assert metrics["train_seconds"] > 0 and metrics["train_rows_per_second"] > 0


def test_run_logs_plots_and_a_registered_model_with_signature(trained):
    _, result, tracking, run = trained
    artifacts = {a.path for a in tracking.client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {
        "plots/predicted_vs_actual.png",
        "plots/residuals_by_hour.png",
        "plots/feature_importances.png",
    }
    version = tracking.client.get_model_version(tracking.model_name, result.details["model_version"])
    assert version.run_id == run.info.run_id
    info = mlflow.models.get_model_info(f"models:/{tracking.model_name}/{version.version}")
    assert "pair_median_duration" in info.signature.inputs.input_names()
    assert "trip_distance" not in info.signature.inputs.input_names()
    assert info.saved_input_example_info is not None


def test_first_model_becomes_champion(trained):
    _, result, tracking, _ = trained
    assert result.details["promoted"] is True
    champion = tracking.client.get_model_version_by_alias(tracking.model_name, CHAMPION)
    assert str(champion.version) == result.details["model_version"]


def test_reproduce_gets_the_same_metrics_after_new_data_and_fails_once_files_are_vacuumed(trained, tmp_path):
    lake, first, tracking, run = trained
    copy_root = tmp_path / "lake"
    shutil.copytree(lake.root, copy_root)  # this test rewrites the table; the module's lake stays as it was
    copy = make_lake(lake.spark, copy_root, lake.conf.conf_file("model.params"))
    copy.append(FEATURES_TABLE, synthetic_features(lake.spark, START + dt.timedelta(days=DAYS), 5, PER_DAY, seed=8))
    copy.append(FEATURES_TABLE, synthetic_features(lake.spark, START, 3, 10, seed=9, key_prefix="late"))

    result = run_train(copy, reproduce_run_id=run.info.run_id)

    assert result.versions == {FEATURES_TABLE: 0}
    prefixes = ("test", "baseline_pair_median_test", "baseline_linear_test")
    compared = {f"{prefix}_{m}" for prefix in prefixes for m in METRICS}
    assert set(result.details["original_metrics"]) == compared
    reproduced = open_tracking(copy).client.get_run(result.details["mlflow_run_id"])
    assert reproduced.data.tags["reproduces"] == run.info.run_id
    assert reproduced.data.tags[f"input.{FEATURES_TABLE}.version"] == "0"
    for name in compared:
        assert abs(reproduced.data.metrics[name] - run.data.metrics[name]) <= 1e-9, name
    assert (
        reproduced.data.metrics["train_rows"]
        == run.data.metrics["train_rows"]
        < copy.read(FEATURES_TABLE).where(f"pickup_date < '{run.data.tags['split.test_from']}'").count()
    )  # the late rows appended for earlier days are not in version 0

    spark = lake.spark
    copy.overwrite(FEATURES_TABLE, copy.read(FEATURES_TABLE))
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        DeltaTable.forPath(spark, copy.path(FEATURES_TABLE)).vacuum(0)
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    with pytest.raises(StageError, match=rf"{FEATURES_TABLE} at Delta version 0 cannot be reproduced"):
        run_train(copy, reproduce_run_id=run.info.run_id)


def test_promote_keeps_the_champion_when_the_new_model_is_not_better(trained, tmp_path):
    lake, first, tracking, _ = trained
    weak = write_params(tmp_path, regressor={"type": "gbt", "params": {"maxIter": 1, "maxDepth": 1, "maxBins": 32}})
    weak_lake = make_lake(lake.spark, lake.root, weak)

    result = run_train(weak_lake, promote=True)

    run = tracking.client.get_run(result.details["mlflow_run_id"])
    champion = mlflow.spark.load_model(champion_uri(tracking))
    params = load_params(lake)
    test = lake.read(FEATURES_TABLE).where(f"pickup_date >= '{run.data.tags['split.test_from']}'")
    champion_rmse = regression_metrics(champion.transform(test), params["label"])["rmse"]
    assert run.data.metrics["champion_test_rmse"] == pytest.approx(champion_rmse, abs=1e-9)
    assert result.details["promoted"] is (run.data.metrics["test_rmse"] < champion_rmse)
    assert result.details["promoted"] is False  # one depth-1 tree against a boosted ensemble on the same data
    current = tracking.client.get_model_version_by_alias(tracking.model_name, CHAMPION)
    assert str(current.version) == first.details["model_version"] != result.details["model_version"]


def test_missing_table_is_a_clear_error(lake):
    with pytest.raises(TableMissingError, match=FEATURES_TABLE):
        run_train(lake)


def test_empty_table_is_a_clear_error(spark, tmp_path):
    lake = make_lake(spark, tmp_path / "lake", write_params(tmp_path / "conf"))
    lake.append(FEATURES_TABLE, synthetic_features(spark, START, 1, 1, seed=1).limit(0))
    with pytest.raises(StageError, match="has no rows"):
        run_train(lake)


def test_too_small_a_window_names_the_window_and_the_setting(spark, tmp_path):
    lake = make_lake(spark, tmp_path / "lake", write_params(tmp_path / "conf"))
    lake.append(FEATURES_TABLE, synthetic_features(spark, START, 10, 5, seed=3))
    with pytest.raises(StageError, match=r"train window \(pickup_date < 2019-01-04.*has 15 .*split.min_train_rows"):
        run_train(lake)


def test_split_frames_partition_and_order_rows_by_key_whatever_the_input_order(spark, tmp_path):
    params = load_params(make_lake(spark, tmp_path / "lake", write_params(tmp_path / "conf")))
    features = synthetic_features(spark, START, 4, 10, seed=5)
    split = Split(START + dt.timedelta(days=2), START, START + dt.timedelta(days=3))

    def layout(frame):
        train, test = split_frames(frame, split, params)
        return [[row.trip_key for row in part] for part in (train.rdd.glom().collect() + test.rdd.glom().collect())]

    shuffled = features.repartition(3).sortWithinPartitions(F.rand(seed=1))
    assert layout(features.coalesce(1)) == layout(shuffled)
    assert sorted(key for part in layout(shuffled) for key in part) == sorted(r.trip_key for r in features.collect())
