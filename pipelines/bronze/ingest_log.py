"""bronze.ingest_log: one row per file an ingestion run looked at. A report, not the source of truth: what
landed is read from bronze.trips itself (its `_source_hash`), and a run repairs entries a crash left unwritten."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pyspark.sql import functions as F

from lake import Lake, changes
from pipelines.bronze.files import SourceFile

INGEST_LOG = "bronze.ingest_log"
BRONZE = "bronze.trips"
STATS_PREFIX = 32  # characters of a string Delta keeps as min and max (dataSkippingStringPrefixLength)


def ingested_hashes(lake: Lake) -> set[str]:
    """Content hashes the log reports as ingested (bronze may hold more: a crash can lose a log entry)."""
    return {row["content_hash"] for row in ingested(lake)}


def ingested(lake: Lake) -> list[dict]:
    """The log's rows of ingested files (content_hash, source_file, logged_at in UTC): one per file version landed,
    a small table, read without a Spark job where delta-rs can."""
    if not lake.exists(INGEST_LOG):
        return []
    rows = lake.rows(INGEST_LOG, ["status", "content_hash", "source_file", "logged_at"])
    rows = [row for row in rows if row["status"] == "ingested" and row["logged_at"] is not None]
    for row in rows:  # naive when Spark read it: the local time zone, as PySpark gives it
        row["logged_at"] = row["logged_at"].astimezone(timezone.utc)
    return rows


def counts_in_bronze(lake: Lake, hashes: list[str]) -> dict[str, tuple[int, int, str]]:
    """Per content hash: (rows, malformed rows, the run that landed it), as committed in bronze.trips."""
    if not hashes or not lake.exists(BRONZE):
        return {}
    counted = (
        lake.read(BRONZE)
        .where(F.col("_source_hash").isin(hashes))
        .groupBy("_source_hash")
        .agg(F.count(F.lit(1)).alias("rows"), F.count("_corrupt_record").alias("corrupt"), F.max("_run_id"))
    )
    return {r[0]: (int(r[1]), int(r[2]), r[3]) for r in counted.collect()}


def landed_counts(
    lake: Lake, commits: list[tuple[int, dict[str, int]]], run_id: str
) -> dict[str, tuple[int, int, str]]:
    """counts_in_bronze for the files this run committed, given each commit's version and {hash: data rows}, from
    the statistics its log entry keeps for each data file it added (rows, nulls of _corrupt_record, and the
    _source_hash prefix Delta keeps as min and max: a file written from one source file has one hash). When a file's
    statistics are missing or name more than one hash, or a file's rows differ from the data rows counted before the
    write, every count is read back from bronze instead (counts_in_bronze).
    """
    expected = {content_hash: rows for _, files in commits for content_hash, rows in files.items()}
    if not expected:
        return {}
    counted = _counts_from_stats(lake, commits)
    if counted is None or any(counted.get(h, (0, 0))[0] != rows for h, rows in expected.items()):
        return counts_in_bronze(lake, list(expected))
    return {content_hash: (*counted[content_hash], run_id) for content_hash in expected}


def _counts_from_stats(lake: Lake, commits: list[tuple[int, dict[str, int]]]) -> dict[str, tuple[int, int]] | None:
    counted: dict[str, tuple[int, int]] = {}
    for version, files in commits:
        stats = changes.added_file_stats(lake.spark, lake.path(BRONZE), version)
        if stats is None:
            return None
        for file in stats:
            low = str(file.get("minValues", {}).get("_source_hash") or "")
            high = str(file.get("maxValues", {}).get("_source_hash") or "")
            nulls = file.get("nullCount", {}).get("_corrupt_record")
            # the commit wrote only its own files' hashes (the fence), so a prefix of 32 hex digits names one of them
            named = [h for h in files if len(low) >= STATS_PREFIX and h.startswith(low) and high.startswith(low)]
            if len(named) != 1 or nulls is None or "numRecords" not in file:
                return None
            content_hash = named[0]
            rows, corrupt = counted.get(content_hash, (0, 0))
            counted[content_hash] = (rows + file["numRecords"], corrupt + file["numRecords"] - nulls)
    return counted


def latest_hash_by_file(lake: Lake) -> dict[str, str]:
    """For each file name ingested before, the hash of its latest ingested version.

    Keyed by the base name, not the path: a republished TLC file keeps its name but may land in another dated folder.
    """
    latest: dict[str, dict] = {}
    for row in ingested(lake):
        name = row["source_file"].rsplit("/", 1)[-1]
        if name not in latest or row["logged_at"] > latest[name]["logged_at"]:
            latest[name] = row
    return {name: row["content_hash"] for name, row in latest.items()}


class RunLog:
    """The log rows of one ingestion run, written in one commit at its end."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.entries: list[dict[str, Any]] = []

    def add(
        self,
        location: str,
        source: SourceFile | None,
        status: str,
        reason: str | None = None,
        taxi_type: str | None = None,
        rows: int = 0,
        corrupt_rows: int = 0,
        replaces_hash: str | None = None,
    ) -> None:
        self.entries.append(
            {
                "source_file": location,
                "content_hash": source.content_hash if source else None,
                "size_bytes": source.size_bytes if source else None,
                "taxi_type": taxi_type,
                "status": status,
                "reason": reason,
                "rows": rows,
                "corrupt_rows": corrupt_rows,
                "replaces_hash": replaces_hash,
            }
        )

    def counts(self) -> dict[str, int]:
        def having(status: str) -> list[dict[str, Any]]:
            return [e for e in self.entries if e["status"] == status]

        ingested = having("ingested")
        return {
            "files": len(self.entries),
            "ingested_files": len(ingested),
            "new_versions": sum(1 for e in ingested if e["replaces_hash"]),
            "duplicate_files": len(having("duplicate")),
            "failed_files": len(having("failed")),
            "rows": sum(e["rows"] for e in ingested),
            "corrupt_rows": sum(e["corrupt_rows"] for e in ingested),
        }


def write(lake: Lake, log: RunLog, bronze_version: int | None) -> int | None:
    """Appends the run's log rows; returns the log table's version (None when the run saw no file)."""
    if not log.entries:
        return lake.version(INGEST_LOG)
    logged_at = datetime.now(timezone.utc)
    rows = [
        {
            **entry,
            "run_id": log.run_id,
            "bronze_version": bronze_version if entry["status"] == "ingested" else None,
            "logged_at": logged_at,
        }
        for entry in log.entries
    ]
    return lake.append_records(INGEST_LOG, rows, user_metadata=log.run_id)
