"""Landing raw files in bronze.trips: every row kept, as text, with where it came from; one commit per run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake import Lake
from pipelines.bronze import ingest_log
from pipelines.bronze.files import SourceFile, describe, expand_paths, read_header
from pipelines.bronze.schema_map import ColumnMapping, SchemaMismatch, map_columns
from pipelines.common import StageResult, new_run_id
from pipelines.schemas import BRONZE_TRIPS, RAW_TRIP_COLUMNS

BRONZE = "bronze.trips"
CORRUPT = "_corrupt_record"
UNKNOWN_MONTH = "unknown"
PARTITION_SHIFT = 33  # monotonically_increasing_id() puts the partition id above bit 33


@dataclass
class PlannedFile:
    """A file that passed the checks and will be read, with its mapping."""

    source: SourceFile
    mapping: ColumnMapping
    width: int


def rescued_map(columns: dict[str, str]) -> Column:
    """A map of the source columns that match no canonical name (null when there are none)."""
    if not columns:
        return F.lit(None).cast(T.MapType(T.StringType(), T.StringType()))
    pairs = [item for key, column in columns.items() for item in (F.lit(key), F.col(column).cast("string"))]
    return F.create_map(*pairs)


def to_raw_columns(frame: DataFrame, mapping: ColumnMapping, names: list[str]) -> DataFrame:
    """One file's columns renamed onto the canonical raw schema, every value as text, unknown ones rescued."""
    present = {canonical: names[position] for position, canonical in mapping.canonical.items()}
    rescued = {key: names[position] for position, key in mapping.rescued.items()}
    raw_values = [
        (F.col(present[c]).cast("string") if c in present else F.lit(None).cast("string")).alias(c)
        for c in RAW_TRIP_COLUMNS
    ]
    corrupt = F.col(CORRUPT) if CORRUPT in frame.columns else F.lit(None).cast("string")
    return frame.select(
        F.lit(mapping.taxi_type).alias("taxi_type"),
        *raw_values,
        rescued_map(rescued).alias("_rescued"),
        corrupt.alias(CORRUPT),
    )


def read_source(spark: SparkSession, planned: PlannedFile) -> DataFrame:
    """Reads one file with every column as text; malformed CSV rows keep their raw line in _corrupt_record."""
    names = planned.mapping.positional_names(planned.width)
    location = planned.source.location
    if planned.source.file_format == "parquet":
        frame = spark.read.parquet(location).toDF(*names)
    else:
        schema = T.StructType([T.StructField(n, T.StringType()) for n in names + [CORRUPT]])
        frame = spark.read.csv(
            location, header=True, schema=schema, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT
        )
    return to_raw_columns(frame, planned.mapping, names)


def with_ingestion_metadata(raw: DataFrame, source: SourceFile, run_id: str) -> DataFrame:
    """Adds where each row came from; _row_number is derived later from file order."""
    pickup = F.try_to_timestamp(F.col("pickup_datetime"))
    return raw.select(
        "*",
        F.lit(source.location).alias("_source_file"),
        F.lit(source.content_hash).alias("_source_hash"),
        F.lit(source.source_month).cast("string").alias("_source_month"),
        F.current_timestamp().alias("_ingested_at"),
        F.lit(run_id).alias("_run_id"),
        F.coalesce(F.date_format(pickup, "yyyy-MM"), F.lit(UNKNOWN_MONTH)).alias("pickup_month"),
        F.spark_partition_id().alias("_partition"),
        F.monotonically_increasing_id().alias("_position"),
    )


def row_offsets(rows: DataFrame) -> list:
    """Per file and Spark partition: rows, corrupt rows, and the number of the file's rows before it.

    A file is read in order, one split per partition, so a row's number in its file is the rows of the file's
    earlier partitions plus its position within its own partition.
    """
    # Counting pickup-less rows also keeps Spark from reading the corrupt-record column alone, which it refuses.
    per_partition = rows.groupBy("_source_hash", "_partition").agg(
        F.count(F.lit(1)).alias("rows"),
        F.count(CORRUPT).alias("corrupt_rows"),
        F.count_if(F.col("pickup_month") == UNKNOWN_MONTH).alias("no_pickup_rows"),
    )
    return per_partition.collect()


