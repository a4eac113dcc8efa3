"""`lake train` on a small synthetic gold.trip_features: what a run logs, windows, reproduction, tuning, errors."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil

import mlflow
import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F
from test_train_support import make_lake, synthetic_features, write_params

from cli.orchestrate import print_results
from lake.catalog import TableMissingError
from pipelines.common import StageError
from pipelines.train import run_train
from pipelines.train.evaluate import METRICS, train_markdown
from pipelines.train.model import FEATURES_TABLE
from pipelines.train.params import load_params
from pipelines.train.tracking import CHAMPION, open_tracking
from pipelines.train.windows import Window, stable, train_rows

START = dt.date(2019, 1, 1)
DAYS = 30
PER_DAY = 40
PREFIXES = ("test", "baseline_pair_median_test", "baseline_linear_test")
# write_params: two 7-day windows at the end of the data
WINDOWS = [
    Window(START + dt.timedelta(days=DAYS - 14), START + dt.timedelta(days=DAYS - 8)),
    Window(START + dt.timedelta(days=DAYS - 7), START + dt.timedelta(days=DAYS - 1)),
]


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
    features = lake.read(FEATURES_TABLE)
    tested = [features.where(F.col("pickup_date").between(w.test_from, w.test_to)).count() for w in WINDOWS]
    expected_rows = {"training": features.count(), "testing": sum(tested)}  # every label is inside the bounds
    for dataset_input in run.inputs.dataset_inputs:
        source = json.loads(dataset_input.dataset.source)
        assert source == {"path": lake.path(FEATURES_TABLE), "delta_table_version": "0"}
        context = dataset_input.tags[0].value
        assert json.loads(dataset_input.dataset.profile) == {"approx_count": expected_rows[context]}


def test_each_window_trains_on_every_earlier_day_and_tests_on_its_days(trained):
    lake, result, _, run = trained
    metrics, features = run.data.metrics, lake.read(FEATURES_TABLE)
    assert result.details["windows"] == [w.name for w in WINDOWS]
    assert json.loads(run.data.tags["split.windows"]) == [[str(w.test_from), str(w.test_to)] for w in WINDOWS]
    for number, window in enumerate(WINDOWS, start=1):
        before = features.where(F.col("pickup_date") < F.lit(window.test_from)).count()
        inside = features.where(F.col("pickup_date").between(window.test_from, window.test_to)).count()
        assert (metrics[f"window{number}_train_rows"], metrics[f"window{number}_test_rows"]) == (before, inside)
    assert metrics["train_rows"] == features.count() == result.counts["train_rows"]  # the final fit: every row


def test_run_logs_mean_and_worst_over_the_windows_for_model_and_baselines(trained):
    _, result, _, run = trained
    metrics, params = run.data.metrics, run.data.params
    for prefix in PREFIXES:
        for metric in METRICS:
            per_window = [metrics[f"window{n}_{prefix}_{metric}"] for n in (1, 2)]
            assert metrics[f"{prefix}_{metric}_mean"] == pytest.approx(sum(per_window) / 2)
            worst = min(per_window) if metric == "r2" else max(per_window)
            assert metrics[f"{prefix}_{metric}_worst"] == pytest.approx(worst)
    assert per_window[0] != per_window[1]  # two different windows, two different fits
    assert result.details["metrics"]["test_rmse_mean"] == pytest.approx(metrics["test_rmse_mean"])
    assert metrics["test_r2_worst"] > 0  # durations depend on the features: the model must explain some of them
    assert params["regressor.type"] == "gbt" and params["seed"] == "42" and params["split.windows"] == "2"
    assert "trip_distance" not in params["features.numeric"].split(",")
    assert metrics["train_seconds"] > 0 and metrics["train_rows_per_second"] > 0


def test_the_train_summary_shows_the_model_and_both_baselines_test_metrics(trained):
    """What `lake train` and `lake run daily` print, and the train-summary artifact, after the counts."""
    _, result, _, run = trained
    summary = train_markdown(result)
    assert summary.startswith(result.summary_markdown())
    rows = {line.split(" | ")[0].strip("| "): line for line in summary.splitlines() if line.startswith("| ")}
    for approach, prefix in (("model", "test"), ("zone-pair median", "baseline_pair_median_test")):
        assert (
            f"| {run.data.metrics[f'{prefix}_rmse_mean']:.3f} | {run.data.metrics[f'{prefix}_rmse_worst']:.3f} |"
            in (rows[approach])
        )
    assert "linear" in rows and "Test metrics over the windows" in summary


def test_lake_run_prints_the_train_metrics_table(trained, capsys):
    _, result, _, _ = trained
    print_results([result.to_dict(), {"stage": "score", "run_id": "s1", "counts": {"scored": 3}}])
    out = capsys.readouterr().out
    assert "| model |" in out and "| zone-pair median |" in out and "### score `s1`: success" in out


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
    aggregates = {f"{p}_{m}_{a}" for p in PREFIXES for m in METRICS for a in ("mean", "worst")}
    per_window = {f"window{n}_{p}_{m}" for n in (1, 2) for p in PREFIXES for m in METRICS}
    compared = aggregates | per_window
    assert set(result.details["original_metrics"]) == compared
    reproduced = open_tracking(copy).client.get_run(result.details["mlflow_run_id"])
    assert reproduced.data.tags["reproduces"] == run.info.run_id
    assert reproduced.data.tags[f"input.{FEATURES_TABLE}.version"] == "0"
    for name in compared:
        assert abs(reproduced.data.metrics[name] - run.data.metrics[name]) <= 1e-9, name
    assert (
        reproduced.data.metrics["window1_train_rows"]
        == run.data.metrics["window1_train_rows"]
        < copy.read(FEATURES_TABLE).where(F.col("pickup_date") < WINDOWS[0].test_from).count()
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


def test_tune_runs_each_candidate_nested_on_a_validation_window_before_the_test_windows(trained, tmp_path):
    lake, _, tracking, _ = trained
    copy_root = tmp_path / "lake"
    shutil.copytree(lake.root, copy_root)
    copy = make_lake(lake.spark, copy_root, lake.conf.conf_file("model.params"))

    result = run_train(copy, tune=True)

    client = open_tracking(copy).client
    parent = client.get_run(result.details["mlflow_run_id"])
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(c.data.params["regressor.params.maxDepth"] for c in children) == ["2", "3"]
    best = min(children, key=lambda c: c.data.metrics["validation_rmse"])
    assert parent.data.params["regressor.params.maxDepth"] == best.data.params["regressor.params.maxDepth"]
    validation_from = WINDOWS[0].test_from - dt.timedelta(days=5)
    assert (
        parent.data.tags["tuning.validation_window"] == f"{validation_from}..{WINDOWS[0].test_from - dt.timedelta(1)}"
    )
    rows_before = copy.read(FEATURES_TABLE).where(F.col("pickup_date") < validation_from).count()
    assert parent.data.metrics["tuning_fit_rows"] == rows_before
    assert result.details["params"]["regressor"]["params"]["maxDepth"] == int(
        best.data.params["regressor.params.maxDepth"]
    )


def test_missing_table_is_a_clear_error(lake):
    with pytest.raises(TableMissingError, match=FEATURES_TABLE):
        run_train(lake)


def test_empty_table_is_a_clear_error(spark, tmp_path):
    lake = make_lake(spark, tmp_path / "lake", write_params(tmp_path / "conf"))
    lake.append(FEATURES_TABLE, synthetic_features(spark, START, 1, 1, seed=1).limit(0))
    with pytest.raises(StageError, match="has no labelled rows"):
        run_train(lake)


def test_too_small_a_window_names_the_window_and_the_setting(spark, tmp_path):
    lake = make_lake(spark, tmp_path / "lake", write_params(tmp_path / "conf", split={"windows": 1}))
    lake.append(FEATURES_TABLE, synthetic_features(spark, START, 10, 5, seed=3))
    with pytest.raises(StageError, match=r"train window \(pickup_date < 2019-01-04\) has 15 .*split.min_train_rows"):
        run_train(lake)


def test_training_frames_partition_and_order_rows_by_key_whatever_the_input_order(spark, tmp_path):
    params = load_params(make_lake(spark, tmp_path / "lake", write_params(tmp_path / "conf"))).resolved(2)
    features = synthetic_features(spark, START, 4, 10, seed=5)

    def layout(frame):
        train = train_rows(frame, params, before=START + dt.timedelta(days=2))
        parts = train.rdd.glom().collect() + stable(frame, params).rdd.glom().collect()
        return [[row.trip_key for row in part] for part in parts]

    shuffled = features.repartition(3).sortWithinPartitions(F.rand(seed=1))
    assert layout(features.coalesce(1)) == layout(shuffled)
    assert sorted(key for part in layout(shuffled)[2:] for key in part) == sorted(
        r.trip_key for r in features.collect()
    )


def test_a_lake_s_tracking_store_does_not_leak_into_the_next_lake_opened(spark, tmp_path, monkeypatch):
    """MLflow's URI setters export MLFLOW_TRACKING_URI, which config reads as the user's choice: a second lake in the
    same process (a served flow, a test) must still get its own store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    params = write_params(tmp_path / "conf")
    first = open_tracking(make_lake(spark, tmp_path / "one", params))
    second = open_tracking(make_lake(spark, tmp_path / "two", params))
    assert first.uri != second.uri and str(tmp_path / "two") in second.uri
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
