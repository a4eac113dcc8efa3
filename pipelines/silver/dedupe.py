"""Deduplication of a materialized batch by trip_key without shuffling its rows.

A trip can arrive twice in one batch (two files holding it). Silver keeps the first row of each trip_key by
(_source_file, _row_number), so the choice is deterministic, and names the others by ROW_ID. A window over every row
did the same by shuffling the whole batch (1.2 GB at 5M trips: bench/results/scale.md); here only narrow columns move.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lake.expressions import reused
from pipelines.common import materialize
from pipelines.silver.transform import ROW_ID

KEY_HASH = "_key_hash"
BROADCAST_ROWS = 250_000  # a key set of at most this many rows (~25 MB of trip keys) is broadcast, not shuffled


def later_copies(
    trips: DataFrame, broadcast_rows: int = BROADCAST_ROWS, cache: list[DataFrame] | None = None
) -> DataFrame:
    """ROW_ID of every row deduplication drops: all but the first row of each trip_key.

    Only keys seen more than once are ranked. They are found by counting 8-byte hashes of the keys (a collision only
    sends a unique key through the exact ranking) and materialized, then broadcast to the batch when there are at
    most `broadcast_rows` of them. Runs two small jobs; the result is a lazy frame of the dropped rows' ids, and the
    materialized hashes are added to `cache` (free them with pipelines.common.release once the result is computed).
    """
    narrow = trips.select("trip_key", "_source_file", "_row_number", ROW_ID, F.xxhash64("trip_key").alias(KEY_HASH))
    repeated = materialize(narrow.groupBy(KEY_HASH).count().where(F.col("count") > 1).select(KEY_HASH))
    if cache is not None:
        cache.append(repeated)
    count = repeated.count()
    if not count:
        return narrow.select(ROW_ID).limit(0)
    candidates = narrow.join(broadcast_if_small(repeated, count, broadcast_rows), KEY_HASH, "left_semi")
    ranked = candidates.withColumn("_rank", reused("silver.dedupe_rank", _first_rank))
    return ranked.where(F.col("_rank") > 1).select(ROW_ID)


def without(rows: DataFrame, drop: DataFrame, keys: list[str], count: int) -> DataFrame:
    """rows whose keys are not in drop (a materialized frame of `count` rows), broadcast when it is small."""
    if not count:
        return rows
    return rows.join(broadcast_if_small(drop, count), keys, "left_anti")


def broadcast_if_small(keys: DataFrame, count: int, limit: int = BROADCAST_ROWS) -> DataFrame:
    """keys (`count` rows) marked for a broadcast join when they are at most `limit` rows: the batch then stays put."""
    return F.broadcast(keys) if count <= limit else keys


def _first_rank() -> Column:
    first = Window.partitionBy("trip_key").orderBy(F.col("_source_file").asc_nulls_last(), "_row_number")
    return F.row_number().over(first)
