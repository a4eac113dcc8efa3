"""Schema contracts of the tables the stages hand to each other (the `select` at the end of each transform)."""

from __future__ import annotations

from pyspark.sql import types as T

# bronze.trips: every raw value as text, canonical names shared by yellow and green.
RAW_TRIP_COLUMNS = [
    "vendor_id",
    "pickup_datetime",
    "dropoff_datetime",
    "passenger_count",
    "trip_distance",
    "rate_code_id",
    "store_and_fwd_flag",
    "pickup_location_id",
    "dropoff_location_id",
    "payment_type",
    "fare_amount",
    "extra",
    "mta_tax",
    "tip_amount",
    "tolls_amount",
    "ehail_fee",
    "improvement_surcharge",
    "total_amount",
    "congestion_surcharge",
    "airport_fee",
    "trip_type",
]

BRONZE_METADATA_COLUMNS = [
    "_rescued",  # map<string,string>: columns of the source file that match no canonical name
    "_corrupt_record",  # the raw line of a CSV row that did not parse into the header's columns
    "_source_file",
    "_source_hash",
    "_source_month",  # yyyy-MM from the file name, when it has one
    "_row_number",  # 1-based data row number within the source file
    "_ingested_at",
    "_run_id",
]

BRONZE_TRIPS = T.StructType(
    [T.StructField("taxi_type", T.StringType())]
    + [T.StructField(c, T.StringType()) for c in RAW_TRIP_COLUMNS]
    + [
        T.StructField("_rescued", T.MapType(T.StringType(), T.StringType())),
        T.StructField("_corrupt_record", T.StringType()),
        T.StructField("_source_file", T.StringType()),
        T.StructField("_source_hash", T.StringType()),
        T.StructField("_source_month", T.StringType()),
        T.StructField("_row_number", T.LongType()),
        T.StructField("_ingested_at", T.TimestampType()),
        T.StructField("_run_id", T.StringType()),
        T.StructField("pickup_month", T.StringType()),  # partition: yyyy-MM of the pickup, or 'unknown'
    ]
)

# silver.trips: typed, cleaned, deduplicated trips.
SILVER_TRIPS = T.StructType(
    [
        T.StructField("trip_key", T.StringType(), False),
        T.StructField("taxi_type", T.StringType()),
        T.StructField("vendor_id", T.IntegerType()),
        T.StructField("pickup_ts", T.TimestampType()),
        T.StructField("dropoff_ts", T.TimestampType()),
        T.StructField("passenger_count", T.IntegerType()),
        T.StructField("trip_distance", T.DoubleType()),
        T.StructField("rate_code_id", T.IntegerType()),
        T.StructField("store_and_fwd_flag", T.StringType()),
        T.StructField("pickup_zone_id", T.IntegerType()),
        T.StructField("dropoff_zone_id", T.IntegerType()),
        T.StructField("pickup_zone", T.StringType()),
        T.StructField("pickup_borough", T.StringType()),
        T.StructField("dropoff_zone", T.StringType()),
        T.StructField("dropoff_borough", T.StringType()),
        T.StructField("payment_type", T.IntegerType()),
        T.StructField("fare_amount", T.DoubleType()),
        T.StructField("extra", T.DoubleType()),
        T.StructField("mta_tax", T.DoubleType()),
        T.StructField("tip_amount", T.DoubleType()),
        T.StructField("tolls_amount", T.DoubleType()),
        T.StructField("ehail_fee", T.DoubleType()),
        T.StructField("improvement_surcharge", T.DoubleType()),
        T.StructField("total_amount", T.DoubleType()),
        T.StructField("congestion_surcharge", T.DoubleType()),
        T.StructField("airport_fee", T.DoubleType()),
        T.StructField("trip_type", T.IntegerType()),
        T.StructField("duration_min", T.DoubleType()),
        T.StructField("_source_file", T.StringType()),
        T.StructField("_source_hash", T.StringType()),
        T.StructField("_row_number", T.LongType()),
        T.StructField("_bronze_run_id", T.StringType()),
        T.StructField("_silver_run_id", T.StringType()),
        T.StructField("pickup_date", T.DateType()),  # partition
    ]
)

# gold.trip_features: one row per silver trip; every feature is known at pickup time.
TRIP_FEATURES = T.StructType(
    [
        T.StructField("trip_key", T.StringType(), False),
        T.StructField("pickup_ts", T.TimestampType()),
        T.StructField("taxi_type", T.StringType()),
        T.StructField("vendor_id", T.IntegerType()),
        T.StructField("rate_code_id", T.IntegerType()),
        T.StructField("passenger_count", T.IntegerType()),
        T.StructField("pickup_hour", T.IntegerType()),
        T.StructField("day_of_week", T.IntegerType()),  # 1 = Sunday ... 7 = Saturday (Spark's dayofweek)
        T.StructField("month", T.IntegerType()),
        T.StructField("is_weekend", T.BooleanType()),
        T.StructField("is_holiday", T.BooleanType()),
        T.StructField("pickup_zone_id", T.IntegerType()),
        T.StructField("dropoff_zone_id", T.IntegerType()),
        T.StructField("pickup_borough", T.StringType()),
        T.StructField("dropoff_borough", T.StringType()),
        T.StructField("pickup_is_airport", T.BooleanType()),
        T.StructField("dropoff_is_airport", T.BooleanType()),
        T.StructField("pair_trips", T.LongType()),  # trips of this pair in the trailing window (0 if none)
        T.StructField("pair_median_distance", T.DoubleType()),  # null when the pair has no history
        T.StructField("pair_median_duration", T.DoubleType()),
        T.StructField("trip_distance", T.DoubleType()),  # known only after the trip: analysis, not a feature
        T.StructField("duration_min", T.DoubleType()),  # the label
        T.StructField("pickup_date", T.DateType()),  # partition
    ]
)
