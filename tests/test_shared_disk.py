"""A cluster whose machines share no disk: what every executor reads or writes must be in the lake's store.

tests/test_cluster.py runs the pipeline on a cluster whose workers share the driver's machine, so these pin the parts
it cannot show by itself: the store becomes Hadoop's default filesystem (where MLflow's Spark flavor stages models),
local files reach Spark as `file:` URIs, the shipped zone lookup is read on the driver, and models are staged under
the lake root."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lake import Lake, load_conf
from lake.config import spark_path
from lake.doctor import FAIL, OK, check_config
from lake.session import (
    DEFAULT_FS,
    S3A_PARALLEL_COPY,
    adopt_shared_filesystem,
    session_conf,
    shared_filesystem,
    spark_settings,
)
from pipelines.bronze.ingest import plan_file, run_ingest
from pipelines.bronze.rows import scan_paths
from pipelines.silver.transform import read_zone_csv

PROJECT = Path(__file__).resolve().parents[1]
ZONE_LOOKUP = PROJECT / "data" / "reference" / "taxi_zone_lookup.csv"
NO_JARS = {"spark.delta_jars": "none"}
ON_A_CLUSTER = {**NO_JARS, "spark.master": "spark://master:7077"}
TRIPS = """VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,RatecodeID,\
store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,mta_tax,tip_amount,tolls_amount,\
improvement_surcharge,total_amount,congestion_surcharge
1,2019-01-05 10:00:00,2019-01-05 10:12:00,1,2.1,1,N,161,236,1,10.0,0.5,0.5,2.0,0.0,0.3,13.3,
2,2019-01-05 11:00:00,2019-01-05 11:20:00,2,3.4,1,N,236,161,2,14.5,0.5,0.5,0.0,0.0,0.3,15.8,
"""


def _settings(**overrides: object) -> dict[str, str]:
    return spark_settings(load_conf("cluster", overrides={**ON_A_CLUSTER, **overrides}))


@contextmanager
def default_filesystem(spark, uri: str) -> Iterator[None]:
    """Hadoop's default filesystem is `uri` for the block: the context's (what the driver's own calls, MLflow's
    among them, use) and the SQL session's (what a query's file reads use); then both as they were."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    before = hadoop.get(DEFAULT_FS)
    hadoop.set(DEFAULT_FS, uri)
    try:
        with session_conf(spark, {DEFAULT_FS: uri}):
            yield
    finally:
        if before is None:
            hadoop.unset(DEFAULT_FS)
        else:
            hadoop.set(DEFAULT_FS, before)


def test_on_a_cluster_the_driver_s_default_filesystem_becomes_the_lake_s_object_store(spark):
    conf = load_conf("cluster", overrides={**ON_A_CLUSTER, "lake.root": "s3a://bucket-a/prefix/lake"})
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    with default_filesystem(spark, "file:///"):
        adopt_shared_filesystem(spark, conf)
        assert hadoop.get(DEFAULT_FS) == "s3a://bucket-a"
    with default_filesystem(spark, "hdfs://namenode:8020"):  # a cluster's own (or the user's) stays
        adopt_shared_filesystem(spark, conf)
        assert hadoop.get(DEFAULT_FS) == "hdfs://namenode:8020"
    assert shared_filesystem(load_conf("cluster", overrides={**ON_A_CLUSTER, "lake.root": "gs://b/lake"})) == "gs://b"
    assert shared_filesystem(load_conf("cluster", overrides={**ON_A_CLUSTER, "lake.root": "/shared/lake"})) is None
    assert shared_filesystem(load_conf("test", overrides={"lake.root": "s3a://bucket-a/lake"})) is None  # local[2]


def test_s3a_copies_a_staged_model_file_by_file_on_a_cluster_only():
    assert _settings(**{"lake.root": "s3a://bucket-a/lake"})[S3A_PARALLEL_COPY] == "false"
    assert S3A_PARALLEL_COPY not in _settings(**{"lake.root": "/shared/lake"})
    assert S3A_PARALLEL_COPY not in spark_settings(load_conf("test", overrides={**NO_JARS, "lake.root": "s3a://b/l"}))


