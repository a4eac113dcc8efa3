"""Silver's writes: what a run will commit (counted before any commit), then the commits and their metrics.

Order: retire the superseded file versions (DELETE via MERGE, visible in the change feed), append the new trips,
append the new quarantine rows (the plan left out the rows already there by (_source_hash, _row_number); a
reprocessing run updates them with a MERGE instead). Every step is idempotent given the same batch, so a rerun
after a crash between two commits ends with the tables a clean run makes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake import Lake
from pipelines.bronze import ingest_log
from pipelines.common import materialize, release
from pipelines.days import day_filter, day_predicate
from pipelines.silver import dedupe, interrupted
from pipelines.silver import quarantine as q
from pipelines.silver.build import BatchStats, protected_hashes
from pipelines.silver.transform import ROW_ID, to_silver

TARGET, QUARANTINE = "silver.trips", "silver.quarantine"
PRESENT = "_present"  # marker column: the row is already in the target table


@dataclass
class WritePlan:
    """The frames a run commits and the row counts it expects each commit to report."""

    new_trips: DataFrame
    quarantine: DataFrame  # incremental: rejected rows not in the quarantine yet; reprocess: the rows to update
    retire_hashes: list[str]
    expected: dict[str, int]
    days: list = field(default_factory=list)
    _cached: list[DataFrame] = field(default_factory=list)

    def release(self) -> None:
        release(self._cached)


def published(lake: Lake) -> dict[str, str]:
    """Per file identity, the content it was last published with (landed, or a copy of content landed before)."""
    return ingest_log.latest_hash_by_file(lake, statuses=(*ingest_log.LIVE, "duplicate"))


def superseded_hashes(
    stats: BatchStats,
    latest: dict[str, str] | None = None,
    logged: dict[str, list[ingest_log.Version]] | None = None,
) -> list[str]:
    """Hashes of earlier versions of the batch's files (same `file_identity`) that bronze.ingest_log recorded
    (`logged`: `ingest_log.versions_by_file`, as build_silver got it), but none that is still the latest content of
    another file (`latest`: `published`)."""
    versions = [(identity, v) for identity in stats.newest for v in (logged or {}).get(identity or "", [])]
    logged_at: dict[str, datetime] = {}  # per hash, when it last became its file's current version
    for _, (at, _, content_hash) in versions:
        logged_at[content_hash] = max(logged_at.get(content_hash, at), at)
    old = set(stats.superseded_hashes)
    for identity, (at, _, content_hash) in versions:
        latest_hash = stats.newest[identity].source_hash
        if content_hash != latest_hash and at <= logged_at.get(latest_hash, datetime.max.replace(tzinfo=timezone.utc)):
            old.add(content_hash)
    return sorted(old - protected_hashes(stats.files, latest))


def start_over(lake: Lake) -> dict[str, int]:
    """Empties silver.trips and silver.quarantine before a run without a watermark (a first run finds them empty).

    A run has no watermark after `lake restore` of bronze.trips or of silver cleared it: it rebuilds silver from
    bronze as it is now, and rows of files bronze no longer holds must not stay. One commit per table; history
    keeps the rows, and the change feed shows them deleted, so gold recomputes their days. Returns the rows removed.
    """
    removed = {}
    for table in (TARGET, QUARANTINE):
        rows = lake.read(table).count() if lake.exists(table) else 0
        if rows:
            lake.overwrite(table, lake.empty(table))
        removed[table] = rows
    return removed


def _mark_present(rows: DataFrame, existing: DataFrame, keys: list[str]) -> DataFrame:
    """rows with PRESENT true when their keys are in existing (keys unique there), persisted."""
    marker = existing.select(*keys).withColumn(PRESENT, F.lit(True))
    marked = rows.join(marker, on=keys, how="left").withColumn(PRESENT, F.coalesce(PRESENT, F.lit(False)))
    return materialize(marked)


def _count_present(marked: DataFrame) -> tuple[int, int]:
    row = marked.agg(F.count(F.lit(1)), F.count_if(PRESENT)).first()
    return int(row[0]), int(row[1])


def _present_keys(passing: DataFrame, target: DataFrame) -> tuple[DataFrame, int]:
    """The batch's distinct trip keys that target already has (materialized), and how many. Silver's rows of the
    batch's days are counted first (a read pruned to those day partitions): none, the common case of new days,
    costs no join; few are broadcast to the batch's keys."""
    existing = target.count()
    if not existing:
        return passing.select("trip_key").limit(0), 0
    keys = target.select("trip_key")
    keys = dedupe.broadcast_if_small(keys, existing)
    present = materialize(passing.select("trip_key").join(keys, "trip_key", "left_semi").distinct())
    return present, present.count()


def _resumed(target: DataFrame, present: DataFrame, in_silver: int, runs: interrupted.Finished | None) -> int:
    """Of the batch's trips silver has, those an attempt that stopped before finishing appended (this batch's own,
    written before a crash: not duplicates). A job only after a crash, when the batch has trips silver holds."""
    others = interrupted.written_by_others(target, runs) if in_silver and runs is not None else None
    if others is None:
        return 0
    return others.select("trip_key").join(present, "trip_key", "left_semi").distinct().count()


