"""`lake score`: the champion predicts each trip of gold.trip_features once, and only once."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F
from test_train_support import make_lake, synthetic_features, write_params

from pipelines.common import StageError
from pipelines.score import PREDICTIONS_TABLE, TRIP_PREDICTIONS, run_score
from pipelines.train import run_train
from pipelines.train.model import FEATURES_TABLE

START = dt.date(2019, 3, 1)


@pytest.fixture(scope="module")
def champion_lake(spark, tmp_path_factory):
    """A lake with 20 days of trips and a trained champion model."""
    root = tmp_path_factory.mktemp("score")
    lake = make_lake(spark, root / "lake", write_params(root / "conf"))
    lake.append(FEATURES_TABLE, synthetic_features(spark, START, 20, 30, seed=11))
    trained = run_train(lake)
    return lake, trained


def test_scoring_predicts_every_trip_once_and_then_only_new_trips(champion_lake):
    lake, trained = champion_lake
    trips = lake.read(FEATURES_TABLE).count()

    first = run_score(lake)
    again = run_score(lake)
    lake.append(FEATURES_TABLE, synthetic_features(lake.spark, START + dt.timedelta(days=20), 2, 15, seed=12))
    new = run_score(lake)

    predictions = lake.read(PREDICTIONS_TABLE)
    assert (first.counts["scored"], again.counts["scored"], new.counts["scored"]) == (trips, 0, 30)
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


def test_scoring_without_a_champion_says_so(spark, tmp_path):
    lake = make_lake(spark, tmp_path / "lake", write_params(tmp_path / "conf"))
    lake.append(FEATURES_TABLE, synthetic_features(spark, START, 1, 3, seed=13))
    with pytest.raises(StageError, match="no 'champion' version of model trip_duration"):
        run_score(lake)
