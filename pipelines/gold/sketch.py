"""A mergeable approximate median: log-bucketed histograms (the DDSketch idea) in plain Spark SQL, no UDF.

A positive value x falls in bin ceil(log_gamma(x)), gamma = (1 + a) / (1 - a); the bin's representative value
2 gamma^i / (gamma + 1) is within a relative error a of every value in the bin, so the median read from merged bins
is within a of the exact (interpolated) median. Bins of several days merge by concatenating their (bin, n) entries:
a day's histogram is computed once and reused by every window that covers the day. Integer counts and a fixed bin
grid make the result independent of merge order, so an incremental run equals a full rebuild bit for bit.
"""

from __future__ import annotations

import math

from pyspark.sql import Column
from pyspark.sql import functions as F

ZERO_BIN = -1_000_000_000  # values <= 0 (a standing taxi): represented by 0.0, sorted before every positive bin
DEFAULT_RELATIVE_ACCURACY = 0.01


def gamma_of(relative_accuracy: float) -> float:
    if not 0 < relative_accuracy < 1:
        raise ValueError(f"relative accuracy must be in (0, 1), not {relative_accuracy}")
    return (1 + relative_accuracy) / (1 - relative_accuracy)


def bin_of(value: Column, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> Column:
    """The bin of a value; null for null."""
    log_gamma = math.log(gamma_of(relative_accuracy))
    return F.when(value <= 0, F.lit(ZERO_BIN)).when(value > 0, F.ceil(F.log(value) / log_gamma).cast("int"))


def value_of(bin_index: Column, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> Column:
    gamma = gamma_of(relative_accuracy)
    representative = F.lit(2.0 / (gamma + 1)) * F.pow(F.lit(gamma), bin_index)
    return F.when(bin_index == ZERO_BIN, F.lit(0.0)).otherwise(representative)


ENTRY_COUNT_BITS = 32  # an entry's count lives in the low 32 bits of its long, the bin (an int) in the high bits
INT_MIN = -(2**31)


def entry(bin_index: Column, count: Column) -> Column:
    """One histogram entry as a long: bin * 2**32 + count (count < 2**32).

    Longs sort by bin as a primitive array (`F.sort_array`), and a fold over them builds no struct per step:
    sorting and folding struct entries took most of gold's time at 1M trips (bench/results/scale.md).
    """
    return F.shiftleft(bin_index.cast("long"), ENTRY_COUNT_BITS) + count.cast("long")


def entry_bin(e: Column) -> Column:
    return F.shiftright(e, ENTRY_COUNT_BITS).cast("int")  # an arithmetic shift: negative bins come back


def entry_count(e: Column) -> Column:
    return e.bitwiseAND(F.lit(2**ENTRY_COUNT_BITS - 1))


def total(entries: Column) -> Column:
    """The number of values in an array of entries (0 for an empty array)."""
    return F.aggregate(entries, F.lit(0).cast("long"), lambda acc, e: acc + entry_count(e))


def bin_at_rank(ordered: Column, rank: Column) -> Column:
    """The bin holding the value of 0-based `rank` in entries sorted by bin; null when they hold fewer values.

    The fold's accumulator is one long: the values seen so far (>= 0) or, once the rank is reached, the bin found,
    stored as INT_MIN - 1 - bin (< 0), which later steps carry unchanged. `rank` must be a plain column: computed
    from the entries inside the fold, it would be re-evaluated at every step (quadratic).
    """

    def step(acc: Column, e: Column) -> Column:
        seen = acc + entry_count(e)
        return F.when(acc < 0, acc).when(seen > rank, F.lit(INT_MIN - 1) - entry_bin(e)).otherwise(seen)

    return F.aggregate(ordered, F.lit(0).cast("long"), step, lambda acc: F.when(acc < 0, F.lit(INT_MIN - 1) - acc))


def median(ordered: Column, count: Column, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> Column:
    """The approximate median of the values that entries sorted by bin hold (`count` of them); null for none.

    Entries may repeat a bin (merged days). Like Spark's exact `median`, an even count averages the two middle
    values. `ordered` should be a column of its own (sorted once, read by both folds).
    """
    low = bin_at_rank(ordered, F.floor((count - 1) / 2))  # 0-based ranks of the two middle values
    high = bin_at_rank(ordered, F.floor(count / 2))
    return (value_of(low.cast("int"), relative_accuracy) + value_of(high.cast("int"), relative_accuracy)) / 2
