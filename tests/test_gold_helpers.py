"""Gold's building blocks on their own: the sketch's long-encoded histogram entries and the holiday calendar."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import functions as F

from pipelines.gold import sketch
from pipelines.gold.holidays import holidays_between, us_federal_holidays

RANKS = (0, 1, 2, 3_999_999_999, 4_000_000_002, 4_000_000_003, 4_000_000_006, 4_000_000_007)


def test_sketch_entries_are_longs_that_sort_by_bin_and_keep_negative_bins_and_counts(spark):
    # A standing taxi's ZERO_BIN, a value below 1 (negative bin), a bin 0 and a large count; unsorted input.
    entries = [(7, 3), (sketch.ZERO_BIN, 2), (-35, 4_000_000_000), (0, 1), (7, 1)]
    df = spark.createDataFrame([(entries,)], "e array<struct<bin:int,n:long>>")
    encoded = df.select(F.sort_array(F.transform("e", lambda x: sketch.entry(x["bin"], x["n"]))).alias("s"))
    row = encoded.select(
        F.transform("s", lambda x: F.struct(sketch.entry_bin(x).alias("bin"), sketch.entry_count(x).alias("n"))),
        sketch.total("s"),
        *[sketch.bin_at_rank(F.col("s"), F.lit(rank)) for rank in RANKS],
    ).first()
    assert [tuple(e) for e in row[0]] == sorted(entries)
    assert row[1] == sum(n for _, n in entries)
    # cumulative counts 2, 4e9 + 2, 4e9 + 3, 4e9 + 4, 4e9 + 7; a rank past the last value has no bin
    assert list(row[2:]) == [sketch.ZERO_BIN, sketch.ZERO_BIN, -35, -35, 0, 7, 7, None]


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        # 2019: Independence Day Thursday, Veterans Day Monday, nothing on a weekend but no Juneteenth yet.
        (2019, ["01-01", "01-21", "02-18", "05-27", "07-04", "09-02", "10-14", "11-11", "11-28", "12-25"]),
        # 2021: Juneteenth (Saturday) observed Friday 06-18, Independence Day (Sunday) observed Monday 07-05,
        # Christmas (Saturday) observed Friday 12-24, and New Year 2022 (Saturday) observed Friday 2021-12-31.
        (2021, ["01-01", "01-18", "02-15", "05-31", "06-18", "06-19", "07-04", "07-05", "09-06", "10-11",
                "11-11", "11-25", "12-24", "12-25", "12-31"]),
        # 2023: New Year and Christmas on Sundays observed Mondays 01-02 and 12-25 is a Monday itself.
        (2023, ["01-01", "01-02", "01-16", "02-20", "05-29", "06-19", "07-04", "09-04", "10-09", "11-10",
                "11-11", "11-23", "12-25"]),
        (2024, ["01-01", "01-15", "02-19", "05-27", "06-19", "07-04", "09-02", "10-14", "11-11", "11-28", "12-25"]),
    ],
)  # fmt: skip
def test_us_federal_holidays_for_any_year(year, expected):
    days = holidays_between(date(year, 1, 1), date(year, 12, 31))
    assert [day.strftime("%m-%d") for day in days] == expected


def test_holidays_between_adds_extra_days_in_range_only():
    extra = [date(2019, 3, 17), date(2020, 3, 17)]
    assert holidays_between(date(2019, 3, 1), date(2019, 5, 31), extra) == [date(2019, 3, 17), date(2019, 5, 27)]
    assert us_federal_holidays(2022)[date(2021, 12, 31)] == "New Year's Day (observed)"
    assert date(2020, 6, 19) not in us_federal_holidays(2020)  # Juneteenth only from 2021
