"""Bookkeeping reads without Spark: a commit's operation metrics come from delta-rs, equal to what Spark's history
says, and from Spark when delta-rs cannot read the table."""

from __future__ import annotations

from pyspark.sql import functions as F

from lake import logread
from lake.catalog import WATERMARKS


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
    assert writes == ["2", "3"]  # newest first
    tracker = lake.spark.sparkContext.statusTracker()
    jobs = set(tracker.getJobIdsForGroup())
    read = {version: lake.commit_metrics(WATERMARKS, version) for version in spark} | {
        "latest": lake.commit_metrics(WATERMARKS)
    }
    assert set(tracker.getJobIdsForGroup()) == jobs  # delta-rs read the log: no Spark job
    assert read == spark | {"latest": spark[max(spark)]}
    assert lake.commit_metrics(WATERMARKS, max(spark) + 5) == {}  # no such commit

    def unavailable(*_):
        raise OSError("delta-rs has no credentials for this store")

    monkeypatch.setattr(logread, "commit_metrics", unavailable)
    assert {version: lake.commit_metrics(WATERMARKS, version) for version in spark} == spark
    assert lake.commit_metrics(WATERMARKS) == spark[max(spark)]
    assert set(tracker.getJobIdsForGroup()) != jobs  # Spark read them
