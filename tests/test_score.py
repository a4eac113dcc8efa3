"""`lake score`: the champion predicts each trip of gold.trip_features once, and only once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pyspark.sql import functions as F
from test_train_support import make_lake, synthetic_features, write_params

from flows.policy import TrainingFacts, has_champion, tag_training_run, training_facts
from lake import Lake
from pipelines.common import StageError
from pipelines.score import PREDICTIONS_TABLE, TRIP_PREDICTIONS, run_score
from pipelines.train import run_train
from pipelines.train.model import FEATURES_TABLE
from pipelines.train.tracking import champion_model, open_tracking

START = dt.date(2019, 3, 1)


@pytest.fixture(scope="module")
def champion_lake(spark, tmp_path_factory):
    """A lake with 20 days of trips and a trained champion model (evaluated on one window: scoring needs only the
    model)."""
    root = tmp_path_factory.mktemp("score")
    lake = make_lake(spark, root / "lake", write_params(root / "conf", split={"windows": 1}))
    lake.append(FEATURES_TABLE, synthetic_features(spark, START, 20, 30, seed=11))
    trained = run_train(lake)
    return lake, trained


def test_the_daily_flow_reads_the_last_training_from_mlflow(champion_lake):
    lake, trained = champion_lake
    zone = ZoneInfo(lake.conf.get("orchestration.timezone"))

    fresh = training_facts(lake)
    tag_training_run(lake, trained.details["mlflow_run_id"], dt.date(2019, 3, 21))
    tagged = training_facts(lake)

    assert fresh == TrainingFacts(dt.datetime.now(zone).date(), 0)
    assert tagged == TrainingFacts(dt.date(2019, 3, 21), 0)
    assert has_champion(lake)


def scored_rows(lake) -> dict[str, str]:
    """trip_key -> the scoring run that predicted it."""
    return {
        row["trip_key"]: row["_run_id"] for row in lake.read(PREDICTIONS_TABLE).select("trip_key", "_run_id").collect()
    }


def test_scoring_predicts_every_trip_once_and_then_reads_only_new_trips(champion_lake):
    lake, trained = champion_lake
    trips = lake.read(FEATURES_TABLE).count()

    first = run_score(lake)
    again = run_score(lake)
    lake.append(FEATURES_TABLE, synthetic_features(lake.spark, START + dt.timedelta(days=20), 2, 15, seed=12))
    new = run_score(lake)

    predictions = lake.read(PREDICTIONS_TABLE)
    assert (first.counts["scored"], again.counts["scored"], new.counts["scored"]) == (trips, 0, 30)
    assert (first.details["mode"], again.counts["days_read"], new.counts["days_read"]) == ("full", 0, 2)
    assert new.details["reason"].startswith(f"{FEATURES_TABLE} versions")
    assert predictions.count() == trips + 30 == predictions.select("trip_key").distinct().count()
    assert predictions.join(lake.read(FEATURES_TABLE), on="trip_key", how="left_anti").count() == 0
    assert [(f.name, f.dataType) for f in predictions.schema] == [(f.name, f.dataType) for f in TRIP_PREDICTIONS]
    tags = predictions.select("model_name", "model_version").distinct().collect()
    assert [tuple(row) for row in tags] == [(trained.details["model_name"], trained.details["model_version"])]
    runs = {row["_run_id"]: row["n"] for row in predictions.groupBy("_run_id").agg(F.count("*").alias("n")).collect()}
    assert runs == {first.run_id: trips, new.run_id: 30}
    assert (
        predictions.where(F.col("predicted_duration_min").isNull() | (F.col("predicted_duration_min") < 0)).count() == 0
    )


def test_rewritten_days_and_a_lost_watermark_score_nothing_twice_and_rescore_redoes_all(champion_lake):
    lake, _ = champion_lake
    if not lake.exists(PREDICTIONS_TABLE):
        run_score(lake)
    before = scored_rows(lake)
    # gold recomputes a day with replaceWhere: its trips come back through the change feed, already scored
    day = START + dt.timedelta(days=3)
    rewritten = lake.read(FEATURES_TABLE).where(F.col("pickup_date") == F.lit(day))
    lake.overwrite(FEATURES_TABLE, rewritten.localCheckpoint(), replace_where=f"pickup_date = DATE'{day}'")
    recomputed = run_score(lake)
    # a crash after the predictions commit and before the watermark moved: the next run reads the same changes
    lake.set_watermark("score", FEATURES_TABLE, lake.version(FEATURES_TABLE) - 1)
    after_crash = run_score(lake)

    assert (recomputed.counts, after_crash.counts) == ({"scored": 0, "days_read": 1}, {"scored": 0, "days_read": 1})
    assert scored_rows(lake) == before

    rescored = run_score(lake, rescore=True)

    assert rescored.counts["scored"] == len(before) == lake.read(FEATURES_TABLE).count()
    assert set(scored_rows(lake)) == set(before) and set(scored_rows(lake).values()) == {rescored.run_id}


def test_on_a_cluster_the_champion_is_read_from_a_folder_under_the_lake_root_and_removed_after(champion_lake):
    """With the lake in a folder every machine mounts, the executors read the model where MLflow downloads it: under
    the lake root, not the driver's /tmp (`champion_model`)."""
    lake, _ = champion_lake
    cluster = Lake(lake.conf.with_overrides({"spark.master": "spark://elsewhere:7077"}), lake.spark)
    trips = lake.read(FEATURES_TABLE).orderBy("trip_key").limit(5)
    staging = Path(lake.root) / "_staging" / "models"
    with champion_model(lake, open_tracking(lake)) as model:
        expected = model.transform(trips).select("trip_key", "prediction").collect()
    with champion_model(cluster, open_tracking(cluster)) as model:
        downloads = list(staging.rglob("download/**/MLmodel"))
        assert model.transform(trips).select("trip_key", "prediction").collect() == expected  # read lazily too
    assert len(downloads) == 1 and not any(staging.iterdir())


def test_scoring_without_a_champion_says_so(spark, tmp_path):
    lake = make_lake(spark, tmp_path / "lake", write_params(tmp_path / "conf"))
    lake.append(FEATURES_TABLE, synthetic_features(spark, START, 1, 3, seed=13))
    with pytest.raises(StageError, match="no 'champion' version of model trip_duration"):
        run_score(lake)
