"""Delta Lake read/write/merge, time travel, change feed and history, by table path."""

from __future__ import annotations

from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

CDF_COLUMNS = ["_change_type", "_commit_version", "_commit_timestamp"]


def is_delta(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def latest_version(spark: SparkSession, path: str) -> int | None:
    """The table's current version, or None when no table exists at path."""
    if not is_delta(spark, path):
        return None
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def last_commit(spark: SparkSession, path: str) -> dict[str, Any]:
    """Version, operation and operation metrics of the table's latest commit."""
    row = DeltaTable.forPath(spark, path).history(1).select("version", "operation", "operationMetrics").first()
    return {
        "version": int(row["version"]),
        "operation": row["operation"],
        "metrics": dict(row["operationMetrics"] or {}),
    }


def read(spark: SparkSession, path: str, version: int | None = None, timestamp: str | None = None) -> DataFrame:
    """Reads a table, optionally as of a version or a timestamp (time travel)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", int(version))
    elif timestamp is not None:
        reader = reader.option("timestampAsOf", timestamp)
    return reader.load(path)


def write(
    df: DataFrame,
    path: str,
    mode: str,
    partition_by: list[str] | None = None,
    replace_where: str | None = None,
    user_metadata: str | None = None,
) -> int:
    """One atomic Delta commit (append, overwrite, or overwrite of the rows matching replace_where)."""
    writer = df.write.format("delta").mode(mode)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if replace_where:
        writer = writer.option("replaceWhere", replace_where)
    if user_metadata:
        writer = writer.option("userMetadata", user_metadata)
    writer.save(path)
    return latest_version(df.sparkSession, path)


def merge(
    df: DataFrame,
    path: str,
    keys: list[str],
    partition_by: list[str] | None = None,
    update_matched: bool = True,
    delete_matched: bool = False,
    target_filter: str | None = None,
) -> dict[str, Any]:
    """Upserts df into the table by keys (creating it on first use); returns the commit's version and metrics.

    target_filter (SQL on alias t, e.g. a partition IN list) limits the files MERGE reads. A MERGE that changes
    nothing makes no commit: it returns the unchanged version, operation NONE and empty metrics.
    """
    spark = df.sparkSession
    if not is_delta(spark, path):
        version = write(df, path, "overwrite", partition_by)
        return {"version": version, "operation": "WRITE", "metrics": {"numTargetRowsInserted": str(df.count())}}
    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    if target_filter:
        condition = f"({target_filter}) AND {condition}"
    before = latest_version(spark, path)
    builder = DeltaTable.forPath(spark, path).alias("t").merge(df.alias("s"), condition)
    if delete_matched:
        builder = builder.whenMatchedDelete()
    elif update_matched:
        builder = builder.whenMatchedUpdateAll()
    if not delete_matched:
        builder = builder.whenNotMatchedInsertAll()
    builder.execute()
    if latest_version(spark, path) == before:
        return {"version": before, "operation": "NONE", "metrics": {}}
    return last_commit(spark, path)


def read_changes(
    spark: SparkSession, path: str, after_version: int | None, up_to_version: int, all_changes: bool = False
) -> DataFrame:
    """Rows inserted or updated after after_version up to up_to_version, from the change data feed.

    all_changes: also the deleted rows and the pre-update images (a consumer that recomputes what they touched).
    """
    start = 0 if after_version is None else after_version + 1
    changes = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", start)
        .option("endingVersion", up_to_version)
        .load(path)
    )
    if not all_changes:
        changes = changes.where(F.col("_change_type").isin("insert", "update_postimage"))
    return changes.drop(*CDF_COLUMNS)


def history(spark: SparkSession, path: str, limit: int | None = None) -> DataFrame:
    table = DeltaTable.forPath(spark, path)
    return table.history(limit) if limit else table.history()
