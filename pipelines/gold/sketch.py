"""A mergeable approximate median: log-bucketed histograms (the DDSketch idea) in plain Spark SQL, no UDF.

A positive value x falls in bin ceil(log_gamma(x)), gamma = (1 + a) / (1 - a); the bin's representative value
2 gamma^i / (gamma + 1) is within a relative error a of every value in the bin, so the median read from merged bins
is within a of the exact (interpolated) median. A day's values are binned once, counted per bin, and kept as a sorted
array of bins (one int per value); the days of a window concatenate and sort, and the median is read at the middle
positions. A fixed bin grid makes the result independent of merge order, so an incremental run equals a full
rebuild bit for bit.
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


def repeated(bin_index: Column, count: Column) -> Column:
    """`count` values of one bin, as the bin repeated: a day's bins concatenate with other days' (count < 2**31).

    `bin_index` must not be null (gold drops values without a bin first). The coalesce changes no value: it tells
    Spark the array holds no null, so `sort_array` sorts primitive ints instead of boxed ones with a comparator,
    which took 3x the CPU in gold's pair-hour window at 1M trips (21.9 against 7.4 task-seconds).
    """
    return F.array_repeat(F.coalesce(bin_index, F.lit(ZERO_BIN)), count.cast("int"))


def median(bins: Column, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> Column:
    """The approximate median of the values whose bins the sorted array `bins` holds (one per value); null for none.

    Like Spark's exact `median`, an even count averages the two middle values. Reading the two middle elements of a
    sorted array is generated code; the fold over (bin, count) entries it replaced runs interpreted (gold at 1M trips:
    66.3 / 67.1 -> 54.7 / 60.3 s, bench/results/scale.md).
    """
    n = F.size(bins)
    low = F.when(n > 0, F.try_element_at(bins, (F.floor((n - 1) / 2) + 1).cast("int")))  # 1-based middle positions
    high = F.when(n > 0, F.try_element_at(bins, (F.floor(n / 2) + 1).cast("int")))
    return (value_of(low, relative_accuracy) + value_of(high, relative_accuracy)) / 2
