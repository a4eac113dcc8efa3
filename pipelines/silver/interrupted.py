"""What a silver attempt that stopped before it finished left behind, so the next run counts its batch right.

A finished incremental run records, in quality.stage_runs, the versions of bronze.trips and bronze.ingest_log it read
up to and of silver.trips and silver.quarantine it left; then it moves its watermarks. So:

- commits on silver.trips or silver.quarantine after the versions finished runs recorded are a stopped attempt's:
  its trips (`_silver_run_id` of the rows those commits inserted) are the rerun's `resumed_trips`, not duplicates,
  and the rows they deleted (retirement, `numTargetRowsDeleted`) are `retired_earlier`;
- a run stopped after its record and before its watermarks finished its batch: `repair_watermarks` moves them.

Without this the rerun's counts described only its own commits, and `lake doctor`'s accounting failed after a crash
although the tables were right.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake import Lake
from pipelines.bronze import ingest_log

LOG = logging.getLogger(__name__)
RUNS = "quality.stage_runs"
SOURCE, INGEST_LOG = "bronze.trips", ingest_log.INGEST_LOG
TARGET, QUARANTINE = "silver.trips", "silver.quarantine"
RECORDED = (SOURCE, INGEST_LOG, TARGET, QUARANTINE)


@dataclass(frozen=True)
class Finished:
    """The finished silver runs' ids and the last version of each table they recorded; `unfinished`: run ids of the
    silver.trips rows that commits after those versions inserted (a stopped attempt's)."""

    run_ids: frozenset[str] = frozenset()
    versions: dict[str, int] = field(default_factory=dict)
    unfinished: tuple[str, ...] = ()


def finished(lake: Lake, stage: str = "silver") -> Finished:
    """From quality.stage_runs (read without a Spark job where delta-rs can); the unfinished run ids are read from
    silver.trips' change feed only when it has commits after the recorded version (after a crash)."""
    if not lake.exists(RUNS):
        return Finished()
    rows = [r for r in lake.rows(RUNS, ["run_id", "stage", "status", "versions"]) if r["stage"] == stage]
    done = [r for r in rows if r["status"] == "success"]
    versions: dict[str, int] = {}
    for row in done:
        recorded = dict(row["versions"] or [])
        if SOURCE not in recorded:  # a reprocessing run: its commits insert no stopped attempt's rows, delete none
            continue
        for table, version in recorded.items():
            if table in RECORDED and version is not None:
                versions[table] = max(versions.get(table, -1), int(version))
    run_ids = frozenset(r["run_id"] for r in done)
    return Finished(run_ids, versions, _unfinished(lake, run_ids, versions.get(TARGET)))


def _unfinished(lake: Lake, run_ids: frozenset[str], recorded: int | None) -> tuple[str, ...]:
    current = lake.version(TARGET)
    if current is None or (recorded is not None and current <= recorded):
        return ()
    try:
        inserted = lake.read_changes(TARGET, recorded, current).select("_silver_run_id").distinct().collect()
    except Exception as exc:  # noqa: BLE001 - the counts after a crash are then the rerun's own; the data is right
        LOG.warning("cannot read %s's changes after version %s (%s)", TARGET, recorded, exc)
        return ()
    return tuple(sorted({row[0] for row in inserted if row[0] is not None} - run_ids))


def repair_watermarks(lake: Lake, consumer: str, runs: Finished) -> None:
    """A run that recorded its success and stopped before moving its watermarks finished its batch: they move to
    the versions it recorded. Only for incremental runs (no watermark on bronze.trips: a rebuild starts over)."""
    mark = lake.watermark(consumer, SOURCE)
    if mark is None:
        return
    for table in (SOURCE, INGEST_LOG):
        done = runs.versions.get(table)
        current = mark if table == SOURCE else lake.watermark(consumer, table)
        if done is not None and (current is None or done > current):
            lake.set_watermark(consumer, table, done)


def retired_since(lake: Lake, runs: Finished) -> int:
    """Rows deleted from silver.trips and silver.quarantine by commits after the versions finished runs recorded:
    an attempt that stopped after its retirement (each commit's numTargetRowsDeleted, read from the commit files)."""
    deleted = 0
    for table in (TARGET, QUARANTINE):
        current = lake.version(table)
        if current is None:
            continue
        for version in range(runs.versions.get(table, -1) + 1, current + 1):
            deleted += int(lake.commit_metrics(table, version).get("numTargetRowsDeleted", 0) or 0)
    return deleted


def written_by_others(rows: DataFrame, runs: Finished) -> DataFrame | None:
    """Silver rows a stopped attempt wrote (the batch's own trips, appended before it stopped); None when none did."""
    return rows.where(F.col("_silver_run_id").isin(list(runs.unfinished))) if runs.unfinished else None


def kept_by_finished(rows: DataFrame, runs: Finished) -> DataFrame:
    """Silver rows a finished run wrote."""
    return rows.where(~F.col("_silver_run_id").isin(list(runs.unfinished))) if runs.unfinished else rows
