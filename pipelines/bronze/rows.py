"""Reading raw files as bronze rows: every value as text, with the row's number in its file, in one parse.

A row's number in its file needs the rows of the file's earlier splits. CSV: one cheap pass over the files as text
counts the non-blank lines of each split (the CSV reader drops blank lines and the header, nothing else, in
PERMISSIVE mode), and one CSV parse per group of files that map their columns alike numbers a row by its split's
offset plus its position in the split (each split is read by a task of its own). One scan per group, not per file:
planning a file's scan, columns and union branch took ~0.6 s of driver time (18 s of a 31-file ingest, docs/bronze.md).
Parquet: the reader's own `_metadata.row_index`. Nothing is parsed twice and nothing is collected but the counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyarrow as pa
from py4j.protocol import Py4JError
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake.config import spark_path
from pipelines.bronze.files import SourceFile
from pipelines.bronze.schema_map import ColumnMapping
from pipelines.schemas import BRONZE_TRIPS, RAW_TRIP_COLUMNS
from pipelines.timestamps import tlc_month

CORRUPT = "_corrupt_record"
UNKNOWN_MONTH = "unknown"
BLOCK = "_block_start"
PATH = "_scan_path"
GLOB_CHARS = re.compile(r"([\\\[\]{}*?])")
SOURCE_COLUMNS = ("_source_file", "_source_hash", "_source_month")  # per file, as bronze stores them
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


def literal(planned: PlannedFile) -> str:
    """The file's location for spark.read, which takes a path as a glob pattern: `[`, `{`, `*`, `?` and `\\` in a
    name escaped, so `a[1].csv` reads that file, not `a1.csv`. A local file is a `file:` URI (lake.config)."""
    return GLOB_CHARS.sub(r"\\\1", spark_path(planned.source.location))


def scan_paths(spark: SparkSession, files: list[PlannedFile]) -> dict[str, str] | None:
    """Each file's content hash by the path Spark's file scans report for it (`_metadata.file_path`: the file
    system's qualified path of the listed file), or None when that cannot be told here."""
    jvm, hadoop_conf = spark.sparkContext._jvm, spark.sparkContext._jsc.hadoopConfiguration()
    paths = {}
    try:
        for plan in files:
            path = jvm.org.apache.hadoop.fs.Path(spark_path(plan.source.location))
            status = path.getFileSystem(hadoop_conf).getFileStatus(path)
            paths[_scan_form(status.getPath().toUri().toString())] = plan.source.content_hash
    except Py4JError:
        return None
    return paths if len(paths) == len(files) else None


def _scan_form(uri: str) -> str:
    """A URI without an empty authority (`file:///tmp/a` -> `file:/tmp/a`), as a scan's listing writes it."""
    parts = urlsplit(uri)
    return uri if parts.netloc or not parts.scheme else f"{parts.scheme}:/{uri[len(parts.scheme) + 1 :].lstrip('/')}"


def one_split_per_task(spark: SparkSession, sizes: list[int]) -> dict[str, str]:
    """Settings under which each split of a batch of files (their sizes in bytes) is read by a task of its own, cut
    at the same bytes whatever files are read with it (the line count and the parse must cut a file alike).

    Spark packs small splits into one task until their sizes plus an open cost per split reach the split size, which
    it lowers for a small input so every core gets work (FilePartition.maxSplitBytes). Here the split size is that
    same choice made once for the whole batch, and the open cost a whole split: no two splits share a task.
    """
    jvm_bytes = spark.sparkContext._jvm.org.apache.spark.network.util.JavaUtils.byteStringAsBytes
    max_bytes = jvm_bytes(spark.conf.get("spark.sql.files.maxPartitionBytes", "128m"))
    open_cost = jvm_bytes(spark.conf.get("spark.sql.files.openCostInBytes", "4m"))
    cores = int(spark.conf.get("spark.sql.files.minPartitionNum", None) or spark.sparkContext.defaultParallelism)
    per_core = -(-(sum(sizes) + len(sizes) * open_cost) // max(cores, 1))
    split = str(min(max_bytes, max(open_cost, per_core)))
    # maxPartitionNum, when set and exceeded, packs splits together again: no limit while ingesting.
    return {
        "spark.sql.files.maxPartitionBytes": split,
        "spark.sql.files.openCostInBytes": split,
        "spark.sql.files.maxPartitionNum": str(2**31 - 1),
    }


def csv_line_counts(
    spark: SparkSession, planned: list[PlannedFile], paths: dict[str, str] | None
) -> dict[tuple[str, int], int] | None:
    """Non-blank lines (header included) per (content hash, split start) of every CSV file: the cheap text pass.

    paths (from scan_paths): one read of every file; None when a line came from a path not among them (then call
    again without). Without paths: one read per file.
    """
    csv_files = [p for p in planned if p.source.file_format == "csv"]
    if not csv_files:
        return {}
    if paths is not None:
        lines = spark.read.text([literal(p) for p in csv_files]).where(F.col("value").rlike(NOT_BLANK))
        lines = lines.select(F.col("_metadata.file_path").alias(PATH), F.col("_metadata.file_block_start").alias(BLOCK))
        counts = lines.groupBy(PATH, BLOCK).count().collect()
        if any(r[PATH] not in paths for r in counts):
            return None
        return {(paths[r[PATH]], r[BLOCK]): r["count"] for r in counts}
    frames = [
        spark.read.text(literal(p))
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


def csv_groups(planned: list[PlannedFile]) -> list[list[PlannedFile]]:
    """CSV files that map their columns alike, in groups read by one scan each."""
    groups: dict[tuple, list[PlannedFile]] = {}
    for plan in planned:
        mapping = plan.mapping
        key = (mapping.taxi_type, tuple(mapping.canonical.items()), tuple(mapping.rescued.items()), plan.width)
        groups.setdefault(key, []).append(plan)
    return list(groups.values())


def _splits(
    spark: SparkSession, files: list[PlannedFile], counts: dict[tuple[str, int], int], paths: dict[str, str] | None
) -> DataFrame:
    """One row per split of the files: the row number before its first row, its data rows, and its file.

    Keyed by (scan path, split start) when paths are known, else by split start alone (then files is one file)."""
    by_hash = {p.source.content_hash: p.source for p in files}
    path_of = {content_hash: path for path, content_hash in (paths or {}).items()}
    offsets = block_offsets(counts)
    rows = [  # a split's data rows: its non-blank lines, but for the header in the split at byte 0
        (path_of.get(h), start, offset, counts[(h, start)] - (start == 0), *_source_values(by_hash[h]))
        for (h, start), offset in offsets.items()
        if h in by_hash
    ]
    columns = [(PATH, pa.string()), (BLOCK, pa.int64()), ("_offset", pa.int64()), ("_split_rows", pa.int64())]
    columns += [(c, pa.string()) for c in SOURCE_COLUMNS]
    # Sent as Arrow and read by the JVM: rows of Python objects would be unpickled by Python worker processes.
    schema = pa.schema(columns)
    return spark.createDataFrame(pa.Table.from_pylist([dict(zip(schema.names, row)) for row in rows], schema=schema))


def read_csv_group(
    spark: SparkSession, files: list[PlannedFile], counts: dict[tuple[str, int], int], paths: dict[str, str] | None
) -> DataFrame:
    """CSV files with one column mapping, in one scan, as canonical raw text columns plus _row_number and where each
    row came from; malformed rows keep their raw line. A row's number: its split's offset + its position in the
    split (one split per task: see one_split_per_task). A row past its split's counted rows, or of a split the text
    pass did not see, fails the read (naming the file) rather than take another row's number."""
    plan = files[0]
    names = plan.mapping.positional_names(plan.width)
    schema = T.StructType([T.StructField(n, T.StringType()) for n in names + [CORRUPT]])
    options = {"header": True, "schema": schema, "mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    source = spark.read.csv([literal(p) for p in files], **options)
    position = F.monotonically_increasing_id().bitwiseAND(F.lit((1 << POSITION_BITS) - 1)) + 1
    frame = source.select(
        "*",
        F.col("_metadata.file_path").alias(PATH),
        F.col("_metadata.file_block_start").alias(BLOCK),
        position.alias("_position"),
    )
    splits = _splits(spark, files, counts, paths)
    keys = [PATH, BLOCK] if paths is not None else [BLOCK]
    frame = frame.join(F.broadcast(splits if paths is not None else splits.drop(PATH)), keys, "left")
    numbered = F.col("_offset").isNotNull() & (F.col("_position") <= F.col("_split_rows"))
    error = F.concat(F.lit("bronze row numbers: a split of "), F.col(PATH), F.lit(" holds more rows than counted"))
    frame = frame.withColumn(
        "_row_number", F.when(numbered, F.col("_offset") + F.col("_position")).otherwise(F.raise_error(error))
    )
    return to_raw_columns(frame, plan.mapping, names, keep=("_row_number", *SOURCE_COLUMNS))


def _source_values(source: SourceFile) -> tuple[str, str, str | None]:
    """A file's SOURCE_COLUMNS values."""
    return source.location, source.content_hash, source.source_month


def read_parquet(spark: SparkSession, planned: PlannedFile) -> DataFrame:
    """One Parquet file as canonical raw text columns plus _row_number (the reader's row index) and its source."""
    names = planned.mapping.positional_names(planned.width)
    source = spark.read.parquet(literal(planned))
    values = _source_values(planned.source)
    frame = source.select(
        *[F.col(f"`{c}`").alias(n) for c, n in zip(source.columns, names)],
        (F.col("_metadata.row_index") + 1).alias("_row_number"),
        *[F.lit(value).cast("string").alias(name) for name, value in zip(SOURCE_COLUMNS, values)],
    )
    return to_raw_columns(frame, planned.mapping, names, keep=("_row_number", *SOURCE_COLUMNS))


def with_ingestion_metadata(raw: DataFrame, run_id: str) -> DataFrame:
    """bronze.trips rows: where each row came from, and its pickup month (ISO or US timestamp text) as partition."""
    return raw.select(
        *[c for c in BRONZE_TRIPS.fieldNames() if c in raw.columns],
        F.current_timestamp().alias("_ingested_at"),
        F.lit(run_id).alias("_run_id"),
        F.coalesce(tlc_month("pickup_datetime"), F.lit(UNKNOWN_MONTH)).alias("pickup_month"),
    ).select(*BRONZE_TRIPS.fieldNames())
