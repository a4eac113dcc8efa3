"""Gold's building blocks on their own: the sketch's median over repeated bins and the holiday calendar."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import functions as F

from pipelines.gold import sketch
from pipelines.gold.holidays import holidays_between, us_federal_holidays


def test_sketch_median_reads_the_middle_bins_of_sorted_repeated_bins(spark):
    # A standing taxi's ZERO_BIN, a value below 1 (negative bin) and bin 0 sort before bin 7; unsorted input.
    cells = [(7, 3), (sketch.ZERO_BIN, 2), (-35, 4), (0, 1)]
    df = spark.createDataFrame([(cells,)], "c array<struct<bin:int,n:long>>")
    bins = F.sort_array(F.flatten(F.transform("c", lambda x: sketch.repeated(x["bin"], x["n"]))))
    middle = [sketch.value_of(F.lit(b)) for b in (-35, 0, 7)]
    row = df.select(
        bins,
        sketch.median(bins),  # 10 values: the 5th and 6th are both bin -35
        sketch.median(F.slice(bins, 6, 2)),  # bins -35 and 0: their values averaged
        sketch.median(F.slice(bins, 7, 4)),  # bins 0, 7, 7, 7: the 2nd and 3rd are 7
        sketch.median(F.slice(bins, 1, 3)),  # ZERO_BIN, ZERO_BIN, -35: a standing taxi's 0.0
        sketch.median(F.array().cast("array<int>")),
        *middle,
    ).first()
    assert row[0] == sorted(b for b, n in cells for _ in range(n))
    assert df.select(bins).schema[0].dataType.containsNull is False  # sort_array sorts primitive ints only then
    low, zero, seven = row[6:]
    assert row[1] == low and row[2] == pytest.approx((low + zero) / 2) and row[3] == seven and row[4] == 0.0
    assert row[5] is None
    assert zero == pytest.approx(1.0, rel=0.01) and seven == pytest.approx(1.0202**7, rel=0.01)


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