def with_row_numbers(rows: DataFrame, offsets: list, spark: SparkSession) -> DataFrame:
    offset_rows, seen = [], {}
    for row in sorted(offsets, key=lambda r: (r["_source_hash"], r["_partition"])):
        before = seen.get(row["_source_hash"], 0)
        offset_rows.append((row["_source_hash"], row["_partition"], before))
        seen[row["_source_hash"]] = before + row["rows"]
    offset_frame = spark.createDataFrame(offset_rows, "_source_hash string, _partition int, _offset long")
    position_in_partition = F.col("_position") - F.shiftleft(F.col("_partition").cast("long"), PARTITION_SHIFT)
    numbered = rows.join(F.broadcast(offset_frame), on=["_source_hash", "_partition"], how="inner")
    return numbered.withColumn("_row_number", F.col("_offset") + position_in_partition + 1).select(
        *BRONZE_TRIPS.fieldNames()
    )


def plan_file(location: str, known_hashes: set[str]) -> tuple[SourceFile | None, PlannedFile | None, str | None]:
    """Checks one file: returns (source, plan, reason); plan None with a reason when it is not read."""
    try:
        source = describe(location)
    except OSError as exc:
        return None, None, f"unreadable: {exc}"
    if source.content_hash in known_hashes:
        return source, None, "duplicate"
    if source.size_bytes == 0:
        return source, None, "empty file (0 bytes)"
    try:
        header = read_header(source)
        mapping = map_columns(header, location)
    except SchemaMismatch as exc:
        return source, None, str(exc)
    except Exception as exc:  # a truncated Parquet footer, garbage bytes, bad gzip: report, keep going
        return source, None, f"unreadable {source.file_format}: {type(exc).__name__}: {exc}"
    return source, PlannedFile(source, mapping, len(header)), None


def run_ingest(
    lake: Lake, paths: list[str], run_id: str | None = None, progress: Callable[[str], None] | None = None
) -> StageResult:
    """Ingests raw trip files into bronze.trips; files already ingested (same content hash) are skipped."""
    run_id = run_id or new_run_id("ingest")
    say = progress or (lambda message: None)
    locations = expand_paths(paths)
    known = ingest_log.ingested_hashes(lake)
    previous_hash = ingest_log.latest_hash_by_file(lake)
    log = ingest_log.RunLog(run_id)
    planned: list[PlannedFile] = []
    for index, location in enumerate(locations, start=1):
        source, plan, reason = plan_file(location, known)
        if plan is None:
            status = "duplicate" if reason == "duplicate" else "failed"
            log.add(location, source, status, reason if status == "failed" else "same content already ingested")
            say(f"[{index}/{len(locations)}] {status}: {location}" + (f" ({reason})" if status == "failed" else ""))
            continue
        known.add(plan.source.content_hash)
        planned.append(plan)
        say(f"[{index}/{len(locations)}] reading: {location} ({plan.mapping.taxi_type})")

    bronze_version = None
    if planned:
        spark = lake.spark
        frames = [with_ingestion_metadata(read_source(spark, p), p.source, run_id) for p in planned]
        rows = frames[0]
        for frame in frames[1:]:
            rows = rows.unionByName(frame)
        offsets = row_offsets(rows)
        counted = {}
        for row in offsets:
            total = counted.setdefault(row["_source_hash"], [0, 0])
            total[0] += row["rows"]
            total[1] += row["corrupt_rows"]
        landing = [p for p in planned if counted.get(p.source.content_hash, [0])[0] > 0]
        for plan in planned:
            data_rows, corrupt_rows = counted.get(plan.source.content_hash, [0, 0])
            if data_rows == 0:
                log.add(plan.source.location, plan.source, "failed", "no data rows (empty or header only)")
                continue
            replaced = previous_hash.get(plan.source.location)
            note = f"new version of a file ingested before (previous hash {replaced[:12]})" if replaced else None
            log.add(
                plan.source.location,
                plan.source,
                "ingested",
                note,
                plan.mapping.taxi_type,
                data_rows,
                corrupt_rows,
                replaced,
            )
        if landing:
            keep = F.col("_source_hash").isin([p.source.content_hash for p in landing])
            bronze_version = lake.append(
                BRONZE, with_row_numbers(rows.where(keep), offsets, spark), user_metadata=run_id
            )
    log_version = ingest_log.write(lake, log, bronze_version)
    result = StageResult("ingest", run_id, counts=log.counts(), details={"files": log.entries})
    result.versions = {
        BRONZE: bronze_version if bronze_version is not None else lake.version(BRONZE),
        ingest_log.INGEST_LOG: log_version,
    }
    if result.counts["failed_files"]:
        result.status = "partial" if result.counts["ingested_files"] else "failed"
    return result
