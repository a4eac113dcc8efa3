"""run_gold: recompute the gold partitions (days) that silver changes touch, each table replaced atomically.

Cost follows new data: an incremental run reads the silver change feed since its watermark (inserts, updates and
deletes), recomputes the touched days and the `window_days` days after them, and reads only the silver days those
need (each recomputed day and the window before it); it reads no gold table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from py4j.protocol import Py4JError
from pyspark import inheritable_thread_target
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake import Lake
from lake.errors import ConfigError
from lake.session import session_conf
from pipelines.common import Progress, StageError, StageResult, materialize, new_run_id, release
from pipelines.days import day_predicate, in_days
from pipelines.gold import sketch
from pipelines.gold.analytics import hourly_demand, zone_daily
from pipelines.gold.features import (
    DEFAULT_HOUR_BUCKET_HOURS,
    daily_cells,
    pair_hour_stats,
    pair_stats,
    trip_features,
    with_zone_trips_prev_hour,
)
from pipelines.gold.holidays import holidays_between
from pipelines.schemas import SILVER_TRIPS, TRIP_FEATURES

log = logging.getLogger(__name__)

SILVER = "silver.trips"
CONSUMER = "gold"
FEATURES = "gold.trip_features"
ZONE_DAILY = "gold.zone_daily"
HOURLY_DEMAND = "gold.hourly_demand"
PAIR_STATS = "gold.pair_stats"
GOLD_TABLES = [PAIR_STATS, FEATURES, ZONE_DAILY, HOURLY_DEMAND]
# The silver columns gold reads: trip_features' own columns that silver holds, and what zone_daily sums. Silver is
# materialized and shuffled (the previous-hour window) once per run: the other columns (fares, run ids, file names
# and hashes) were half of its bytes.
SILVER_COLUMNS = [
    *(name for name in TRIP_FEATURES.fieldNames() if name in SILVER_TRIPS.fieldNames()),
    "pickup_zone",
    "total_amount",
    "tip_amount",
]
# How gold's writes are planned. The stored trips are partitioned and sorted by day (with_zone_trips_prev_hour):
# joins on (day, pair, ...) may shuffle just the statistics to that partitioning, not the trips, and statistics
# found (at run time) to be under 64 MB are broadcast instead, so the trips stream through both joins unsorted and
# no write's repartition by day or sort by day is needed (Spark drops a repartition its input already satisfies).
WRITE_SETTINGS = {
    "spark.sql.requireAllClusterKeysForCoPartition": "false",
    "spark.sql.adaptive.autoBroadcastJoinThreshold": "64m",
}
DAY_COLUMN = {
    PAIR_STATS: "stats_date",
    FEATURES: "pickup_date",
    ZONE_DAILY: "pickup_date",
    HOURLY_DEMAND: "pickup_date",
}


def affected_days(touched: set[date], silver_days: set[date] | None, window_days: int) -> set[date]:
    """The days whose gold rows change when silver rows of the `touched` days changed.

    The touched days themselves, plus the days up to `window_days` later (their pair statistics look back over the
    touched days; the previous-hour count of the next day's first hour too). silver_days None: every calendar day of
    that range (a day without silver rows then just has its gold rows removed, which is what a rebuild gives).
    """
    later = {t + timedelta(days=k) for t in touched for k in range(1, window_days + 1)}
    if silver_days is not None:
        later &= silver_days
    return set(touched) | later


def needed_days(days: Iterable[date], window_days: int) -> set[date]:
    """The silver days that recomputing `days` reads: each day and the `window_days` days before it."""
    return {day - timedelta(days=k) for day in days for k in range(window_days + 1)}


def build_gold(
    silver: DataFrame,
    days: set[date] | None,
    silver_days: set[date] | None = None,
    window_days: int = 28,
    holidays: Iterable[date] = (),
    relative_accuracy: float = sketch.DEFAULT_RELATIVE_ACCURACY,
    hour_bucket_hours: int = DEFAULT_HOUR_BUCKET_HOURS,
    cache: list[DataFrame] | None = None,
) -> dict[str, DataFrame]:
    """The gold tables' rows for `days` (None: every day), computed from silver rows (without a pickup day excluded).

    `silver` must hold the recomputed days and the `window_days` before each (more is filtered out here).
    silver_days, when given, limits the recomputed days to days silver has. cache: a list to which the intermediate
    frames that several tables read are added, persisted (the caller unpersists them after writing).
    """
    if days is not None and silver_days is not None:
        days = set(days) & set(silver_days)
    silver = silver.where(F.col("pickup_date").isNotNull())
    if days is not None:
        silver = silver.where(in_days(needed_days(days, window_days)))
    trips = with_zone_trips_prev_hour(silver, days)
    cells = daily_cells(silver, hour_bucket_hours, relative_accuracy)  # one pass over the trips for both statistics
    if cache is not None:
        trips = materialize(trips, keep_partitioning=True)  # by day: see with_zone_trips_prev_hour
        cells = materialize(cells, keep_partitioning=True)  # by pair: see daily_cells
        cache += [trips, cells]
    stats = pair_stats(silver, days, window_days, relative_accuracy, cells=cells)
    hour_stats = pair_hour_stats(silver, days, window_days, hour_bucket_hours, relative_accuracy, cells=cells)
    if cache is not None:
        stats, hour_stats = materialize(stats), materialize(hour_stats)
        cache += [stats, hour_stats]
    return {
        PAIR_STATS: stats,
        FEATURES: trip_features(trips, stats, sorted(holidays), hour_stats, hour_bucket_hours),
        ZONE_DAILY: zone_daily(trips),
        HOURLY_DEMAND: hourly_demand(trips),
    }


def _rows_written(lake: Lake, table: str, version: int) -> int:
    return int(lake.commit_metrics(table, version).get("numOutputRows", 0))


def _write_one(lake: Lake, table: str, df: DataFrame, days: set[date] | None) -> tuple[int, int]:
    """Replaces the table's rows of `days` (None: all of it) by df; returns the version and the rows written."""
    where = day_predicate(days, DAY_COLUMN[table]) if days is not None else None
    before = lake.version(table)
    version = lake.overwrite(table, df.repartition(DAY_COLUMN[table]), replace_where=where)
    # Delta records no commit for a write that adds and removes nothing: then nothing was written.
    return version, _rows_written(lake, table, version) if version != before else 0


def _write_tables(
    lake: Lake, tables: dict[str, DataFrame], days: set[date] | None, concurrency: int
) -> dict[str, tuple[int, int]]:
    """Each table's replacement, up to `concurrency` at once (tables in order when 1). Four independent commits:
    a small run's writes are mostly driver-side waits (planning, the Delta log, commits) that overlap. Every write
    ends before this returns or raises (the first failure in table order), so none outlives the run's cache."""
    if concurrency <= 1:
        return {table: _write_one(lake, table, df, days) for table, df in tables.items()}
    write = inheritable_thread_target(lake.spark)(_write_one)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="gold-write") as pool:
        futures = {table: pool.submit(write, lake, table, df, days) for table, df in tables.items()}
    failed = [(table, exc) for table, future in futures.items() if (exc := future.exception()) is not None]
    for table, exc in failed[1:]:  # the first is raised below; the others would be lost
        log.error("gold: writing %s failed too: %s: %s", table, type(exc).__name__, str(exc)[:500])
    return {table: future.result() for table, future in futures.items()}


