"""A table's fingerprint for benchmarks that compare two ways of computing the same rows."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T


def fingerprint(df: DataFrame) -> tuple[int, int]:
    """Row count and the sum of a 64-bit hash of every row over every column (map columns as JSON, which xxhash64
    cannot hash): equal rows give equal fingerprints in any order."""
    columns = [F.to_json(f.name) if isinstance(f.dataType, T.MapType) else F.col(f.name) for f in df.schema.fields]
    row = df.agg(F.count(F.lit(1)), F.sum(F.xxhash64(*columns).cast("decimal(38,0)"))).first()
    return int(row[0]), int(row[1] or 0)
