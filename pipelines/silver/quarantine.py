"""silver.quarantine: every bronze row a `drop` rule rejected, verbatim, with the rules it broke and its run."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake.catalog import schema_of
from lake.expressions import reused
from lake.schema import contract_columns
from pipelines.schemas import BRONZE_TRIPS
from pipelines.silver.transform import RAW

VIOLATIONS = "_violations"  # array of the names of the rules a row breaks (every action)
QUARANTINE_KEYS = ["_source_hash", "_row_number"]  # one bronze row: the file's content hash and its row
QUARANTINE = schema_of("silver.quarantine")


def broken(names: list[str]) -> Column:
    """The subset of a row's broken rules that is in names."""
    return reused(("silver.broken", tuple(names)), lambda: _broken(names))


def _broken(names: list[str]) -> Column:
    wanted = F.array(*[F.lit(n) for n in names]) if names else F.array().cast("array<string>")
    return F.array_intersect(F.col(VIOLATIONS), wanted)


def rejected(drop_rules: list[str]) -> Column:
    """True for a row that breaks at least one drop rule."""
    return reused(("silver.rejected", tuple(drop_rules)), lambda: F.size(broken(drop_rules)) > 0)


def raw_if_rejected(drop_rules: list[str]) -> Column:
    """`_raw` on the rows quarantine takes, null on the others: with every row's raw text the persisted batch of 1M
    trips held 1,393 MB, without it on passing rows 755 MB (BENCHMARKS.md)."""
    return reused(("silver.raw_if_rejected", tuple(drop_rules)), lambda: F.when(rejected(drop_rules), F.col(RAW)))


def quarantine_rows(flagged: DataFrame, drop_rules: list[str], warn_rules: list[str], run_id: str) -> DataFrame:
    """The rejected rows of a flagged batch in the silver.quarantine contract (raw values from `_raw`)."""
    rows = flagged.where(rejected(drop_rules)).select(
        f"{RAW}.*",
        broken(drop_rules).alias("_rules_failed"),
        broken(warn_rules).alias("_rules_warned"),
        F.lit(run_id).alias("_quarantine_run_id"),
        F.current_timestamp().alias("_quarantined_at"),
        F.lit(None).cast(T.StringType()).alias("_released_run_id"),
    )
    return rows.select(*contract_columns(QUARANTINE))


def open_rows(quarantine: DataFrame) -> DataFrame:
    """Quarantined rows not yet released, as bronze rows (the input of a reprocessing run)."""
    return quarantine.where(F.col("_released_run_id").isNull()).select(*BRONZE_TRIPS.fieldNames())


def released_rows(quarantine: DataFrame, flagged: DataFrame, drop_rules: list[str], run_id: str) -> DataFrame:
    """Quarantine rows whose reprocessed version now passes every drop rule, marked as released by run_id."""
    passing = flagged.where(~rejected(drop_rules)).select(*QUARANTINE_KEYS)
    released = quarantine.join(passing, on=QUARANTINE_KEYS, how="left_semi")
    return released.withColumn("_released_run_id", F.lit(run_id)).select(*QUARANTINE.fieldNames())
