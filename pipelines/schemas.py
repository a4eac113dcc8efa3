"""Schema contracts of the tables the stages hand to each other (the `select` at the end of each transform)."""

from __future__ import annotations

from lake.catalog import schema_of

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

BRONZE_TRIPS = schema_of("bronze.trips")

# silver.trips: typed, cleaned, deduplicated trips.
SILVER_TRIPS = schema_of("silver.trips")

# gold.trip_features: one row per silver trip; every feature is known at pickup time.
TRIP_FEATURES = schema_of("gold.trip_features")
