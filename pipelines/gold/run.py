"""run_gold: recompute the gold partitions (days) that new silver rows touch, each table replaced atomically."""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake import Lake
from pipelines.common import StageError, StageResult, new_run_id
from pipelines.gold.analytics import hourly_demand, zone_daily
from pipelines.gold.features import pair_stats, trip_features

SILVER = "silver.trips"
CONSUMER = "gold"
FEATURES = "gold.trip_features"
ZONE_DAILY = "gold.zone_daily"
HOURLY_DEMAND = "gold.hourly_demand"
PAIR_STATS = "gold.pair_stats"
GOLD_TABLES = [PAIR_STATS, FEATURES, ZONE_DAILY, HOURLY_DEMAND]
DAY_COLUMN = {
    PAIR_STATS: "stats_date",
    FEATURES: "pickup_date",
    ZONE_DAILY: "pickup_date",
    HOURLY_DEMAND: "pickup_date",
}


def affected_days(touched: set[date], silver_days: set[date], window_days: int) -> set[date]:
    """The days whose gold rows change when silver rows of the `touched` days changed.

    The touched days themselves, plus every silver day up to `window_days` later: its pair statistics (and so its
    trip features) look back over the touched days.
    """
    later = {day for day in silver_days if any(0 < (day - t).days <= window_days for t in touched)}
    return set(touched) | later


def _days(df: DataFrame, column: str = "pickup_date") -> set[date]:
    return {row[0] for row in df.where(F.col(column).isNotNull()).select(column).distinct().collect()}


def build_gold(
    silver: DataFrame, days: set[date], silver_days: set[date], window_days: int, holidays: list[date]
) -> dict[str, DataFrame]:
    """The gold tables' rows for `days`, computed from the whole silver table (rows without a pickup day excluded).

    silver_days: the days silver has rows for. gold.trip_features uses the pair statistics under gold.pair_stats.
    """
    stats_days = sorted(days & silver_days)
    trips = silver.where(F.col("pickup_date").isin(*sorted(days)))
    stats_dates = silver.sparkSession.createDataFrame([(d,) for d in stats_days], "stats_date date")
    if stats_days:
        window_start = stats_days[0] - timedelta(days=window_days)
        in_lookback = (F.col("pickup_date") >= F.lit(window_start)) & (F.col("pickup_date") < F.lit(stats_days[-1]))
        history = silver.where(in_lookback)
    else:
        history = silver.limit(0)
    stats = pair_stats(history, stats_dates, window_days)
    return {
        PAIR_STATS: stats,
        FEATURES: trip_features(trips, stats, holidays),
        ZONE_DAILY: zone_daily(trips),
        HOURLY_DEMAND: hourly_demand(trips),
    }


def _day_predicate(column: str, days: set[date]) -> str:
    literals = ", ".join(f"DATE'{day.isoformat()}'" for day in sorted(days))
    return f"{column} IN ({literals})"


def _rows_written(lake: Lake, table: str) -> int:
    metrics = lake.history(table, 1).select("operationMetrics").first()[0] or {}
    return int(metrics.get("numOutputRows", 0))


def _touched_days(lake: Lake, watermark: int, current: int, silver_days: set[date]) -> set[date] | None:
    """Days with silver rows written after the watermark, plus days gold has and silver no longer has.

    None when the change feed cannot say. The feed as read here carries inserts and updates, not deletes: a day
    whose rows were all deleted is found by comparing days instead.
    """
    try:
        written = _days(lake.read_changes(SILVER, watermark, current))
    except AnalysisException:  # change files vacuumed, or the feed was off for some versions
        return None
    return written | (_days(lake.read(ZONE_DAILY)) - silver_days)


def run_gold(lake: Lake, full_refresh: bool = False, run_id: str | None = None) -> StageResult:
    """Builds gold from silver.trips: only the days touched since the last run, or everything on full_refresh."""
    run_id = run_id or new_run_id("gold")
    if not lake.exists(SILVER):
        raise StageError(f"{SILVER} does not exist at {lake.path(SILVER)}; run the silver stage first")
    window_days = int(lake.conf.require("gold.pair_window_days"))
    holidays = sorted(date.fromisoformat(str(day)) for day in lake.conf.get("gold.holidays") or [])
    current = lake.version(SILVER)
    silver = lake.read(SILVER, version=current)
    silver_days = _days(silver)
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
        touched = _touched_days(lake, watermark, current, silver_days)
        reason = "change feed unavailable" if touched is None else f"silver versions {watermark + 1}..{current}"

    incremental = touched is not None
    days = affected_days(touched, silver_days, window_days) if incremental else silver_days
    counts = {"days_recomputed": len(days)}
    if days or not incremental:
        for table, df in build_gold(silver, days, silver_days, window_days, holidays).items():
            where = _day_predicate(DAY_COLUMN[table], days) if incremental else None
            result.versions[table] = lake.overwrite(table, df, replace_where=where)
            counts[table] = _rows_written(lake, table)
    lake.set_watermark(CONSUMER, SILVER, current)
    result.counts = counts
    result.details = {
        "mode": "incremental" if incremental else "full",
        "reason": reason,
        "days": [day.isoformat() for day in sorted(days)],
    }
    return result
