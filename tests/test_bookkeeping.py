"""Bookkeeping without a Spark job: a commit's operation metrics come from its commit file, equal to what Spark's
history says (from the history when the file cannot be read); a few rows are appended by delta-rs once the table
exists (through Spark when delta-rs commits nothing, never twice); delta-rs' appends are compacted."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from deltalake import DeltaTable as DeltaLakeTable
from deltalake import write_deltalake
from deltalake.exceptions import DeltaProtocolError
from pyspark.sql import functions as F

from lake import bookkeeping, delta
from lake.catalog import WATERMARKS
from pipelines.bronze import ingest_log

STAGE_RUNS, INGEST_LOG = "quality.stage_runs", "bronze.ingest_log"


def _moves(lake, count: int):
    rows = lake.spark.createDataFrame([("x", "y", n) for n in range(count)], "consumer string, source string, v long")
    return rows.select(
        "consumer", "source", F.col("v").alias("source_version"), F.current_timestamp().alias("updated_at")
    )


def test_a_commit_s_metrics_are_read_without_a_spark_job_and_equal_spark_s_history(lake, monkeypatch):
    lake.append(WATERMARKS, _moves(lake, 3))
    lake.append(WATERMARKS, _moves(lake, 2))  # the table compacts itself between them (its autoCompact)
    history = lake.history(WATERMARKS).select("version", "operation", "operationMetrics").collect()
    spark = {row.version: dict(row.operationMetrics) for row in history}
    writes = [row.operationMetrics["numOutputRows"] for row in history if row.operation == "WRITE"]
    assert writes == ["2", "3"] and len(spark) == 3  # newest first; the OPTIMIZE between them
    tracker = lake.spark.sparkContext.statusTracker()
    jobs = set(tracker.getJobIdsForGroup())
    read = {version: lake.commit_metrics(WATERMARKS, version) for version in spark}
    assert set(tracker.getJobIdsForGroup()) == jobs  # read from the commit files: no Spark job
    assert read == spark
    assert lake.commit_metrics(WATERMARKS, max(spark) + 5) == {}  # no such commit

    def unreadable(*_):
        raise OSError("this store cannot open the log file")

    monkeypatch.setattr(delta, "commit_info", unreadable)
    assert {version: lake.commit_metrics(WATERMARKS, version) for version in spark} == spark
    assert set(tracker.getJobIdsForGroup()) != jobs  # the history was read instead


def _stage_run(run_id: str, rows: int = 1) -> dict:
    at = datetime(2026, 12, 2, 6, 30, rows, tzinfo=timezone.utc)
    return {
        "run_id": run_id,
        "stage": "silver",
        "status": "success",
        "counts": {"rows": rows},
        "versions": {},
        "invariant": "",
        "invariant_holds": True,
        "message": "",
        "started_at": at,
        "finished_at": at,
    }


def _run_ids(lake) -> list[str]:
    return sorted(row.run_id for row in lake.read(STAGE_RUNS).collect())


def test_bookkeeping_rows_are_appended_without_a_spark_job_once_the_table_exists(lake):
    tracker = lake.spark.sparkContext.statusTracker()
    jobs = set(tracker.getJobIdsForGroup())
    first = lake.append_records(STAGE_RUNS, [_stage_run("r1")], user_metadata="r1")  # creates it with its row
    assert set(tracker.getJobIdsForGroup()) == jobs and first == 0
    assert lake.exists(STAGE_RUNS)  # Spark's first look at the table loads its snapshot (a job)
    jobs = set(tracker.getJobIdsForGroup())
    second = lake.append_records(STAGE_RUNS, [_stage_run("r2", 2), _stage_run("r3", 3)], user_metadata="r2")
    assert set(tracker.getJobIdsForGroup()) == jobs  # delta-rs committed them
    assert second == first + 1 == lake.version(STAGE_RUNS)
    rows = {row.run_id: row for row in lake.read(STAGE_RUNS).collect()}  # Spark reads delta-rs' commit
    assert sorted(rows) == ["r1", "r2", "r3"] and rows["r3"].counts == {"rows": 3}
    assert rows["r2"].finished_at.astimezone(timezone.utc) == _stage_run("r2", 2)["finished_at"]
    commit = lake.history(STAGE_RUNS, 1).first()
    assert commit.version == second and commit.userMetadata == "r2"
    in_bucket = lake.conf.with_overrides(
        {"lake.root": "s3a://bucket/lake", "lake.storage_options": {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}}
    )
    assert not type(lake)(in_bucket, lake.spark)._delta_rs_writes  # Spark commits on object stores


def test_an_append_delta_rs_does_not_commit_lands_once_through_spark_and_one_it_committed_is_not_repeated(
    lake, monkeypatch
):
    lake.append_records(STAGE_RUNS, [_stage_run("r1")])

    def refused(*_, **__):
        raise DeltaProtocolError("a writer feature delta-rs lacks")

    monkeypatch.setattr(bookkeeping, "write_deltalake", refused)
    lake.append_records(STAGE_RUNS, [_stage_run("r2")])
    assert _run_ids(lake) == ["r1", "r2"]
    assert lake.history(STAGE_RUNS, 1).first().operation == "WRITE"  # Spark's append

    def committed_then_failed(*args, **kwargs):
        write_deltalake(*args, **kwargs)
        raise OSError("the checkpoint after the commit failed")

    monkeypatch.setattr(bookkeeping, "write_deltalake", committed_then_failed)
    version = lake.append_records(STAGE_RUNS, [_stage_run("r3")])
    assert _run_ids(lake) == ["r1", "r2", "r3"]  # not appended a second time by Spark
    assert version == lake.version(STAGE_RUNS)


def test_delta_rs_appends_are_compacted_and_distinct_values_read_without_a_spark_job(lake, monkeypatch):
    monkeypatch.setattr(bookkeeping, "COMPACT_AT", 4)
    for version in range(8):
        lake.set_watermark("silver" if version % 2 else "gold", "bronze.trips", version)
    assert len(DeltaLakeTable(lake.path(WATERMARKS)).file_uris()) < 4  # 8 appends, compacted
    assert lake.read(WATERMARKS).count() == 8
    assert (lake.watermark("silver", "bronze.trips"), lake.watermark("gold", "bronze.trips")) == (7, 6)
    tracker = lake.spark.sparkContext.statusTracker()
    jobs = set(tracker.getJobIdsForGroup())
    assert lake.distinct(WATERMARKS, "consumer") == {"silver", "gold"}
    assert set(tracker.getJobIdsForGroup()) == jobs

    def unreadable(*_):
        raise DeltaProtocolError("deletion vectors")

    monkeypatch.setattr(bookkeeping, "distinct", unreadable)
    assert lake.distinct(WATERMARKS, "consumer") == {"silver", "gold"}  # Spark's aggregation
    assert set(tracker.getJobIdsForGroup()) != jobs


def _logged(run_id: str, name: str, content_hash: str, status: str, second: int) -> dict:
    at = datetime(2026, 12, 2, 7, 0, second, tzinfo=timezone.utc)
    return {
        "run_id": run_id,
        "source_file": f"/landing/{run_id}/{name}",
        "content_hash": content_hash,
        "status": status,
        "rows": 1,
        "corrupt_rows": 0,
        "logged_at": at,
    }


MONTH = "yellow_tripdata_2019-01.csv"


def test_the_ingest_log_reads_the_same_with_delta_rs_as_with_spark(lake, monkeypatch):
    lake.append_records(
        INGEST_LOG, [_logged("r1", MONTH, "h1", "ingested", 1), _logged("r1", "b.csv", None, "failed", 1)]
    )
    lake.append_records(INGEST_LOG, [_logged("r2", MONTH, "h2", "ingested", 2)])  # republished in another folder
    tracker = lake.spark.sparkContext.statusTracker()
    jobs = set(tracker.getJobIdsForGroup())
    fast = (ingest_log.ingested(lake), ingest_log.latest_hash_by_file(lake), ingest_log.ingested_hashes(lake))
    assert set(tracker.getJobIdsForGroup()) == jobs
    assert fast[1:] == ({"yellow_tripdata_2019-01": "h2"}, {"h1", "h2"})

    def unreadable(*_):
        raise DeltaProtocolError("a reader feature delta-rs lacks")

    monkeypatch.setattr(bookkeeping, "read", unreadable)
    by_spark = (ingest_log.ingested(lake), ingest_log.latest_hash_by_file(lake), ingest_log.ingested_hashes(lake))
    assert set(tracker.getJobIdsForGroup()) != jobs
    assert by_spark == fast  # logged_at in UTC either way


def test_spark_reads_a_log_delta_rs_checkpointed_and_records_keep_the_table_s_contract(lake):
    for n in range(11):  # version 0 by Spark, 1..10 by delta-rs: it checkpoints after 10 commits (the registry's)
        lake.append_records(STAGE_RUNS, [_stage_run(f"r{n:02d}")])
    log = Path(lake.path(STAGE_RUNS)) / "_delta_log"
    assert [path.name for path in log.glob("*.checkpoint.parquet")] == [f"{9:020d}.checkpoint.parquet"]
    lake.spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()  # Spark reads the log again, from it
    assert lake.read(STAGE_RUNS).count() == 11
    lake.append(STAGE_RUNS, lake.spark.createDataFrame([_stage_run("spark")], lake.spec(STAGE_RUNS).schema))
    assert len(_run_ids(lake)) == 12
    with pytest.raises(ValueError, match="unknown columns \\['rows'\\]"):
        lake.append_records(STAGE_RUNS, [_stage_run("x") | {"rows": 3}])  # delta-rs would drop it
    with pytest.raises(ValueError, match="nulls in \\['run_id'\\]"):
        lake.append_records(STAGE_RUNS, [_stage_run("x") | {"run_id": None}])
    local = datetime(2026, 12, 2, 7, 0)  # no zone: a local time, as PySpark reads it
    lake.append_records(STAGE_RUNS, [_stage_run("naive") | {"started_at": local}])
    stored = lake.read(STAGE_RUNS).where("run_id = 'naive'").first().started_at
    assert stored == local and len(_run_ids(lake)) == 13
