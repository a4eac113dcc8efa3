"""Pure transforms of the silver stage: bronze text -> typed batch (with the raw row kept) -> silver.trips rows."""

from __future__ import annotations

import csv
import gzip

import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake.catalog import schema_of
from lake.config import local_path
from lake.errors import MissingInputError
from lake.expressions import reused
from lake.schema import contract_columns
from pipelines.schemas import BRONZE_TRIPS, RAW_TRIP_COLUMNS, SILVER_TRIPS
from pipelines.timestamps import parse_tlc_timestamp

INT_COLUMNS = ["vendor_id", "passenger_count", "rate_code_id", "payment_type", "trip_type"]
ZONE_COLUMNS = {"pickup_location_id": "pickup_zone_id", "dropoff_location_id": "dropoff_zone_id"}
# The money and distance columns: every raw column that silver types as a double.
DOUBLE_COLUMNS = [
    f.name for f in SILVER_TRIPS.fields if isinstance(f.dataType, T.DoubleType) and f.name in RAW_TRIP_COLUMNS
]
TIMESTAMP_COLUMNS = {"pickup_datetime": "pickup_ts", "dropoff_datetime": "dropoff_ts"}
MONTH_FORMAT = "yyyy-MM"
SECONDS_PER_MINUTE = 60.0
KEY_SEPARATOR = "\u001f"  # unit separator: cannot occur in a typed value
NULL_MARK = "\u2205"  # stands for a null value inside the trip key, so (null, "") and ("", null) differ
RAW = "_raw"  # struct of every bronze column of the row, as read: quarantine keeps it verbatim
ROW_ID = "_batch_row"  # a row's number in the materialized batch: how deduplication names the rows it drops

# The trip values a trip key is made of: what identifies a trip, not where or when it was ingested.
TRIP_KEY_COLUMNS = [
    "taxi_type",
    "vendor_id",
    "pickup_ts",
    "dropoff_ts",
    "passenger_count",
    "rate_code_id",
    "store_and_fwd_flag",
    "pickup_zone_id",
    "dropoff_zone_id",
    "payment_type",
    "trip_type",
    *DOUBLE_COLUMNS,
]
ZONES_SCHEMA = schema_of("silver.zones")


def _text(name: str) -> Column:
    """A raw value with surrounding blanks removed; empty text is a missing value."""
    trimmed = F.trim(F.col(name))
    return F.when(trimmed != "", trimmed)


def _to_double(name: str) -> Column:
    return _text(name).try_cast(T.DoubleType())


def _to_int(name: str) -> Column:
    """Integer codes, accepting "1.0" (pandas-written files) but not "1.5"."""
    number = _to_double(name)
    return F.when(number == F.floor(number), number.try_cast(T.IntegerType()))


def _to_timestamp(name: str) -> Column:
    return parse_tlc_timestamp(name)  # the same parser as bronze's pickup_month partition


def typed_columns() -> dict[str, Column]:
    """Every typed trip column by its silver name, computed from the bronze text column it comes from."""
    columns = {"taxi_type": F.lower(_text("taxi_type"))}
    columns |= {name: _to_int(name) for name in INT_COLUMNS}
    columns |= {silver: _to_int(raw) for raw, silver in ZONE_COLUMNS.items()}
    columns |= {name: _to_double(name) for name in DOUBLE_COLUMNS}
    columns |= {silver: _to_timestamp(raw) for raw, silver in TIMESTAMP_COLUMNS.items()}
    columns["store_and_fwd_flag"] = F.upper(_text("store_and_fwd_flag"))
    return columns


def _source_of(silver_name: str) -> str:
    reverse = {v: k for k, v in {**ZONE_COLUMNS, **TIMESTAMP_COLUMNS}.items()}
    return reverse.get(silver_name, silver_name)


def unparsed_columns(typed: dict[str, Column]) -> Column:
    """Comma-separated names of the columns whose raw text did not parse (null when all did)."""
    failed = [F.when(_text(_source_of(name)).isNotNull() & col.isNull(), F.lit(name)) for name, col in typed.items()]
    listed = F.concat_ws(",", *failed)
    return F.when(listed != "", listed)


def _typed_select() -> list[Column]:
    """type_trips' select list: the same for every batch."""
    typed = typed_columns()
    pickup, dropoff = typed["pickup_ts"], typed["dropoff_ts"]
    derived = {
        "duration_min": (F.unix_seconds(dropoff) - F.unix_seconds(pickup)) / F.lit(SECONDS_PER_MINUTE),
        "pickup_month": F.date_format(pickup, MONTH_FORMAT),
        "pickup_date": F.to_date(pickup),
        "_unparsed": unparsed_columns(typed),
    }
    lineage = ["_corrupt_record", "_source_file", "_source_hash", "_source_month", "_row_number", "_ingested_at"]
    return [
        *[col.alias(name) for name, col in typed.items()],
        *[col.alias(name) for name, col in derived.items()],
        *[F.col(name) for name in lineage],
        F.col("_run_id").alias("_bronze_run_id"),
        F.struct(*[F.col(c) for c in BRONZE_TRIPS.fieldNames()]).alias(RAW),
    ]


