"""Landing raw files in bronze.trips: every row kept, as text, with where it came from; one commit per run.

Bronze is its own record of what landed: the content hashes in its `_source_hash` column are read before every
attempt, so a retry after a crash at any point (before, during or after the bronze commit, before the log) adds
nothing. The commit replaces the rows of its own hashes (`replaceWhere`), which there are none of, so it only
adds rows; but it makes Delta check concurrent commits against those hashes: two runs landing the same file at
once conflict, and the loser retries (bounded backoff), sees the file landed, and skips it.
bronze.ingest_log is the report of each run, written after the commit and repaired by the next run.
"""

from __future__ import annotations

from collections.abc import Callable

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession

from lake import Lake, delta
from lake.session import session_conf
from pipelines.bronze import ingest_log
from pipelines.bronze.files import (
    SourceFile,
    TruncatedGzip,
    delimiter_hint,
    describe,
    expand_paths,
    parquet_rows,
    read_header,
)
from pipelines.bronze.outcome import log_outcome
from pipelines.bronze.rows import (
    CORRUPT,
    UNKNOWN_MONTH,
    PlannedFile,
    csv_groups,
    csv_line_counts,
    data_rows_by_file,
    one_split_per_task,
    read_csv_group,
    read_parquet,
    rescued_map,
    scan_paths,
    to_raw_columns,
    with_ingestion_metadata,
)
from pipelines.bronze.schema_map import SchemaMismatch, map_columns
from pipelines.common import Progress, StageResult, new_run_id

BRONZE = "bronze.trips"
# Spark sorts every task's rows by partition before a partitioned write unless it may keep writers open.
CONCURRENT_WRITERS = {"spark.sql.maxConcurrentOutputFileWriters": "64"}

__all__ = [
    "BRONZE",
    "CORRUPT",
    "UNKNOWN_MONTH",
    "PlannedFile",
    "committed_hashes",
    "read_csv_group",
    "read_parquet",
    "rescued_map",
    "run_ingest",
    "to_raw_columns",
    "with_ingestion_metadata",
]


def committed_hashes(lake: Lake) -> set[str]:
    """Content hashes of every file landed in bronze, read from bronze itself (one column, no Spark job where delta-rs
    reads it)."""
    return lake.distinct(BRONZE, "_source_hash") if lake.exists(BRONZE) else set()


def plan_file(location: str) -> tuple[SourceFile | None, PlannedFile | None, str | None]:
    """Checks one file: returns (source, plan, reason); plan None with a reason when it is not read."""
    try:
        source = describe(location)
    except (OSError, TruncatedGzip) as exc:
        return None, None, f"unreadable: {exc}"
    if source.size_bytes == 0:
        return source, None, "empty file (0 bytes)"
    try:
        header = read_header(source)
        mapping = map_columns(header, location)
        rows = parquet_rows(source) if source.file_format == "parquet" else None
    except SchemaMismatch as exc:
        hint = delimiter_hint(read_header(source)) if source.file_format == "csv" else None
        return source, None, f"wrong delimiter ({hint}, not comma): {exc}" if hint else str(exc)
    except Exception as exc:  # a truncated Parquet footer, garbage bytes, bad gzip: report, keep going
        return source, None, f"unreadable {source.file_format}: {type(exc).__name__}: {exc}"
    return source, PlannedFile(source, mapping, len(header), rows), None


def bronze_rows(spark: SparkSession, planned: list[PlannedFile], run_id: str) -> tuple[DataFrame, list[PlannedFile]]:
    """The batch's bronze rows and the files with data rows: CSV lines counted first, then one parse per group of
    CSV files that map their columns alike, one per Parquet file. Run it and its write under one_split_per_task."""
    csv_files = [p for p in planned if p.source.file_format == "csv"]
    paths = scan_paths(spark, csv_files) if len(csv_files) > 1 else None
    counts = csv_line_counts(spark, planned, paths)
    if counts is None:  # a scan reported a path scan_paths did not give: read file by file
        paths, counts = None, csv_line_counts(spark, planned, None)
    csv_rows = data_rows_by_file(counts)
    for plan in csv_files:
        plan.data_rows = csv_rows.get(plan.source.content_hash, 0)
    landing = [p for p in planned if p.data_rows]
    csv_landing = [p for p in landing if p.source.file_format == "csv"]
    groups = csv_groups(csv_landing) if paths is not None else [[p] for p in csv_landing]
    frames = [read_csv_group(spark, group, counts, paths) for group in groups]
    frames += [read_parquet(spark, p) for p in landing if p.source.file_format == "parquet"]
    rows = frames[0] if frames else None
    for frame in frames[1:]:
        rows = rows.unionByName(frame)
    return (with_ingestion_metadata(rows, run_id) if rows is not None else None), landing


