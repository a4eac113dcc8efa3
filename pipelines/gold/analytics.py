"""gold.zone_daily and gold.hourly_demand: the questions users ask of taxi data, per pickup day."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake.catalog import schema_of
from pipelines.gold.features import conform

# Sums run over decimals, which add up exactly in any order: a day recomputed incrementally equals a full rebuild
# bit for bit (double sums depend on the order Spark happens to add them in).
MONEY = T.DecimalType(18, 2)
MEASURE = T.DecimalType(18, 6)
MINUTES_PER_HOUR = 60

# gold.zone_daily: one row per pickup zone per day.
ZONE_DAILY = schema_of("gold.zone_daily")

# gold.hourly_demand: one row per pickup borough per hour of a day.
HOURLY_DEMAND = schema_of("gold.hourly_demand")


def _exact_sum(column: str | F.Column, precision: T.DecimalType) -> F.Column:
    value = F.col(column) if isinstance(column, str) else column
    return F.sum(value.cast(precision))


def zone_daily(trips: DataFrame) -> DataFrame:
    """Trips, revenue, tips, distance, average duration and speed per pickup zone and day."""
    took_time = (F.col("duration_min") > 0) & F.col("trip_distance").isNotNull()
    moving_miles = _exact_sum(F.when(took_time, F.col("trip_distance")), MEASURE)
    moving_hours = _exact_sum(F.when(took_time, F.col("duration_min")), MEASURE) / MINUTES_PER_HOUR
    daily = trips.groupBy("pickup_date", "pickup_zone_id", "pickup_zone", "pickup_borough").agg(
        F.count(F.lit(1)).alias("trips"),
        _exact_sum("total_amount", MONEY).alias("revenue"),
        _exact_sum("tip_amount", MONEY).alias("tips"),
        _exact_sum("trip_distance", MEASURE).alias("total_distance"),
        F.try_divide(_exact_sum("duration_min", MEASURE), F.count("duration_min")).alias("avg_duration_min"),
        F.try_divide(moving_miles, moving_hours).alias("avg_speed_mph"),
    )
    return conform(daily, ZONE_DAILY)


def hourly_demand(trips: DataFrame) -> DataFrame:
    """Trips per pickup borough per hour of each day."""
    hourly = trips.groupBy("pickup_date", "pickup_borough", F.hour("pickup_ts").alias("pickup_hour")).agg(
        F.count(F.lit(1)).alias("trips")
    )
    return conform(hourly, HOURLY_DEMAND)
