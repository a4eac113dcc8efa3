"""gold.pair_stats and gold.trip_features: what a duration model may know when the trip starts.

Zone-pair history is built from per-day partial aggregates (a trip count and the log-bucketed bins of distance and
duration per pair and day, see sketch.py), merged over the trailing window by a range window over days: each trip is
binned once, no row is made per trip and window day, and a window row holds its days' bins (4 bytes a value).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake.catalog import schema_of
from lake.expressions import reused
from lake.schema import contract_columns
from pipelines.days import in_days
from pipelines.gold import sketch
from pipelines.schemas import TRIP_FEATURES

AIRPORT_ZONE_IDS = (1, 132, 138)  # TLC zone lookup: Newark Airport (EWR), JFK Airport, LaGuardia Airport
WEEKEND_DAYS = (1, 7)  # Spark's dayofweek: 1 = Sunday, 7 = Saturday
PAIR_KEYS = ["pickup_zone_id", "dropoff_zone_id"]
DEFAULT_HOUR_BUCKET_HOURS = 4
MICROS_PER_HOUR = 3_600_000_000
# Histogram entry kinds of the per-day partials: every trip counts once as TRIP, its distance and duration once each.
TRIP, DISTANCE, DURATION = 0, 1, 2

# gold.pair_stats: per stats_date and pickup->dropoff zone pair with trips that day, the trips of the trailing window
# [stats_date - window, stats_date - 1]; the day itself is excluded so a trip never sees its own day's labels.
PAIR_STATS = schema_of("gold.pair_stats")


def conform(df: DataFrame, schema: T.StructType) -> DataFrame:
    """The table's schema contract: its columns, in order, with their types."""
    return df.select(*contract_columns(schema))


def hour_bucket(hours: int = DEFAULT_HOUR_BUCKET_HOURS) -> Column:
    """The pickup hour's bucket of the day: 0 for hours [0, hours), 1 for [hours, 2 hours), ..."""
    return F.floor(F.hour("pickup_ts") / hours).cast("int")


def _in_days(column: str, days: Iterable[date] | None) -> Column:
    return F.lit(True) if days is None else in_days(days, column)


