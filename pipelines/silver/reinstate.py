"""A file published again with an earlier version's content (A, then B, then A again): ingestion lands nothing
(bronze holds A) and logs the file `reinstated`; silver reads A's bronze rows again, dated when A was published
again, so A is the newest version of its file and B is retired as superseded."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lake import Lake
from pipelines.bronze import ingest_log
from pipelines.bronze.files import file_identity

SOURCE, TARGET, QUARANTINE = "bronze.trips", "silver.trips", "silver.quarantine"


def pending(lake: Lake) -> dict[str, datetime]:
    """Reinstated content hashes that are still their file's latest version and of which silver holds no row:
    hash -> when it was published again (the latest time)."""
    latest = ingest_log.latest_hash_by_file(lake)
    when: dict[str, datetime] = {}
    for entry in ingest_log.ingested(lake, ("reinstated",)):
        content_hash, at = entry["content_hash"], entry["logged_at"]
        if latest.get(file_identity(entry["source_file"])) == content_hash:
            when[content_hash] = max(when.get(content_hash, at), at)
    held = _held(lake, sorted(when)) if when else set()
    return {h: at for h, at in when.items() if h not in held}


def _held(lake: Lake, hashes: list[str]) -> set[str]:
    """The hashes silver.trips or the open quarantine hold rows of."""
    found: set[str] = set()
    for table in (TARGET, QUARANTINE):
        if lake.exists(table):
            rows = lake.read(table).where(F.col("_source_hash").isin(hashes))
            rows = rows.where(F.col("_released_run_id").isNull()) if table == QUARANTINE else rows
            found |= {row[0] for row in rows.select("_source_hash").distinct().collect()}
    return found


def with_reinstated(
    lake: Lake, batch: DataFrame | None, when: dict[str, datetime], version: int
) -> tuple[DataFrame | None, int]:
    """The batch with the reinstated files' bronze rows (as of the pinned version) that it lacks, every row of a
    reinstated file dated when it was published again (`_ingested_at`); and how many rows were read again."""
    if not when:
        return batch, 0
    hashes = sorted(when)
    if batch is not None:
        in_batch = batch.where(F.col("_source_hash").isin(hashes)).select("_source_hash").distinct().collect()
        hashes = [h for h in hashes if h not in {row[0] for row in in_batch}]
    again = lake.read(SOURCE, version=version).where(F.col("_source_hash").isin(hashes)) if hashes else None
    read_again = again.count() if again is not None else 0
    rows = batch if again is None else again if batch is None else batch.unionByName(again)
    return rows.withColumn("_ingested_at", _published(when)), read_again


def _published(when: dict[str, datetime]) -> Column:
    dated = F.col("_ingested_at")
    for content_hash, at in when.items():
        dated = F.when(F.col("_source_hash") == content_hash, F.lit(at)).otherwise(dated)
    return dated
