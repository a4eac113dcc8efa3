"""bronze.ingest_log: one row per file an ingestion run looked at. A report, not the source of truth: what
landed is read from bronze.trips itself (its `_source_hash`), and a run repairs entries a crash left unwritten."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import functions as F

from lake import Lake, changes
from pipelines.bronze.files import SourceFile, file_identity

INGEST_LOG = "bronze.ingest_log"
BRONZE = "bronze.trips"
LIVE = ("ingested", "reinstated")  # the statuses that make a content hash a file's current version
STATS_PREFIX = 32  # characters of a string Delta keeps as min and max (dataSkippingStringPrefixLength)


def ingested_hashes(lake: Lake) -> set[str]:
    """Content hashes the log reports as ingested (bronze may hold more: a crash can lose a log entry)."""
    return {row["content_hash"] for row in ingested(lake)}


def ingested(lake: Lake, statuses: tuple[str, ...] = ("ingested",)) -> list[dict]:
    """The log's rows of ingested files (content_hash, source_file, logged_at in UTC): one per file version landed,
    a small table, read without a Spark job where delta-rs can. `statuses` may add "duplicate": files whose content
    had landed already (the same file passed again, or a copy under another name)."""
    if not lake.exists(INGEST_LOG):
        return []
    rows = lake.rows(INGEST_LOG, ["status", "content_hash", "source_file", "logged_at"])
    rows = [
        row
        for row in rows
        if row["status"] in statuses and row["logged_at"] is not None and row["content_hash"] is not None
    ]
    for row in rows:  # naive when Spark read it: the local time zone, as PySpark gives it
        row["logged_at"] = row["logged_at"].astimezone(timezone.utc)
    return rows


def counts_in_bronze(lake: Lake, hashes: list[str]) -> dict[str, tuple[int, int, str]]:
    """Per content hash: (rows, malformed rows, the run that landed it), as committed in bronze.trips."""
    return {h: (f.rows, f.corrupt_rows, f.run_id) for h, f in landed_files(lake, hashes).items()}


@dataclass(frozen=True)
class LandedFile:
    """One file version as bronze.trips holds it: what a log entry lost in a crash is rebuilt from."""

    source_file: str
    taxi_type: str | None
    rows: int
    corrupt_rows: int
    run_id: str
    landed_at: datetime  # UTC


def landed_files(lake: Lake, hashes: list[str]) -> dict[str, LandedFile]:
    """Per content hash, the file version bronze.trips holds (one aggregation over the hashes' rows)."""
    if not hashes or not lake.exists(BRONZE):
        return {}
    counted = (
        lake.read(BRONZE)
        .where(F.col("_source_hash").isin(hashes))
        .groupBy("_source_hash")
        .agg(
            F.min("_source_file"),
            F.min("taxi_type"),
            F.count(F.lit(1)),
            F.count("_corrupt_record"),
            F.max("_run_id"),
            F.max("_ingested_at"),
        )
    )
    return {
        r[0]: LandedFile(r[1], r[2], int(r[3]), int(r[4]), r[5], r[6].astimezone(timezone.utc))
        for r in counted.collect()
    }


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


Version = tuple[datetime, str, str]  # (when, source_file, content_hash): versions of a file compare in this order


def versions_by_file(
    lake: Lake, recovered: dict[str, LandedFile] | None = None, statuses: tuple[str, ...] = LIVE
) -> dict[str, list[Version]]:
    """Per file (`file_identity`: a republished TLC file may land in another dated folder), its logged versions:
    when each was logged (became current), where, and its hash. `recovered` adds versions bronze holds whose log
    entries were lost, dated when they landed. Statuses: LIVE (a version landed, or an earlier one published again);
    adding "duplicate" counts content published again under a name without landing."""
    versions: dict[str, list[Version]] = {}
    for row in ingested(lake, statuses):
        entry = (row["logged_at"], row["source_file"], row["content_hash"])
        versions.setdefault(file_identity(row["source_file"]), []).append(entry)
    for content_hash, landed in (recovered or {}).items():
        entry = (landed.landed_at, landed.source_file, content_hash)
        versions.setdefault(file_identity(landed.source_file), []).append(entry)
    return versions


def latest_hash_by_file(
    lake: Lake, recovered: dict[str, LandedFile] | None = None, statuses: tuple[str, ...] = LIVE
) -> dict[str, str]:
    """For each file ingested before, the hash of its latest version (`versions_by_file`; ties: the later path, then
    the hash, as silver's `newest_versions` breaks them)."""
    return {identity: max(versions)[2] for identity, versions in versions_by_file(lake, recovered, statuses).items()}


class RunLog:
    """The log rows of one ingestion run, written in one commit at its end."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.entries: list[dict[str, Any]] = []
        self.dated: dict[int, datetime] = {}  # entry index -> when its file landed, for entries of earlier runs
        self.seen: set[str] = set()  # the hashes the log reported as ingested when the run read it (log_outcome)

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
        landed: LandedFile | None = None,
        content_hash: str | None = None,
    ) -> None:
        """One entry; `landed` dates it when its file landed (an entry a crash lost, rebuilt from bronze)."""
        if landed is not None:
            self.dated[len(self.entries)] = landed.landed_at
        self.entries.append(
            {
                "source_file": location,
                "content_hash": source.content_hash if source else content_hash,
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
            "reinstated_files": len(having("reinstated")),
            "failed_files": len(having("failed")),
            "rows": sum(e["rows"] for e in ingested),
            "corrupt_rows": sum(e["corrupt_rows"] for e in ingested),
        }


def write(lake: Lake, log: RunLog, bronze_version: int | None) -> int | None:
    """Appends the run's log rows; returns the log table's version (None when the run saw no file).

    A file version is logged `ingested` once. Two runs overlapping in time can both hold an entry for it: the run
    that landed it, and one that started after the bronze commit and before that run's log write, which took the
    version for one whose entry a crash lost (`recovered`). The log is read again just before the append, and an
    entry another run has logged since this run read it (`log.seen`) is left out (the run's own counts still report
    it)."""
    if not log.entries:
        return lake.version(INGEST_LOG)
    logged_at = datetime.now(timezone.utc)
    meanwhile = ingested_hashes(lake) - log.seen if any(e["status"] == "ingested" for e in log.entries) else set()
    rows = [
        {
            **entry,
            "run_id": log.run_id,
            "bronze_version": bronze_version if entry["status"] == "ingested" and index not in log.dated else None,
            "logged_at": log.dated.get(index, logged_at),
        }
        for index, entry in enumerate(log.entries)
        if not (entry["status"] == "ingested" and entry["content_hash"] in meanwhile)
    ]
    if not rows:
        return lake.version(INGEST_LOG)
    return lake.append_records(INGEST_LOG, rows, user_metadata=log.run_id)
