"""meta.watermarks is the log of each incremental consumer's moves: one appended row per move, the latest counts."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F
from registry_edit import lake_with_registry_edit

from lake.catalog import WATERMARKS
from lake.config import ConfigError
from lake.delta import last_commit, table_properties, write
from lake.doctor import _silver_watermark


def test_a_move_is_one_appended_row_and_the_latest_counts_even_backwards(lake):
    for version in (4, 5, 2):  # 2: the source was recreated and the consumer rebuilt from its version 2
        lake.set_watermark("silver", "bronze.trips", version)
    lake.set_watermark("gold", "silver.trips", 9)
    assert lake.watermark("silver", "bronze.trips") == 2
    assert lake.watermark("gold", "silver.trips") == 9
    assert lake.watermark("score", "gold.trip_features") is None
    moves = lake.read(WATERMARKS).where("consumer = 'silver'").orderBy("updated_at")
    assert [row.source_version for row in moves.collect()] == [4, 5, 2]
    assert last_commit(lake.spark, lake.path(WATERMARKS))["operation"] == "WRITE"  # a blind append, no MERGE
    assert _silver_watermark(lake) == 2  # `lake doctor` reads the same latest row (with deltalake)


def test_a_watermark_is_read_without_a_spark_job_and_spark_reads_it_when_delta_rs_cannot(lake, monkeypatch):
    for version in (4, 5, 2):
        lake.set_watermark("silver", "bronze.trips", version)
    tracker = lake.spark.sparkContext.statusTracker()
    jobs = set(tracker.getJobIdsForGroup())
    assert lake.watermark("silver", "bronze.trips") == 2
    assert set(tracker.getJobIdsForGroup()) == jobs  # delta-rs read the table: no Spark job
    read_fast = lake._last_moves[("silver", "bronze.trips")]

    def unavailable(*_):
        raise OSError("delta-rs has no credentials for this store")

    monkeypatch.setattr(type(lake), "latest_move", unavailable)
    assert lake.watermark("silver", "bronze.trips") == 2
    assert set(tracker.getJobIdsForGroup()) != jobs  # Spark read it
    assert lake._last_moves[("silver", "bronze.trips")].timestamp() == read_fast.timestamp()  # the same move
    in_bucket = lake.conf.with_overrides({"lake.root": "s3a://bucket/lake"})
    assert not type(lake)(in_bucket, lake.spark)._delta_rs_reads  # no options: delta-rs would guess the endpoint
    configured = in_bucket.with_overrides({"lake.storage_options": {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}})
    assert type(lake)(configured, lake.spark)._delta_rs_reads


def test_a_move_is_the_latest_even_when_this_driver_s_clock_is_behind(lake):
    ahead = datetime.now() + timedelta(days=1)  # a move written by a host whose clock runs a day ahead
    row = lake.spark.createDataFrame([("gold", "silver.trips", 3, ahead)], lake.spec(WATERMARKS).schema)
    lake.append(WATERMARKS, row)
    lake.set_watermark("gold", "silver.trips", 2)
    lake.set_watermark("score", "gold.trip_features", 8)  # another key keeps this driver's clock
    assert lake.watermark("gold", "silver.trips") == 2
    assert lake.watermark("score", "gold.trip_features") == 8
    moves = lake.read(WATERMARKS).where("consumer = 'gold'").orderBy("updated_at").collect()
    assert [m.source_version for m in moves] == [3, 2] and moves[1].updated_at > ahead
    score = lake.read(WATERMARKS).where("consumer = 'score'").first()
    assert score.updated_at < ahead


def test_the_watermark_table_compacts_its_small_files_itself(lake):
    lake.set_watermark("silver", "bronze.trips", 1)
    detail = DeltaTable.forPath(lake.spark, lake.path(WATERMARKS)).detail().first()
    assert detail["properties"].get("delta.autoOptimize.autoCompact") == "true"  # from conf/tables.yaml


def test_a_watermark_table_an_older_release_made_gains_the_registry_s_properties(lake):
    old = lake.spark.createDataFrame(
        [("silver", "bronze.trips", 1)], "consumer string, source string, source_version long"
    )
    write(old.withColumn("updated_at", F.current_timestamp()), lake.path(WATERMARKS), "append")  # no properties
    assert "delta.autoOptimize.autoCompact" not in table_properties(lake.spark, lake.path(WATERMARKS))
    lake.set_watermark("silver", "bronze.trips", 2)
    assert table_properties(lake.spark, lake.path(WATERMARKS))["delta.autoOptimize.autoCompact"] == "true"
    assert lake.watermark("silver", "bronze.trips") == 2


def test_table_properties_in_the_registry_must_be_delta_properties(tmp_path):
    with pytest.raises(ConfigError, match=r"meta.watermarks: properties must be Delta table properties"):
        lake_with_registry_edit(tmp_path, "{delta.autoOptimize", "{spark.autoOptimize")
