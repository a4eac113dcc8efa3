"""Delta Lake read/write/merge, time travel, change feed and history, by table path."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from delta.tables import DeltaTable
from py4j.protocol import Py4JError, Py4JJavaError, Py4JNetworkError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lake.changes import appended_rows
from lake.jvm import static

CDF_COLUMNS = ["_change_type", "_commit_version", "_commit_timestamp"]
# Delta's optimistic-concurrency conflicts: another writer committed first; re-reading and retrying is safe.
CONFLICT_NAMES = (
    "ConcurrentModificationException",
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "ConcurrentWriteException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DELTA_CONCURRENT_",
)
CONFLICT_ATTEMPTS = 6
CONFLICT_BASE_DELAY_SECONDS = 0.5
CONFLICT_MAX_DELAY_SECONDS = 8.0
Result = TypeVar("Result")
LOG = logging.getLogger(__name__)
_SNAPSHOT_API_OK = True  # False once the DeltaLog snapshot call failed on a signature (then: history)


def is_delta(spark: SparkSession, path: str) -> bool:
    """DeltaTable.isDeltaTable in one Py4J round trip (read fresh: a table may appear during a run)."""
    return bool(static(spark, "io.delta.tables.DeltaTable.isDeltaTable")(spark._jsparkSession, path))


def latest_version(spark: SparkSession, path: str) -> int | None:
    """The table's current version, or None when no table exists at path.

    Read from the table's Delta log snapshot, brought up to date (a listing of `_delta_log`, ~4 ms), not from
    `history(1)` (~150 ms: a commit file parsed into a DataFrame and collected); a stage run asks 8-11 times.
    """
    if not is_delta(spark, path):
        return None
    version = _snapshot_version(spark, path)
    if version is None:
        version = int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])
    return version if version >= 0 else None  # -1: the table was deleted after is_delta looked


def _snapshot_version(spark: SparkSession, path: str) -> int | None:
    """DeltaLog.forTable(path).update().version through Py4J; None if this Delta build has another signature."""
    return _from_snapshot(spark, path, lambda snapshot: int(snapshot.version()))


def _from_snapshot(spark: SparkSession, path: str, read: Callable[[Any], Any]) -> Any:
    """read(the table's up-to-date Delta log snapshot) through Py4J; None if this Delta build has another API."""
    global _SNAPSHOT_API_OK
    if not _SNAPSHOT_API_OK:
        return None
    try:
        log = static(spark, "org.apache.spark.sql.delta.DeltaLog.forTable")(spark._jsparkSession, path)
        none = static(spark, "scala.Option.empty")()
        return read(log.update(False, none, none))
    except (Py4JJavaError, Py4JNetworkError):  # the call ran and failed (I/O, a broken log, the gateway): raise
        raise
    except (Py4JError, TypeError) as exc:  # no such method or class in this Delta release: use the public API
        _SNAPSHOT_API_OK = False
        LOG.warning("Delta's DeltaLog snapshot is not readable here (%s); using the public API instead", exc)
        return None


def last_commit(spark: SparkSession, path: str) -> dict[str, Any]:
    """Version, operation and operation metrics of the table's latest commit."""
    row = DeltaTable.forPath(spark, path).history(1).select("version", "operation", "operationMetrics").first()
    return {
        "version": int(row["version"]),
        "operation": row["operation"],
        "metrics": dict(row["operationMetrics"] or {}),
    }


def commit_info(spark: SparkSession, path: str, version: int) -> dict[str, Any] | None:
    """The commitInfo action of one commit, read from its log file through Spark's Hadoop file system: no Spark job
    (`DeltaTable.history` ran one a call), the store Spark is configured for, and a commit file never changes.
    None when the file is gone (log cleanup) or holds no commitInfo."""
    jvm = spark.sparkContext._jvm
    log_file = jvm.org.apache.hadoop.fs.Path(f"{path.rstrip('/')}/_delta_log/{int(version):020d}.json")
    fs = log_file.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(log_file):
        return None
    stream = fs.open(log_file)
    try:
        text = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()
    actions = (json.loads(line) for line in text.splitlines() if line.strip())
    return next((action["commitInfo"] for action in actions if "commitInfo" in action), None)


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
    txn: tuple[str, int] | None = None,
    options: dict[str, str] | None = None,
) -> int:
    """One atomic Delta commit (append, overwrite, or overwrite of the rows matching replace_where).

    txn=(app_id, version) makes the write idempotent: Delta skips it when the table already records that
    application's transaction at this version or later (a retried job commits once).
    """
    writer = df.write.format("delta").mode(mode)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if replace_where:
        writer = writer.option("replaceWhere", replace_where)
    if user_metadata:
        writer = writer.option("userMetadata", user_metadata)
    if txn:
        writer = writer.option("txnAppId", txn[0]).option("txnVersion", int(txn[1]))
    for key, value in (options or {}).items():
        writer = writer.option(key, value)
    writer.save(path)
    return latest_version(df.sparkSession, path)