def type_trips(bronze: DataFrame) -> DataFrame:
    """The typed batch: silver-named typed values, derived columns, lineage, and the raw bronze row in `_raw`.

    Unparseable values become null (try-casts); `_unparsed` names them so a rule can quarantine the row.
    """
    return bronze.select(*reused("silver.type_trips", _typed_select))


def add_zones(typed: DataFrame, zones: DataFrame) -> DataFrame:
    """Pickup and dropoff zone and borough names from the zone lookup (null for an unknown id)."""
    for side in ("pickup", "dropoff"):
        names = zones.select(
            F.col("zone_id").alias(f"{side}_zone_id"),
            F.col("zone").alias(f"{side}_zone"),
            F.col("borough").alias(f"{side}_borough"),
        )
        typed = typed.join(F.broadcast(names), on=f"{side}_zone_id", how="left")
    return typed


def add_trip_key(df: DataFrame) -> DataFrame:
    """trip_key: SHA-256 of the taxi type and typed trip values, so the same trip from two files collapses."""
    return df.withColumn("trip_key", reused("silver.trip_key", _trip_key))


def _trip_key() -> Column:
    values = [F.coalesce(F.col(c).cast(T.StringType()), F.lit(NULL_MARK)) for c in TRIP_KEY_COLUMNS]
    return F.sha2(F.concat_ws(KEY_SEPARATOR, *values), 256)


def prepare_batch(bronze: DataFrame, zones: DataFrame) -> DataFrame:
    """bronze.trips rows -> the typed batch the rules and Great Expectations run on."""
    return add_trip_key(add_zones(type_trips(bronze), zones))


def with_row_ids(batch: DataFrame) -> DataFrame:
    """ROW_ID: a number unique to each row of a batch; stable once the batch is materialized."""
    return batch.withColumn(ROW_ID, F.monotonically_increasing_id())


def to_silver(trips: DataFrame, run_id: str) -> DataFrame:
    """The silver.trips contract (pipelines.schemas.SILVER_TRIPS)."""
    with_run = trips.withColumn("_silver_run_id", F.lit(run_id))
    return with_run.select(*contract_columns(SILVER_TRIPS))


def read_zone_csv(spark: SparkSession, path: str) -> DataFrame:
    """The TLC taxi zone lookup CSV (LocationID, Borough, Zone, service_zone) as the silver.zones contract.

    A local file (the shipped one; plain or .gz) is read and parsed by the driver and sent to Spark as Arrow: a
    cluster's executors need not have it on their disks, and no Python worker process starts for 266 lines. One in a
    store (s3a://...) is read by the executors."""
    if (local := local_path(path)) is not None:
        try:
            raw = spark.createDataFrame(small_csv(local))
        except OSError as exc:
            raise MissingInputError(f"the zone lookup (conf bronze.zone_lookup) {path}: {exc}") from exc
    else:
        raw = spark.read.option("header", True).csv(path)
    return zone_contract(raw)


def small_csv(local: str) -> pa.Table:
    """A small local CSV file with a header (plain or .gz) as text columns, as Spark's CSV reader reads it: blank
    lines skipped, empty values null, a short row's missing values null, a long row's extra values dropped."""
    with (gzip.open if local.endswith(".gz") else open)(local, "rt", encoding="utf-8-sig", newline="") as handle:
        header, *rows = [line for line in csv.reader(handle) if line] or [[]]
    columns = [[(row[i] or None) if i < len(row) else None for row in rows] for i in range(len(header))]
    return pa.table(columns, schema=pa.schema([(name, pa.string()) for name in header]))


def zone_contract(raw: DataFrame) -> DataFrame:
    """The lookup's text columns as silver.zones; rows without a numeric LocationID are not zones."""
    return raw.select(
        F.col("LocationID").try_cast(T.IntegerType()).alias("zone_id"),
        F.col("Borough").alias("borough"),
        F.col("Zone").alias("zone"),
        F.col("service_zone"),
    ).where(F.col("zone_id").isNotNull())


def batch_columns(spark: SparkSession) -> list[str]:
    """Columns of the typed batch (what rules may reference), from the transform itself.

    They depend on this code only, so they are planned once per process (~0.7 s of every silver run before).
    """
    if not _BATCH_COLUMNS:
        empty_bronze = spark.createDataFrame([], BRONZE_TRIPS)
        _BATCH_COLUMNS[:] = prepare_batch(empty_bronze, spark.createDataFrame([], ZONES_SCHEMA)).columns
    return list(_BATCH_COLUMNS)


_BATCH_COLUMNS: list[str] = []