def test_models_are_staged_under_the_lake_root_when_it_is_the_cluster_s_default_filesystem(spark):
    in_store = Lake(load_conf("cluster", overrides={**ON_A_CLUSTER, "lake.root": "s3a://bucket-a/lake/"}), spark)
    in_folder = Lake(load_conf("cluster", overrides={**ON_A_CLUSTER, "lake.root": "/shared/lake"}), spark)
    with default_filesystem(spark, "s3a://bucket-a"):
        assert in_store.staging("models/x") == "s3a://bucket-a/lake/_staging/models/x"
        assert in_folder.staging("models/x") is None  # a path without a scheme would name the bucket
    with default_filesystem(spark, "hdfs://namenode:8020"):  # MLflow stages on HDFS, which every machine sees
        assert in_store.staging("models/x") is None and in_folder.staging("models/x") is None
    with default_filesystem(spark, "file:///"):
        assert in_folder.staging("models/x") == "/shared/lake/_staging/models/x"
    assert Lake(load_conf("test", overrides={"lake.root": "/tmp/lake"}), spark).staging("models") is None


def test_a_staging_folder_is_removed_with_what_is_under_it(spark, tmp_path):
    lake = Lake(load_conf("test", overrides={"lake.root": str(tmp_path)}), spark)
    folder = tmp_path / "_staging" / "models" / "x"
    spark.range(3).write.parquet(str(folder / "data"))
    lake.remove_staged(str(folder))
    assert not folder.exists() and folder.parent.is_dir()


def test_lake_doctor_checks_a_local_zone_lookup_and_leaves_one_in_the_store_to_the_run(tmp_path):
    assert check_config(load_conf("test")).status == OK  # the shipped file
    missing = load_conf("test", overrides={"bronze.zone_lookup": str(tmp_path / "zones.csv")})
    assert check_config(missing).status == FAIL and "zones.csv" in check_config(missing).detail
    assert check_config(load_conf("test", overrides={"bronze.zone_lookup": "s3a://bucket/zones.csv"})).status == OK


def test_local_files_reach_spark_as_file_uris():
    assert spark_path("/landing/yellow_tripdata_2019-01.csv") == "file:/landing/yellow_tripdata_2019-01.csv"
    assert spark_path("s3a://bucket/landing/a.csv") == "s3a://bucket/landing/a.csv"
    assert spark_path("file:/landing/a.csv") == "file:/landing/a.csv"


@pytest.fixture
def elsewhere(spark):
    """Hadoop's default filesystem, for the test, is one this process cannot even load (no S3A JARs in tests): a path
    without a scheme fails, as it would name the bucket on a cluster."""
    with default_filesystem(spark, "s3a://no-such-bucket"):
        yield


def test_the_shipped_zone_lookup_is_read_whatever_the_default_filesystem(spark, elsewhere):
    zones = read_zone_csv(spark, str(ZONE_LOOKUP))
    rows = {row["zone_id"]: row for row in zones.collect()}
    assert len(rows) == 265 and rows[132]["zone"] == "JFK Airport" and rows[265]["borough"] == "Unknown"
    with pytest.raises(Exception, match="S3AFileSystem not found"):  # the block does what it says
        spark.read.option("header", True).csv(str(ZONE_LOOKUP)).count()


def test_ingest_reads_a_local_landing_folder_whatever_the_default_filesystem(spark, tmp_path, elsewhere):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "yellow_tripdata_2019-01.csv").write_text(TRIPS)
    lake = Lake(load_conf("test", overrides={"lake.root": f"file://{tmp_path}/lake"}), spark)
    plan = plan_file(str(landing / "yellow_tripdata_2019-01.csv"))[1]
    assert plan is not None and scan_paths(spark, [plan]) is not None  # one scan for the batch, not one per file
    result = run_ingest(lake, [str(landing)])
    assert result.counts["rows"] == 2
    sources = {row["_source_file"] for row in lake.read("bronze.trips").select("_source_file").collect()}
    assert sources == {str(landing / "yellow_tripdata_2019-01.csv")}  # lineage keeps the plain path