def table_properties(spark: SparkSession, path: str) -> dict[str, str]:
    """The table's properties (TBLPROPERTIES), from the metadata action of its log snapshot: DESCRIBE DETAIL also
    counts the table's files, which took 1.4-2.7 s on a table's first call in a process (5M-row lake)."""
    metadata = _from_snapshot(spark, path, lambda snapshot: snapshot.metadata().json())
    if metadata is not None:
        return dict(json.loads(metadata)["metaData"].get("configuration") or {})
    return dict(DeltaTable.forPath(spark, path).detail().select("properties").first()[0] or {})


def set_properties(spark: SparkSession, path: str, properties: dict[str, str]) -> None:
    """Sets table properties in one metadata commit (retried on a conflict)."""
    pairs = ", ".join(f"'{key}' = '{value}'" for key, value in sorted(properties.items()))
    location = path.replace("`", "``")
    retry_on_conflict(lambda: spark.sql(f"ALTER TABLE delta.`{location}` SET TBLPROPERTIES ({pairs})"))


def is_conflict(exc: BaseException) -> bool:
    """True for Delta's concurrent-modification conflicts (Python-converted or raw Py4J), whatever the wrapping."""
    seen: BaseException | None = exc
    while seen is not None:
        text = f"{type(seen).__name__}: {seen}"
        if any(name in text for name in CONFLICT_NAMES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def retry_on_conflict(
    action: Callable[[], Result],
    attempts: int = CONFLICT_ATTEMPTS,
    base_delay_seconds: float = CONFLICT_BASE_DELAY_SECONDS,
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> Result:
    """Runs action, re-running it after a Delta commit conflict with jittered exponential backoff (bounded).

    action must re-read whatever it decided on (its snapshot is stale after a conflict); other errors, and the
    last conflict, propagate.
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if attempt == attempts or not is_conflict(exc):
                raise
            if on_retry:
                on_retry(attempt, exc)
            delay = min(CONFLICT_MAX_DELAY_SECONDS, base_delay_seconds * 2 ** (attempt - 1))
            time.sleep(delay * (0.5 + random.random()))
    raise AssertionError("unreachable")


def merge(
    df: DataFrame,
    path: str,
    keys: list[str],
    partition_by: list[str] | None = None,
    update_matched: bool = True,
    delete_matched: bool = False,
    target_filter: str | None = None,
    write_options: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Upserts df into the table by keys (creating it on first use); returns the commit's version and metrics.

    target_filter (SQL on alias t, e.g. a partition IN list) limits the files MERGE reads. A MERGE that changes
    nothing makes no commit: it returns the unchanged version, operation NONE and empty metrics.
    write_options: the options of the write that creates the table (its properties).
    """
    spark = df.sparkSession
    if not is_delta(spark, path):
        version = write(df, path, "overwrite", partition_by, options=write_options)
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
    A range that only appended rows is read as a scan of the files it added (lake.changes: the same rows, 2x faster).
    """
    start = 0 if after_version is None else after_version + 1
    appended = appended_rows(spark, path, start, up_to_version)
    if appended is not None:
        return appended
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