def plan(
    lake: Lake,
    passing: DataFrame,
    quarantine: DataFrame,
    stats: BatchStats,
    retire: list[str],
    reprocess: bool,
    run_id: str,
    again: list[str] | None = None,
    runs: interrupted.Finished | None = None,
) -> WritePlan:
    """Counts, before any commit, what each write will add: trips not in silver (days of the batch only, rows of
    retired versions excluded), one per trip_key, and quarantine rows not already there. Only narrow frames of
    keys are shuffled and materialized; the trips appended are computed from the materialized batch at the commit."""
    cached: list[DataFrame] = []
    days = stats.days  # the kept batch's days (a superset of the trips'), from the rule counts' aggregation
    target = lake.read(TARGET)
    predicate = day_filter(days)
    target = target.where(predicate) if predicate is not None else target.limit(0)
    if retire:
        target = target.where(~F.col("_source_hash").isin(retire))
    later = materialize(dedupe.later_copies(passing, cache=cached))
    duplicates = later.count()
    present, in_silver = _present_keys(passing, target)
    cached += [later, present]
    unique = stats.passed - duplicates
    resumed = _resumed(target, present, in_silver, runs)
    expected = {"unique_passed": unique, "in_silver": in_silver, "new_trips": unique - in_silver, "resumed": resumed}
    first = dedupe.without(passing, later, [ROW_ID], duplicates)
    new_trips = to_silver(dedupe.without(first, present, ["trip_key"], in_silver), run_id)
    if reprocess:
        quarantine_rows, expected["quarantine_rows"], expected["quarantine_new"] = quarantine, -1, 0
        expected["quarantine_present_again"] = 0
    else:
        existing = lake.read(QUARANTINE)
        q_marked = _mark_present(quarantine, existing, q.QUARANTINE_KEYS)
        cached.append(q_marked)
        total, present_rows = _count_present(q_marked)
        expected |= {"quarantine_rows": total, "quarantine_new": total - present_rows}
        again_present = q_marked.where(F.col(PRESENT) & F.col("_source_hash").isin(again)) if again else None
        expected["quarantine_present_again"] = again_present.count() if again_present is not None else 0
        quarantine_rows = q_marked.where(~F.col(PRESENT)).drop(PRESENT)
    if retire:
        expected["retired_trips"] = lake.read(TARGET).where(F.col("_source_hash").isin(retire)).count()
        expected["retired_quarantine"] = _open_rows_of(lake, retire).count()
    else:
        expected |= {"retired_trips": 0, "retired_quarantine": 0}
    return WritePlan(new_trips, quarantine_rows, retire, expected, days, cached)


def _open_rows_of(lake: Lake, hashes: list[str]) -> DataFrame:
    quarantine = lake.read(QUARANTINE)
    return quarantine.where(F.col("_source_hash").isin(hashes) & F.col("_released_run_id").isNull())


def _metric(metrics: dict[str, Any], *names: str) -> int:
    return sum(int(metrics.get(name, 0) or 0) for name in names)


def append_trips(lake: Lake, rows: DataFrame) -> int:
    """Appends the new trips in one commit; returns the version (a seam the accounting test breaks)."""
    return lake.append(TARGET, rows)


def append_quarantine(lake: Lake, rows: DataFrame) -> int:
    """Appends the planned new quarantine rows in one commit (the plan's anti-join made them new: a MERGE's own
    match cost ~1 s a run more and read the whole quarantine); returns the version (a seam the crash test breaks)."""
    return lake.append(QUARANTINE, rows)


def merge_quarantine(lake: Lake, rows: DataFrame) -> dict[str, Any]:
    """Reprocessing: quarantine rows by (_source_hash, _row_number), updated (released) or inserted."""
    return lake.merge(QUARANTINE, rows, q.QUARANTINE_KEYS, update_matched=True)


def _delete(lake: Lake, table: str, rows: DataFrame, keys: list[str], hashes: list[str]) -> tuple[int | None, int]:
    """Deletes rows (read from table itself) by keys in one MERGE commit; returns (version, rows deleted)."""
    in_hashes = "t._source_hash IN (" + ", ".join(f"'{h}'" for h in hashes) + ")"
    merged = lake.merge(table, rows, keys, delete_matched=True, target_filter=in_hashes)
    if merged["operation"] == "NONE":
        return None, 0
    return merged["version"], _metric(merged["metrics"], "numTargetRowsDeleted")


def commit(lake: Lake, write: WritePlan, reprocess: bool, versions: dict[str, int | None]) -> dict[str, int]:
    """The run's commits, in crash-safe order; returns what Delta's commit metrics say each one wrote."""
    committed = dict.fromkeys(["retired_trips", "retired_quarantine", "new_trips", "quarantine_new"], 0)
    if write.retire_hashes and write.expected["retired_trips"]:
        old = lake.read(TARGET).where(F.col("_source_hash").isin(write.retire_hashes))
        versions[TARGET], committed["retired_trips"] = _delete(
            lake, TARGET, old, ["trip_key", "_source_hash"], write.retire_hashes
        )
    if write.expected["new_trips"]:
        versions[TARGET] = append_trips(lake, write.new_trips)
        committed["new_trips"] = _metric(lake.commit_metrics(TARGET, versions[TARGET]), "numOutputRows")
    if write.retire_hashes and write.expected["retired_quarantine"]:
        old = _open_rows_of(lake, write.retire_hashes)
        versions[QUARANTINE], committed["retired_quarantine"] = _delete(
            lake, QUARANTINE, old, q.QUARANTINE_KEYS, write.retire_hashes
        )
    if reprocess:
        merged = merge_quarantine(lake, write.quarantine)
        if merged["operation"] != "NONE":
            versions[QUARANTINE] = merged["version"]
        committed["quarantine_new"] = _metric(merged["metrics"], "numTargetRowsInserted")
        committed["quarantine_updated"] = _metric(merged["metrics"], "numTargetRowsUpdated")
    elif write.expected["quarantine_new"]:
        versions[QUARANTINE] = append_quarantine(lake, write.quarantine)
        committed["quarantine_new"] = _metric(lake.commit_metrics(QUARANTINE, versions[QUARANTINE]), "numOutputRows")
    return committed


__all__ = ["WritePlan", "commit", "day_predicate", "plan", "published", "start_over", "superseded_hashes"]
