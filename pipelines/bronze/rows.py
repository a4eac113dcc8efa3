"""Reading raw files as bronze rows: every value as text, with the row's number in its file, in one parse.

A row's number in its file needs the rows of the file's earlier splits. CSV: one cheap pass over the file as text
counts the non-blank lines of each split (the CSV reader drops blank lines and the header, nothing else, in
PERMISSIVE mode), and the one CSV parse numbers a row by its split's offset plus its position in the split.
Parquet: the reader's own `_metadata.row_index`. Nothing is parsed twice and nothing is collected but the counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.bronze.files import SourceFile
from pipelines.bronze.schema_map import ColumnMapping
from pipelines.schemas import BRONZE_TRIPS, RAW_TRIP_COLUMNS
from pipelines.timestamps import tlc_month

CORRUPT = "_corrupt_record"
UNKNOWN_MONTH = "unknown"
BLOCK = "_block_start"
POSITION_BITS = 33  # monotonically_increasing_id(): partition index above bit 33, position in the partition below
NOT_BLANK = "[^\\x00-\\x20]"  # Spark's CSV reader skips lines that String.trim() empties: only chars <= U+0020


@dataclass
class PlannedFile:
    """A file that passed the checks and will be read, with its mapping."""

    source: SourceFile
    mapping: ColumnMapping
    width: int
    data_rows: int | None = None  # known before the write: Parquet footer, or the CSV line count


def rescued_map(columns: dict[str, str]) -> Column:
    """A map of the source columns that match no canonical name (null when there are none)."""
    if not columns:
        return F.lit(None).cast(T.MapType(T.StringType(), T.StringType()))
    pairs = [item for key, column in columns.items() for item in (F.lit(key), F.col(column).cast("string"))]
    return F.create_map(*pairs)


def to_raw_columns(frame: DataFrame, mapping: ColumnMapping, names: list[str], keep: tuple[str, ...] = ()) -> DataFrame:
    """One file's columns renamed onto the canonical raw schema, every value as text, unknown ones rescued
    (plus the `keep` columns, unchanged)."""
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
        *keep,
    )


def csv_line_counts(spark: SparkSession, planned: list[PlannedFile]) -> dict[tuple[str, int], int]:
    """Non-blank lines (header included) per (content hash, split start) of every CSV file: the cheap text pass."""
    csv_files = [p for p in planned if p.source.file_format == "csv"]
    if not csv_files:
        return {}
    frames = [
        spark.read.text(p.source.location)
        .where(F.col("value").rlike(NOT_BLANK))
        .select(F.lit(p.source.content_hash).alias("hash"), F.col("_metadata.file_block_start").alias(BLOCK))
        for p in csv_files
    ]
    lines = frames[0]
    for frame in frames[1:]:
        lines = lines.unionByName(frame)
    return {(r["hash"], r[BLOCK]): r["count"] for r in lines.groupBy("hash", BLOCK).count().collect()}


def block_offsets(counts: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """Per (hash, split start): the data row number of the split's first data row, minus one.

    Data row n is non-blank line n (line 0 is the header): a split starting at byte 0 begins with the header, which
    the CSV reader drops, so its first data row is 1; a later split's first row is line (lines before it).
    """
    offsets, seen = {}, {}
    for (content_hash, start), lines in sorted(counts.items()):
        before = seen.get(content_hash, 0)
        offsets[(content_hash, start)] = before - 1 if start > 0 else 0
        seen[content_hash] = before + lines
    return offsets


def data_rows_by_file(counts: dict[tuple[str, int], int]) -> dict[str, int]:
    """Data rows of each CSV file: its non-blank lines minus the header."""
    totals: dict[str, int] = {}
    for (content_hash, _), lines in counts.items():
        totals[content_hash] = totals.get(content_hash, 0) + lines
    return {content_hash: max(lines - 1, 0) for content_hash, lines in totals.items()}


def _csv_row_numbers(planned: PlannedFile, offsets: dict[tuple[str, int], int]) -> Column:
    """offset of the row's split + its 1-based position in the split (one split per Spark partition per file)."""
    blocks = {
        start: offset
        for (content_hash, start), offset in offsets.items()
        if content_hash == planned.source.content_hash
    }
    position = F.monotonically_increasing_id().bitwiseAND(F.lit((1 << POSITION_BITS) - 1)) + 1
    pairs = [item for start, offset in sorted(blocks.items()) for item in (F.lit(start), F.lit(offset))]
    offset = F.element_at(F.create_map(*pairs), F.col(BLOCK)) if pairs else F.lit(None)
    return (offset.cast("long") + position).alias("_row_number")


def read_source(spark: SparkSession, planned: PlannedFile, offsets: dict[tuple[str, int], int]) -> DataFrame:
    """One file as canonical raw text columns plus _row_number; malformed CSV rows keep their raw line."""
    names = planned.mapping.positional_names(planned.width)
    location = planned.source.location
    if planned.source.file_format == "parquet":
        source = spark.read.parquet(location)
        frame = source.select(
            *[F.col(f"`{c}`").alias(n) for c, n in zip(source.columns, names)],
            (F.col("_metadata.row_index") + 1).alias("_row_number"),
        )
    else:
        schema = T.StructType([T.StructField(n, T.StringType()) for n in names + [CORRUPT]])
        source = spark.read.csv(
            location, header=True, schema=schema, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT
        )
        frame = source.select("*", F.col("_metadata.file_block_start").alias(BLOCK)).select(
            "*", _csv_row_numbers(planned, offsets)
        )
    return to_raw_columns(frame, planned.mapping, names, keep=("_row_number",))


def with_ingestion_metadata(raw: DataFrame, source: SourceFile, run_id: str) -> DataFrame:
    """bronze.trips rows: where each row came from, and its pickup month (ISO or US timestamp text) as partition."""
    return raw.select(
        *[c for c in BRONZE_TRIPS.fieldNames() if c in raw.columns],
        F.lit(source.location).alias("_source_file"),
        F.lit(source.content_hash).alias("_source_hash"),
        F.lit(source.source_month).cast("string").alias("_source_month"),
        F.current_timestamp().alias("_ingested_at"),
        F.lit(run_id).alias("_run_id"),
        F.coalesce(tlc_month("pickup_datetime"), F.lit(UNKNOWN_MONTH)).alias("pickup_month"),
    ).select(*BRONZE_TRIPS.fieldNames())
