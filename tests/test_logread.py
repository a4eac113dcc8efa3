"""Bookkeeping reads without a Spark job: a commit's operation metrics come from its commit file, equal to what
Spark's history says, and from the history when the file cannot be read."""

from __future__ import annotations

from pyspark.sql import functions as F

from lake import delta
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
