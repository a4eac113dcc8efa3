"""gold.zone_daily and gold.hourly_demand: the questions users ask of taxi data, per pickup day."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.gold.features import conform

# Sums run over decimals, which add up exactly in any order: a day recomputed incrementally equals a full rebuild
# bit for bit (double sums depend on the order Spark happens to add them in).
MONEY = T.DecimalType(18, 2)
MEASURE = T.DecimalType(18, 6)
MINUTES_PER_HOUR = 60

# gold.zone_daily: one row per pickup zone per day.
ZONE_DAILY = T.StructType(
    [
        T.StructField("pickup_zone_id", T.IntegerType()),
        T.StructField("pickup_zone", T.StringType()),
        T.StructField("pickup_borough", T.StringType()),
        T.StructField("trips", T.LongType()),
        T.StructField("revenue", T.DoubleType()),  # sum of total_amount
        T.StructField("tips", T.DoubleType()),  # sum of tip_amount
        T.StructField("total_distance", T.DoubleType()),  # miles
        T.StructField("avg_duration_min", T.DoubleType()),
        T.StructField("avg_speed_mph", T.DoubleType()),  # distance / time over the trips that took time
        T.StructField("pickup_date", T.DateType()),  # partition
    ]
)

# gold.hourly_demand: one row per pickup borough per hour of a day.
HOURLY_DEMAND = T.StructType(
    [
        T.StructField("pickup_borough", T.StringType()),
        T.StructField("pickup_hour", T.IntegerType()),
        T.StructField("trips", T.LongType()),
        T.StructField("pickup_date", T.DateType()),  # partition
    ]
)


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
