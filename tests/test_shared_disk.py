"""A cluster whose machines share no disk: what every executor reads or writes must be in the lake's store.

tests/test_cluster.py runs the pipeline on a cluster whose workers share the driver's machine, so these pin the parts
it cannot show by itself: the store becomes Hadoop's default filesystem (where MLflow's Spark flavor stages models),
local files reach Spark as `file:` URIs, the shipped zone lookup is read on the driver, and models are staged under
the lake root."""

from __future__ import annotations

import gzip
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lake import Lake, load_conf
from lake.config import local_path, spark_path
from lake.doctor import FAIL, OK, WARN, check_config, check_shared_storage
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
from pipelines.silver.transform import read_zone_csv, zone_contract
from pipelines.train.tracking import STAGED_AT, STALE_STAGING, model_staging

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
    chosen = conf.with_overrides({"spark.extra": {f"spark.hadoop.{DEFAULT_FS}": "file:///"}})
    with default_filesystem(spark, "file:///"):  # a spark.extra choice of the local disk stays too
        adopt_shared_filesystem(spark, chosen)
        assert hadoop.get(DEFAULT_FS) == "file:///"
    assert shared_filesystem(load_conf("cluster", overrides={**ON_A_CLUSTER, "lake.root": "gs://b/lake"})) == "gs://b"
    assert shared_filesystem(load_conf("cluster", overrides={**ON_A_CLUSTER, "lake.root": "/shared/lake"})) is None
    assert shared_filesystem(load_conf("test", overrides={"lake.root": "s3a://bucket-a/lake"})) is None  # local[2]


def test_s3a_copies_a_staged_model_file_by_file_on_a_cluster_only():
    assert _settings(**{"lake.root": "s3a://bucket-a/lake"})[S3A_PARALLEL_COPY] == "false"
    assert S3A_PARALLEL_COPY not in _settings(**{"lake.root": "/shared/lake"})
    assert S3A_PARALLEL_COPY not in spark_settings(load_conf("test", overrides={**NO_JARS, "lake.root": "s3a://b/l"}))


def test_models_are_staged_on_the_cluster_s_default_filesystem_under_the_root_when_it_is_there(spark):
    in_store = Lake(load_conf("cluster", overrides={**ON_A_CLUSTER, "lake.root": "s3a://bucket-a/lake/"}), spark)
    in_folder = Lake(load_conf("cluster", overrides={**ON_A_CLUSTER, "lake.root": "/shared/lake"}), spark)
    with default_filesystem(spark, "s3a://bucket-a"):
        assert in_store.staging("models/x") == "s3a://bucket-a/lake/_staging/models/x"
        assert in_folder.staging("models/x") == "s3a://bucket-a/tmp/taxi-lakehouse/_staging/models/x"
    with default_filesystem(spark, "hdfs://namenode:8020"):  # where MLflow copies through: removed after use
        assert in_store.staging("models/x") == "hdfs://namenode:8020/tmp/taxi-lakehouse/_staging/models/x"
    with default_filesystem(spark, "file:///"):
        assert in_folder.staging("models/x") == "/shared/lake/_staging/models/x"
    assert Lake(load_conf("test", overrides={"lake.root": "/tmp/lake"}), spark).staging("models") is None


class FolderLake:
    """What model_staging needs of a Lake: a staging folder on this disk (as a shared folder's), and its removal."""

    def __init__(self, root: Path | None, removal_fails: bool = False) -> None:
        self.root, self.removal_fails = root, removal_fails

    def staging(self, name: str) -> str | None:
        return None if self.root is None else str(self.root / "_staging" / name)

    def staged(self, name: str) -> list[str]:
        folder = None if self.root is None else self.root / "_staging" / name
        return sorted(str(path) for path in folder.iterdir() if path.is_dir()) if folder and folder.is_dir() else []

    def remove_staged(self, location: str) -> None:
        if self.removal_fails:
            raise OSError("the store is unreachable")
        shutil.rmtree(location)


def test_a_staged_model_goes_when_the_block_fails_and_a_failed_removal_never_hides_the_block_s_error(tmp_path, caplog):
    with pytest.raises(ValueError, match="the block's own"):
        with model_staging(FolderLake(tmp_path), "score") as (staging, download):
            assert download == f"{staging}/download" and Path(download).is_dir()  # a shared folder: read in place
            raise ValueError("the block's own")
    assert not any((tmp_path / "_staging" / "models").iterdir())
    with pytest.raises(ValueError, match="the block's own"):
        with model_staging(FolderLake(tmp_path, removal_fails=True), "score"):
            raise ValueError("the block's own")
    assert "could not remove the staged model" in caplog.text and "unreachable" in caplog.text
    with model_staging(FolderLake(None), "score") as (staging, download):  # a local master: MLflow's own staging
        assert staging is None and Path(download).is_dir()
    assert not Path(download).exists()  # the download went with the block


