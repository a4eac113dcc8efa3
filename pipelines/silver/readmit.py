"""Trips a retired file version takes out of silver that a live file still holds.

Silver keeps one row per trip_key: when two files hold a trip (a trip across midnight in two daily files), the
second copy is counted as a duplicate. If the kept copy's file is then republished without the trip, retiring the
old version deletes the trip, and the live file's copy must take its place: those bronze rows are read again and go
through the run like any other row (rules, GE, dedupe, the plan's check against silver).

Which trips: the keys of the retired versions' bronze rows (not silver's rows: a rerun after a crash between the
retirement and the append finds silver's copies gone, and must re-admit the same rows), less the trips the batch
itself passes and the trips silver holds from a version not retired. Where: bronze rows of the files' current
versions in the same pickup months, so the read is pruned to those partitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake import Lake
from pipelines.common import materialize, release
from pipelines.silver import interrupted
from pipelines.silver import quarantine as q
from pipelines.silver.transform import prepare_batch

SOURCE, TARGET = "bronze.trips", "silver.trips"
ROW = q.QUARANTINE_KEYS  # one bronze row: its file version and row number


@dataclass
class Readmitted:
    """Bronze rows of live file versions read again because a retired version held their trips (materialized: free
    with pipelines.common.release once the run is done)."""

    rows: DataFrame | None = None
    count: int = 0
    hashes: list[str] = field(default_factory=list)


def orphaned(
    lake: Lake,
    version: int,
    zones: DataFrame,
    retired: list[str],
    live: set[str],
    passing: DataFrame,
    runs: interrupted.Finished,
) -> Readmitted:
    """The bronze rows (as of the pinned `version`) of `live` content hashes holding a trip of a `retired` version
    that neither the batch's `passing` rows nor silver's rows of other versions hold. Only rows a finished run wrote
    count as held: an attempt that stopped may have re-admitted them, and its rerun reads them again to count them.
    Runs only when a run retires versions it did not read."""
    live = live - set(retired)
    if not retired or not live:
        return Readmitted()
    bronze = lake.read(SOURCE, version=version)
    old = bronze.where(F.col("_source_hash").isin(retired))
    months = sorted(row[0] for row in old.select("pickup_month").distinct().collect() if row[0] is not None)
    if not months:
        return Readmitted()
    keys = prepare_batch(old, zones).select("trip_key").join(passing.select("trip_key"), "trip_key", "left_anti")
    if lake.exists(TARGET):
        in_months = F.date_format("pickup_date", "yyyy-MM").isin(months) & ~F.col("_source_hash").isin(retired)
        kept = interrupted.kept_by_finished(lake.read(TARGET).where(in_months), runs).select("trip_key")
        keys = keys.join(kept, "trip_key", "left_anti")
    keys = materialize(keys.distinct())  # computed from the batch before it is released
    try:
        if not keys.count():  # the batch or silver holds every trip of the retired versions
            return Readmitted()
        holders = bronze.where(F.col("pickup_month").isin(months) & F.col("_source_hash").isin(sorted(live)))
        found = prepare_batch(holders, zones).join(keys, "trip_key", "left_semi").select(*ROW)
        rows = materialize(holders.join(found, ROW, "left_semi"))
    finally:
        release([keys])
    count = rows.count()
    if not count:
        release([rows])
        return Readmitted()
    hashes = sorted(row[0] for row in rows.select("_source_hash").distinct().collect())
    return Readmitted(rows, count, hashes)