def commit(lake: Lake, rows: DataFrame, hashes: list[str], run_id: str) -> int:
    """One atomic bronze commit of the batch, fenced by its hashes against concurrent runs (see module doc)."""
    spark = lake.spark
    for key, value in CONCURRENT_WRITERS.items():
        if spark.conf.get(key, None) in (None, "", "0"):
            spark.conf.set(key, value)
    exists = lake.exists(BRONZE)
    lake.ensure_properties(BRONZE)  # `_corrupt_record`'s statistics give the run its counts (ingest_log)
    fence = "_source_hash IN ({})".format(", ".join(f"'{h}'" for h in hashes)) if exists else None
    return delta.write(
        lake.conform(BRONZE, rows),
        lake.path(BRONZE),
        "overwrite" if exists else "append",
        lake.spec(BRONZE).partition_by,
        replace_where=fence,
        user_metadata=run_id,
        options=lake.spec(BRONZE).write_options,
    )


def _is_data_error(exc: Exception) -> bool:
    """An error Spark raised on a file's content (not a commit conflict, not a dead JVM)."""
    return isinstance(exc, (PySparkException, Py4JJavaError)) and not delta.is_conflict(exc)


def land(lake: Lake, planned: list[PlannedFile], run_id: str, say: Callable[[str], None]) -> dict:
    """Lands the files not yet in bronze; a batch that fails on a file's content is retried file by file.

    Returns {"version": bronze version or None, "landed": [...], "skipped": [...], "failed": {hash: reason},
    "empty": [...], "commits": [(version, {hash: data rows})], "committed": hashes in bronze before the run}.
    Runs inside the conflict retry: everything is decided again from bronze's current state.
    """
    committed = committed_hashes(lake)
    todo = [p for p in planned if p.source.content_hash not in committed]
    outcome = {"version": None, "landed": [], "skipped": [p for p in planned if p not in todo], "failed": {}}
    outcome["empty"], outcome["commits"], outcome["committed"] = [], [], committed
    batches = [todo]
    while batches:
        batch = batches.pop(0)
        if not batch:
            continue
        try:
            split = one_split_per_task(lake.spark, [p.source.size_bytes for p in batch])  # see read_csv_group
            with session_conf(lake.spark, split):
                rows, landing = bronze_rows(lake.spark, batch, run_id)
                outcome["empty"] += [p for p in batch if p not in landing]
                if landing:
                    hashes = [p.source.content_hash for p in landing]
                    outcome["version"] = commit(lake, rows, hashes, run_id)
                    outcome["landed"] += landing
                    counted = {p.source.content_hash: p.data_rows for p in landing}
                    outcome["commits"].append((outcome["version"], counted))
        except Exception as exc:
            if not _is_data_error(exc):
                raise
            if len(batch) > 1:
                say(f"batch of {len(batch)} files failed ({type(exc).__name__}); landing them one by one")
                batches += [[p] for p in batch]
            else:
                first_line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                outcome["failed"][batch[0].source.content_hash] = f"unreadable: {type(exc).__name__}: {first_line}"
    return outcome


def run_ingest(
    lake: Lake, paths: list[str], run_id: str | None = None, progress: Callable[[str], None] | None = None
) -> StageResult:
    """Ingests raw trip files into bronze.trips; files already landed (same content hash) are skipped."""
    run_id = run_id or new_run_id("ingest")
    say = Progress("ingest", progress)
    locations = expand_paths(paths)
    log = ingest_log.RunLog(run_id)
    planned: list[PlannedFile] = []
    seen: dict[str, int] = {}  # content hash -> its index in planned
    for index, location in enumerate(locations, start=1):
        source, plan, reason = plan_file(location)
        if plan is None:
            log.add(location, source, "failed", reason)
            say(f"[{index}/{len(locations)}] failed: {location} ({reason})")
            continue
        earlier = seen.get(plan.source.content_hash)
        if earlier is not None:  # the same content twice: the later place (a later dated folder) stands for it
            log.add(planned[earlier].source.location, planned[earlier].source, "duplicate", "same content in this run")
            say(f"[{index}/{len(locations)}] duplicate: {planned[earlier].source.location} (same as {location})")
            planned[earlier] = plan
            continue
        seen[plan.source.content_hash] = len(planned)
        planned.append(plan)
        say(f"[{index}/{len(locations)}] reading: {location} ({plan.mapping.taxi_type})")

    outcome = {
        "version": None,
        "landed": [],
        "skipped": [],
        "failed": {},
        "empty": [],
        "commits": [],
        "committed": None,
    }
    if planned:
        retry = lambda attempt, exc: say(f"bronze commit conflict (attempt {attempt}); retrying: {exc}")  # noqa: E731
        outcome = delta.retry_on_conflict(lambda: land(lake, planned, run_id, say), on_retry=retry)
    committed = committed_hashes(lake) if outcome["committed"] is None else outcome["committed"]
    log_outcome(lake, log, planned, outcome, committed)
    bronze_version = outcome["version"]
    log_version = ingest_log.write(lake, log, bronze_version)
    result = StageResult("ingest", run_id, counts=log.counts(), details={"files": log.entries})
    result.versions = {
        BRONZE: bronze_version if bronze_version is not None else lake.version(BRONZE),
        ingest_log.INGEST_LOG: log_version,
    }
    if result.counts["failed_files"]:
        result.status = "partial" if result.counts["ingested_files"] else "failed"
    say(", ".join(f"{value:,} {name.replace('_', ' ')}" for name, value in result.counts.items()))
    return result
