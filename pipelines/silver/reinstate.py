"""A file published again with an earlier version's content (A, then B, then A again): ingestion lands nothing
(bronze holds A) and logs the file `reinstated`; silver then takes A as the newest version (the log dates it, see
`newest_versions`), retires B and reads A's rows from bronze again (they may have been retired). Each reinstatement
is read once: silver keeps a watermark on bronze.ingest_log."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake import Lake
from pipelines.bronze import ingest_log
from pipelines.bronze.files import file_identity

SOURCE, LOG = "bronze.trips", ingest_log.INGEST_LOG
KEY = ["run_id", "content_hash", "source_file"]


def pending(lake: Lake, consumer: str) -> tuple[list[str], int | None]:
    """Content hashes reinstated since the consumer's watermark on the log that are still their file's latest
    version, and the log version to move that watermark to (None: no reinstatement logged, nothing to keep). No
    Spark job unless the log holds a reinstatement."""
    version = lake.version(LOG)
    rows = lake.rows(LOG, ["status", *KEY]) if version is not None else []
    entries = [row for row in rows if row["status"] == "reinstated"]
    if not entries:
        return [], None
    after = lake.watermark(consumer, LOG)
    if after is not None:
        earlier = lake.read(LOG, version=after).where(F.col("status") == "reinstated").select(*KEY).collect()
        seen = {tuple(row) for row in earlier}
        entries = [row for row in entries if tuple(row[k] for k in KEY) not in seen]
    latest = ingest_log.latest_hash_by_file(lake) if entries else {}
    current = {
        row["content_hash"] for row in entries if latest.get(file_identity(row["source_file"])) == row["content_hash"]
    }
    return sorted(current), version


def in_bronze(lake: Lake, version: int) -> Callable[[list[str]], set[str]]:
    """Of some content hashes, those bronze.trips holds at the pinned version (a `lake restore` may have undone one):
    a read pruned by the files' statistics on _source_hash, run only when a logged version outside the batch is
    newer than the batch's."""

    def held(hashes: list[str]) -> set[str]:
        rows = lake.read(SOURCE, version=version).where(F.col("_source_hash").isin(hashes))
        return {row[0] for row in rows.select("_source_hash").distinct().collect()}

    return held


def with_reinstated(
    lake: Lake, batch: DataFrame | None, hashes: list[str], version: int
) -> tuple[DataFrame | None, int, list[str]]:
    """The batch with the bronze rows (as of the pinned version) of reinstated files it lacks; how many rows were
    read again, and their hashes."""
    if hashes and batch is not None:
        in_batch = batch.where(F.col("_source_hash").isin(hashes)).select("_source_hash").distinct().collect()
        hashes = [h for h in hashes if h not in {row[0] for row in in_batch}]
    if not hashes:
        return batch, 0, []
    again = lake.read(SOURCE, version=version).where(F.col("_source_hash").isin(hashes))
    return (again if batch is None else batch.unionByName(again)), again.count(), hashes