def daily_cells(history: DataFrame, hours: int, relative_accuracy: float) -> DataFrame:
    """(pickup_date, pair, hour bucket, kind, bin) -> n: every trip with a known pair, aggregated once.

    Both statistics read it: pair_hour_stats per bucket, pair_stats summed over the buckets (any bucket size).
    The rows come out hash-partitioned by the pair (spark.sql.shuffle.partitions parts): both statistics' per-day
    aggregations and trailing windows key on the pair, so with `materialize(keep_partitioning=True)` they shuffle
    nothing more (they shuffled the cells four times, and their day aggregations' arrays with them).
    """
    has_pair, cell = reused(
        ("gold.daily_cells", hours, relative_accuracy), lambda: _cell_columns(hours, relative_accuracy)
    )
    parts = int(history.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    cells = history.where(has_pair).select(*cell).where(F.col("e.bin").isNotNull())
    return (
        cells.repartition(parts, *PAIR_KEYS)
        .groupBy("pickup_date", *PAIR_KEYS, "bucket", "e.kind", "e.bin")
        .agg(F.count(F.lit(1)).alias("n"))
    )


def _cell_columns(hours: int, relative_accuracy: float) -> tuple[Column, list[Column]]:
    has_pair = F.col("pickup_zone_id").isNotNull() & F.col("dropoff_zone_id").isNotNull()
    entries = F.array(
        F.struct(F.lit(TRIP).alias("kind"), F.lit(0).alias("bin")),
        F.struct(F.lit(DISTANCE).alias("kind"), sketch.bin_of(F.col("trip_distance"), relative_accuracy).alias("bin")),
        F.struct(F.lit(DURATION).alias("kind"), sketch.bin_of(F.col("duration_min"), relative_accuracy).alias("bin")),
    )
    cell = [F.col("pickup_date"), *[F.col(k) for k in PAIR_KEYS], hour_bucket(hours).alias("bucket")]
    return has_pair, [*cell, F.explode(entries).alias("e")]


def _window_histograms(
    cells: DataFrame, keys: list[str], window_days: int, kinds: dict[str, int], counted: dict[str, int] | None = None
) -> DataFrame:
    """Per day and keys with trips that day, for each named kind: `<name>_n`, the values of the `window_days` days
    before it (null when none), and `<name>_bins`, their bins sorted (one per value, sketch.repeated); for the
    `counted` kinds only `<name>_n`.

    Counts are window sums of daily sums; bins are the days' bin arrays concatenated, then sorted once.
    """
    key = ("gold.window", tuple(keys), window_days, tuple(kinds.items()), tuple((counted or {}).items()))
    daily, window = reused(key, lambda: _window_columns(keys, window_days, kinds, counted or {}))
    per_day = cells.groupBy("pickup_date", *keys).agg(*daily)
    return per_day.select("pickup_date", *keys, *window)


def _window_columns(
    keys: list[str], window_days: int, kinds: dict[str, int], counted: dict[str, int]
) -> tuple[list[Column], list[Column]]:
    """_window_histograms' per-day aggregates and trailing-window columns."""
    named = {**counted, **kinds}
    daily = []
    for name, kind in named.items():
        of_kind = F.col("kind") == kind
        daily.append(F.sum(F.when(of_kind, F.col("n"))).alias(f"{name}_day_n"))
        if name in kinds:
            values = F.collect_list(F.when(of_kind, sketch.repeated(F.col("bin"), F.col("n"))))
            daily.append(F.flatten(values).alias(f"{name}_day"))
    trailing = Window.partitionBy(*keys).orderBy(F.unix_date("pickup_date")).rangeBetween(-window_days, -1)
    window = []
    for name in named:
        window.append(F.sum(f"{name}_day_n").over(trailing).alias(f"{name}_n"))
        if name in kinds:
            merged = F.flatten(F.collect_list(f"{name}_day").over(trailing))
            window.append(F.sort_array(merged).alias(f"{name}_bins"))
    return daily, window


def _median(name: str, relative_accuracy: float) -> Column:
    """The median of the window's `<name>` bins (built once per name and accuracy)."""
    key = ("gold.median", name, relative_accuracy)
    return reused(key, lambda: sketch.median(F.col(f"{name}_bins"), relative_accuracy))


def pair_stats(
    history: DataFrame | None,
    stats_dates: Iterable[date] | None,
    window_days: int,
    relative_accuracy: float = sketch.DEFAULT_RELATIVE_ACCURACY,
    cells: DataFrame | None = None,
) -> DataFrame:
    """Zone-pair trip count and approximate median distance and duration over the window before each stats_date.

    One row per stats_date (a day in `stats_dates`, or any day when None) and pair with trips that day and at least
    one trip in the window: the pairs trip_features looks up. `history` holds the trips of those days and the
    `window_days` before them; cells, when given, are its daily_cells (of any bucket size) and history is not read.
    """
    if cells is None:
        cells = daily_cells(history, DEFAULT_HOUR_BUCKET_HOURS, relative_accuracy)
    kinds = {"distance": DISTANCE, "duration": DURATION}
    window = _window_histograms(cells, PAIR_KEYS, window_days, kinds, {"trip": TRIP})
    window = window.where(_in_days("pickup_date", stats_dates))
    stats = window.select(
        F.col("pickup_date").alias("stats_date"),
        *PAIR_KEYS,
        F.col("trip_n").alias("pair_trips"),
        _median("distance", relative_accuracy).alias("pair_median_distance"),
        _median("duration", relative_accuracy).alias("pair_median_duration"),
    ).where(F.col("pair_trips") > 0)
    return conform(stats, PAIR_STATS)


def pair_hour_stats(
    history: DataFrame | None,
    stats_dates: Iterable[date] | None,
    window_days: int,
    hours: int = DEFAULT_HOUR_BUCKET_HOURS,
    relative_accuracy: float = sketch.DEFAULT_RELATIVE_ACCURACY,
    cells: DataFrame | None = None,
) -> DataFrame:
    """pickup_date, pair, bucket -> pair_hour_median_duration over the window's trips in the same hour bucket.

    cells, when given, are history's daily_cells with the same `hours` (history is then not read).
    """
    if cells is None:
        cells = daily_cells(history, hours, relative_accuracy)
    cells = cells.where(F.col("kind") == DURATION)
    keys = [*PAIR_KEYS, "bucket"]
    window = _window_histograms(cells, keys, window_days, {"duration": DURATION})
    # A window with a value has a median. Filtering on the median instead, Spark pushed the filter below the select
    # and inlined the median: the filter's plan named the window's sort 12 times (pair_hour_stats at 5M, 29 -> 12 s).
    window = window.where(_in_days("pickup_date", stats_dates) & (F.col("duration_n") > 0))
    return window.select(
        "pickup_date", *keys, _median("duration", relative_accuracy).alias("pair_hour_median_duration")
    )


def with_zone_trips_prev_hour(history: DataFrame, days: Iterable[date] | None) -> DataFrame:
    """The trips of `days` with pickup_zone_trips_prev_hour: pickups in the same zone in [pickup - 1 h, pickup).

    Strictly earlier pickups only (a trip at the same instant is not known yet). `history` must hold the day before
    each of `days` too: a trip just after midnight looks back into it. Windows run per zone and day, with the last hour
    of the day before copied in as context, so no partition holds a zone's whole history.
    The rows come out hash-partitioned by pickup_date (spark.sql.shuffle.partitions parts) and sorted by it within
    each part, the one shuffle and sort of the trips in gold: its joins, aggregations and day-partitioned writes all
    key on the day (materialize with keep_partitioning keeps both).
    """
    last_hour = F.hour("pickup_ts") == 23  # pickup_date is the pickup's calendar day
    own = history.where(_in_days("pickup_date", days)).select(
        "*", F.col("pickup_date").alias("_day"), F.lit(False).alias("_context")
    )
    context = history.where(last_hour & _in_days("pickup_date", None if days is None else _days_before(days))).select(
        "*", F.date_add("pickup_date", 1).alias("_day"), F.lit(True).alias("_context")
    )
    by_time = Window.partitionBy("_day", "pickup_zone_id").orderBy(F.unix_micros("pickup_ts"))
    earlier = F.count(F.lit(1)).over(by_time.rangeBetween(Window.unboundedPreceding, -1))
    before_hour = F.count(F.lit(1)).over(by_time.rangeBetween(Window.unboundedPreceding, -MICROS_PER_HOUR - 1))
    known = F.col("pickup_zone_id").isNotNull() & F.col("pickup_ts").isNotNull()
    parts = int(history.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    by_day = own.unionByName(context).repartition(parts, "_day")
    counted = by_day.withColumn("pickup_zone_trips_prev_hour", F.when(known, earlier - before_hour))
    # _day equals pickup_date on the trips kept; naming it pickup_date keeps the partitioning on the output column.
    columns = [F.col("_day").alias(name) if name == "pickup_date" else F.col(name) for name in history.columns]
    return counted.where(~F.col("_context")).select(*columns, "pickup_zone_trips_prev_hour")


def _days_before(days: Iterable[date]) -> list[date]:
    """The days before `days`, whose last hour is context for them."""
    return [day - timedelta(days=1) for day in days]


def _is_airport(zone_id: str) -> F.Column:
    """False for an unknown (null) zone: the model sees two values, not three."""
    return F.coalesce(F.col(zone_id).isin(*AIRPORT_ZONE_IDS), F.lit(False))


def trip_features(
    trips: DataFrame,
    stats: DataFrame,
    holidays: list[date],
    hour_stats: DataFrame | None = None,
    hours: int = DEFAULT_HOUR_BUCKET_HOURS,
) -> DataFrame:
    """One row per trip: calendar, place, vendor and zone-pair history features, plus the label.

    trips may carry pickup_zone_trips_prev_hour (with_zone_trips_prev_hour); hour_stats is pair_hour_stats.
    """
    history = stats.withColumnRenamed("stats_date", "pickup_date")
    if "pickup_zone_trips_prev_hour" not in trips.columns:
        trips = trips.withColumn("pickup_zone_trips_prev_hour", F.lit(None).cast("long"))
    trips = trips.withColumn("bucket", hour_bucket(hours))
    # The finer join first: trips sorted for it on (day, pair, bucket) are sorted for the (day, pair) join too.
    if hour_stats is not None:
        features = trips.join(hour_stats, on=["pickup_date", *PAIR_KEYS, "bucket"], how="left")
    else:
        features = trips.withColumn("pair_hour_median_duration", F.lit(None).cast("double"))
    features = features.join(history, on=["pickup_date", *PAIR_KEYS], how="left")
    day_of_week = F.dayofweek("pickup_date")
    features = features.select(
        "*",
        F.hour("pickup_ts").alias("pickup_hour"),
        day_of_week.alias("day_of_week"),
        F.month("pickup_date").alias("month"),
        day_of_week.isin(*WEEKEND_DAYS).alias("is_weekend"),
        in_days(holidays).alias("is_holiday"),
        _is_airport("pickup_zone_id").alias("pickup_is_airport"),
        _is_airport("dropoff_zone_id").alias("dropoff_is_airport"),
    )
    features = features.withColumn("pair_trips", F.coalesce(F.col("pair_trips"), F.lit(0)))
    return conform(features, TRIP_FEATURES)