def test_a_run_removes_the_staged_models_killed_runs_left_a_day_ago_and_nothing_else(tmp_path, caplog):
    models = tmp_path / "_staging" / "models"
    stamp = (datetime.now(timezone.utc) - STALE_STAGING - timedelta(minutes=1)).strftime(STAGED_AT)
    young = (datetime.now(timezone.utc) - STALE_STAGING + timedelta(minutes=5)).strftime(STAGED_AT)
    kept = [f"score-{young}-0a1b", "train-0a1b2c3d", "notes"]  # a live run's, an unknown name, not ours
    for name in [f"train-{stamp}-9f8e", f"score-{stamp}-0c", *kept]:
        (models / name / "metadata").mkdir(parents=True)
    (models / f"train-{stamp}-77").write_text("a file, not a staged model")
    with model_staging(FolderLake(tmp_path), "train") as (staging, _):
        assert sorted(p.name for p in models.iterdir()) == sorted([*kept, f"train-{stamp}-77", Path(staging).name])
    assert re.fullmatch(r"train-\d{8}T\d{6}Z-[0-9a-f]{16}", Path(staging).name)
    for name in [f"train-{stamp}-1", f"score-{stamp}-2"]:
        (models / name).mkdir()
    with model_staging(FolderLake(tmp_path, removal_fails=True), "score"):  # a failed sweep: logged, the run goes on
        pass
    assert "could not remove the stale staged model" in caplog.text and (models / f"score-{stamp}-2").is_dir()


def test_staged_lists_the_folders_under_a_staging_folder_through_hadoop(spark, tmp_path):
    lake = Lake(load_conf("cluster", overrides={**ON_A_CLUSTER, "lake.root": str(tmp_path)}), spark)
    with default_filesystem(spark, "file:///"):
        assert lake.staged("models") == []
        (tmp_path / "_staging" / "models" / "a" / "data").mkdir(parents=True)
        (tmp_path / "_staging" / "models" / "b.txt").write_text("not a folder")
        assert lake.staged("models") == [f"file:{tmp_path}/_staging/models/a"]
        lake.remove_staged(lake.staged("models")[0])
        assert lake.staged("models") == []
    assert Lake(load_conf("test", overrides={"lake.root": str(tmp_path)}), spark).staged("models") == []


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


def test_lake_doctor_warns_when_a_cluster_s_executors_would_read_local_folders():
    assert check_shared_storage(load_conf("test")).status == OK  # local[2]
    local = check_shared_storage(load_conf("cluster", overrides={**ON_A_CLUSTER, "lake.landing": "/data/landing"}))
    assert local.status == WARN and "lake.landing /data/landing" in local.detail and "lake.root" not in local.detail
    assert check_shared_storage(load_conf("cluster", overrides=ON_A_CLUSTER)).status == OK  # both in s3a://


def test_local_paths_of_plain_paths_and_file_uris():
    assert local_path("/data/zones.csv") == local_path("file:/data/zones.csv") == "/data/zones.csv"
    assert local_path("file:///data/a%20b.csv") == "/data/a b.csv"
    assert local_path("s3a://bucket/zones.csv") is None


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


def test_a_zone_lookup_given_as_a_file_uri_or_gzipped_is_read_on_the_driver(spark, tmp_path, elsewhere):
    packed = tmp_path / "zones.csv.gz"
    packed.write_bytes(gzip.compress(ZONE_LOOKUP.read_bytes()))
    expected = sorted(read_zone_csv(spark, str(ZONE_LOOKUP)).collect())
    assert sorted(read_zone_csv(spark, f"file://{packed}").collect()) == expected


EDGY_LOOKUP = """"LocationID","Borough","Zone","service_zone"
1,"EWR","Newark, Airport","EWR"

2,,"Jamaica Bay",""
3,"Bronx"
4,"A","B","C","D"
x,"y","z","w"
5,"",  "q","r"
"""


@pytest.mark.parametrize("content", [None, EDGY_LOOKUP], ids=["shipped", "quotes-blanks-short-and-long-rows"])
def test_the_zone_lookup_parsed_on_the_driver_equals_spark_s_csv_reader(spark, tmp_path, content):
    """The driver parses a local lookup (no Python worker for 266 lines): the rows must be Spark's CSV reader's."""
    lookup = ZONE_LOOKUP
    if content is not None:
        lookup = tmp_path / "zones.csv"
        lookup.write_text(content)
    by_spark = sorted(zone_contract(spark.read.option("header", True).csv(f"file://{lookup}")).collect())
    assert sorted(read_zone_csv(spark, str(lookup)).collect()) == by_spark
    assert len(by_spark) == (265 if content is None else 5)


def test_ingest_reads_a_local_landing_folder_whatever_the_default_filesystem(spark, tmp_path, elsewhere):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "yellow_tripdata_2019-01.csv").write_text(TRIPS)
    lake = Lake(load_conf("test", overrides={"lake.root": f"file://{tmp_path}/lake"}), spark)
    plan = plan_file(str(landing / "yellow_tripdata_2019-01.csv"))[1]
    assert plan is not None and scan_paths(spark, [plan]) is not None  # None would make ingest read file by file
    result = run_ingest(lake, [str(landing)])
    assert result.counts["rows"] == 2
    sources = {row["_source_file"] for row in lake.read("bronze.trips").select("_source_file").collect()}
    assert sources == {str(landing / "yellow_tripdata_2019-01.csv")}  # lineage keeps the plain path
