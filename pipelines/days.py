"""The day-IN predicate: restricts a read or a MERGE to the partitions (pickup days) a batch touches."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def distinct_days(df: DataFrame, column: str = "pickup_date") -> list[date | None]:
    """The distinct values of a date column (None included when some rows have no day), small: one per day."""
    return [row[0] for row in df.select(column).distinct().collect()]


def day_predicate(days: Iterable[date | None], column: str = "pickup_date") -> str | None:
    """SQL `column IN (DATE'...', ...)` (plus `OR column IS NULL` when None is among the days); None for no days.

    A literal IN list on a partition column lets Delta skip every other partition's files.
    """
    found = list(days)
    known = sorted(day for day in found if day is not None)
    clauses = [f"{column} IS NULL"] if len(known) < len(found) else []
    if known:
        clauses.append(f"{column} IN (" + ", ".join(f"DATE'{day.isoformat()}'" for day in known) + ")")
    return " OR ".join(clauses) or None


def day_filter(days: Iterable[date | None], column: str = "pickup_date"):
    """The same predicate as a Column, for reads (None when there are no days)."""
    predicate = day_predicate(days, column)
    return None if predicate is None else F.expr(predicate)


def in_days(days: Iterable[date], column: str = "pickup_date") -> Column:
    """day_filter as a Column that is false for no days: one SQL expression, so one call to the JVM where `isin`
    makes one per day (an incremental gold run's days and their 28-day windows, and the holidays)."""
    predicate = day_filter(days, column)
    return F.lit(False) if predicate is None else predicate
