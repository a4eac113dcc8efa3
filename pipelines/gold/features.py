"""gold.pair_stats and gold.trip_features: what a duration model may know when the trip starts."""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake.catalog import schema_of
from pipelines.schemas import TRIP_FEATURES

AIRPORT_ZONE_IDS = (1, 132, 138)  # TLC zone lookup: Newark Airport (EWR), JFK Airport, LaGuardia Airport
WEEKEND_DAYS = (1, 7)  # Spark's dayofweek: 1 = Sunday, 7 = Saturday
PAIR_KEYS = ["pickup_zone_id", "dropoff_zone_id"]

# gold.pair_stats: per stats_date and pickup->dropoff zone pair, the trips of the trailing window
# [stats_date - window, stats_date - 1]; the day itself is excluded so a trip never sees its own day's labels.
PAIR_STATS = schema_of("gold.pair_stats")


def conform(df: DataFrame, schema: T.StructType) -> DataFrame:
    """The table's schema contract: its columns, in order, with their types."""
    return df.select(*[F.col(field.name).cast(field.dataType).alias(field.name) for field in schema.fields])


def pair_stats(trips: DataFrame, stats_dates: DataFrame, window_days: int) -> DataFrame:
    """Zone-pair trip count and exact median distance and duration over the window before each stats_date.

    Each trip contributes to the `window_days` stats dates after its pickup day; `stats_dates` (one column,
    stats_date) says which of those to compute.
    """
    has_pair = F.col("pickup_zone_id").isNotNull() & F.col("dropoff_zone_id").isNotNull()
    later_days = F.sequence(F.date_add("pickup_date", 1), F.date_add("pickup_date", window_days))
    contributions = trips.where(has_pair).select(
        F.explode(later_days).alias("stats_date"), *PAIR_KEYS, "trip_distance", "duration_min"
    )
    stats = (
        contributions.join(F.broadcast(stats_dates), on="stats_date", how="inner")
        .groupBy("stats_date", *PAIR_KEYS)
        .agg(
            F.count(F.lit(1)).alias("pair_trips"),
            F.median("trip_distance").alias("pair_median_distance"),
            F.median("duration_min").alias("pair_median_duration"),
        )
    )
    return conform(stats, PAIR_STATS)


def _is_airport(zone_id: str) -> F.Column:
    """False for an unknown (null) zone: the model sees two values, not three."""
    return F.coalesce(F.col(zone_id).isin(*AIRPORT_ZONE_IDS), F.lit(False))


def trip_features(trips: DataFrame, stats: DataFrame, holidays: list[date]) -> DataFrame:
    """One row per trip: calendar, place, vendor and zone-pair history features, plus the label."""
    history = stats.withColumnRenamed("stats_date", "pickup_date")
    day_of_week = F.dayofweek("pickup_date")
    features = trips.join(history, on=["pickup_date", *PAIR_KEYS], how="left").select(
        "*",
        F.hour("pickup_ts").alias("pickup_hour"),
        day_of_week.alias("day_of_week"),
        F.month("pickup_date").alias("month"),
        day_of_week.isin(*WEEKEND_DAYS).alias("is_weekend"),
        F.col("pickup_date").isin(*holidays).alias("is_holiday"),
        _is_airport("pickup_zone_id").alias("pickup_is_airport"),
        _is_airport("dropoff_zone_id").alias("dropoff_is_airport"),
    )
    no_history = F.col("pair_trips").isNull()
    features = features.withColumn("pair_trips", F.when(no_history, F.lit(0)).otherwise(F.col("pair_trips")))
    return conform(features, TRIP_FEATURES)