def _concurrency(lake: Lake) -> int:
    value = lake.conf.get("gold.write_concurrency", len(GOLD_TABLES))
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < 1:
        raise ConfigError(f"gold.write_concurrency must be a whole number >= 1, not {value!r}")
    return int(value)


def _touched_days(lake: Lake, watermark: int, current: int) -> tuple[set[date] | None, str]:
    """Pickup days of every silver row inserted, updated (before and after) or deleted after the watermark.

    (None, why) when the change feed cannot say: its files were vacuumed, or the feed was off for some versions.
    """
    try:
        changes = lake.read_changes(SILVER, watermark, current, all_changes=True)
        days = changes.where(F.col("pickup_date").isNotNull()).select("pickup_date").distinct().collect()
    except (PySparkException, Py4JError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return None, f"change feed of {SILVER} versions {watermark + 1}..{current} unreadable ({first_line})"
    return {row[0] for row in days}, f"{SILVER} versions {watermark + 1}..{current}"


def _settings(lake: Lake) -> tuple[int, float, int, list[date]]:
    window_days = int(lake.conf.require("gold.pair_window_days"))
    hours = int(lake.conf.get("gold.pair_hour_bucket_hours") or DEFAULT_HOUR_BUCKET_HOURS)
    accuracy = float(lake.conf.get("gold.median_relative_accuracy") or sketch.DEFAULT_RELATIVE_ACCURACY)
    if window_days < 1 or not 0 < accuracy < 1 or hours not in (1, 2, 3, 4, 6, 8, 12, 24):
        raise ConfigError(
            "gold: pair_window_days must be >= 1, median_relative_accuracy in (0, 1) and pair_hour_bucket_hours a "
            f"divisor of 24 (got {window_days}, {accuracy}, {hours})"
        )
    extra = [date.fromisoformat(str(day)) for day in lake.conf.get("gold.extra_holidays") or []]
    return window_days, accuracy, hours, extra


def run_gold(
    lake: Lake, full_refresh: bool = False, run_id: str | None = None, progress: Callable[[str], None] | None = None
) -> StageResult:
    """Builds gold from silver.trips: only the days touched since the last run, or everything on full_refresh."""
    run_id = run_id or new_run_id("gold")
    say = Progress("gold", progress)
    if not lake.exists(SILVER):
        raise StageError(f"{SILVER} does not exist at {lake.path(SILVER)}; run the silver stage first")
    window_days, accuracy, hours, extra_holidays = _settings(lake)
    concurrency = _concurrency(lake)
    current = lake.version(SILVER)
    watermark = lake.watermark(CONSUMER, SILVER)
    result = StageResult("gold", run_id, versions={SILVER: current})

    touched = None
    if full_refresh:
        reason = "full refresh requested"
    elif watermark is None or any(not lake.exists(table) for table in GOLD_TABLES):
        reason = "first run"
    elif watermark > current:
        reason = f"{SILVER} is at version {current}, behind the watermark {watermark} (table recreated)"
    elif watermark == current:
        result.details = {"mode": "up to date", "silver_version": current}
        result.counts = {"days_recomputed": 0, **{table: 0 for table in GOLD_TABLES}}
        return result
    else:
        touched, reason = _touched_days(lake, watermark, current)
        if touched is None:
            reason += "; rebuilding every day instead"
            log.warning("gold: %s", reason)

    silver = lake.read(SILVER, version=current).select(*SILVER_COLUMNS)
    incremental = touched is not None
    days = read_days = None
    if incremental:
        days = affected_days(touched, None, window_days)
        read_days = needed_days(days, window_days)
        silver = silver.where(in_days(read_days))  # partition pruning
    # Not materialized: silver is read three times (the day span, the trips, the cells), each a scan of the few
    # columns it needs; storing it first cost more than those scans (bench/results/scale.md: -17% at 5M rows).
    cached: list[DataFrame] = []
    try:
        if incremental:
            span = (min(days), max(days)) if days else None
            counts = {"days_recomputed": len(days), "silver_days_read": len(read_days)}
        else:
            low, high, n_days = silver.agg(
                F.min("pickup_date"), F.max("pickup_date"), F.countDistinct("pickup_date")
            ).first()
            span = (low, high) if low is not None else None
            counts = {"days_recomputed": int(n_days), "silver_days_read": int(n_days)}
        say(f"{'incremental' if incremental else 'full'} ({reason}): {counts['days_recomputed']:,} day(s) to recompute")
        if span is not None or not incremental:  # a full run over an empty silver empties gold
            holidays = holidays_between(*span, extra_holidays) if span else []
            tables = build_gold(silver, days, None, window_days, holidays, accuracy, hours, cache=cached)
            with session_conf(lake.spark, WRITE_SETTINGS):
                written = _write_tables(lake, tables, days if incremental else None, concurrency)
            for table, (version, rows) in written.items():
                result.versions[table], counts[table] = version, rows
                say(f"{table}: {rows:,} rows written")
    finally:
        release(cached)
    lake.set_watermark(CONSUMER, SILVER, current)
    result.counts = counts
    result.details = {
        "mode": "incremental" if incremental else "full",
        "reason": reason,
        "days": [day.isoformat() for day in sorted(days)] if days is not None else "all",
    }
    return result
