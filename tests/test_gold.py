"""Gold: each feature and analytics column on a few silver rows, the no-leak window (runs: test_gold_run.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from pyspark.sql import DataFrame, SparkSession

from pipelines.gold import affected_days, build_gold
from pipelines.gold.analytics import hourly_demand, zone_daily
from pipelines.gold.features import (
    PAIR_STATS,
    daily_cells,
    pair_hour_stats,
    pair_stats,
    trip_features,
    with_zone_trips_prev_hour,
)
from pipelines.gold.run import needed_days
from pipelines.schemas import SILVER_TRIPS, TRIP_FEATURES

# Real TLC zone ids: 1 Newark Airport (EWR), 132 JFK Airport, 230 Times Sq, 10 Baisley Park, 20 Belmont.
ZONES = {
    1: ("Newark Airport", "EWR"),
    132: ("JFK Airport", "Queens"),
    230: ("Times Sq/Theatre District", "Manhattan"),
    10: ("Baisley Park", "Queens"),
    20: ("Belmont", "Bronx"),
}
GOLD = ["gold.pair_stats", "gold.trip_features", "gold.zone_daily", "gold.hourly_demand"]
APPROX = 0.01  # gold.median_relative_accuracy: pair medians come from log-bucketed histograms


def trip(key: str, pickup: str, pu: int | None = 10, do: int | None = 20, distance=1.0, duration=10.0, **extra) -> dict:
    """One silver trip: a key, a pickup time (UTC wall clock) and whatever else the test cares about."""
    return {"trip_key": key, "pickup": pickup, "pickup_zone_id": pu, "dropoff_zone_id": do,
            "trip_distance": distance, "duration_min": duration, **extra}  # fmt: skip


def silver_frame(spark: SparkSession, trips: list[dict]) -> DataFrame:
    """silver.trips rows with exactly the SILVER_TRIPS schema; unspecified columns get plain defaults or null."""
    rows = []
    for spec in trips:
        spec = dict(spec)
        pickup = datetime.fromisoformat(spec.pop("pickup")).replace(tzinfo=timezone.utc)
        duration = spec.get("duration_min")
        pu_zone, pu_borough = ZONES.get(spec.get("pickup_zone_id"), (None, None))
        do_zone, do_borough = ZONES.get(spec.get("dropoff_zone_id"), (None, None))
        row = {field.name: None for field in SILVER_TRIPS}
        row.update(
            taxi_type="yellow", vendor_id=1, passenger_count=1, rate_code_id=1, payment_type=1,
            pickup_ts=pickup, dropoff_ts=None if duration is None else pickup + timedelta(minutes=duration),
            pickup_zone=pu_zone, pickup_borough=pu_borough, dropoff_zone=do_zone, dropoff_borough=do_borough,
            total_amount=10.0, tip_amount=1.0, pickup_date=pickup.date(),
        )  # fmt: skip
        row.update(spec)
        rows.append(tuple(row[field.name] for field in SILVER_TRIPS))
    return spark.createDataFrame(rows, SILVER_TRIPS)


def columns_and_types(schema) -> list[tuple]:
    return [(field.name, field.dataType) for field in schema.fields]


def sorted_rows(df: DataFrame) -> list[tuple]:
    return sorted((tuple(row) for row in df.collect()), key=repr)


def test_calendar_place_and_vendor_features(spark):
    trips = silver_frame(
        spark,
        [
            trip("holiday", "2019-01-01 08:15:00", pu=132, do=230, vendor_id=2, passenger_count=3, rate_code_id=2),
            trip("saturday", "2019-01-05 23:59:59", pu=230, do=1),
            trip("no_zone", "2019-01-06 00:00:00", pu=None, do=None),
        ],
    )
    stats = spark.createDataFrame([], PAIR_STATS)
    features = trip_features(trips, stats, holidays=[date(2019, 1, 1)])
    assert columns_and_types(features.schema) == columns_and_types(TRIP_FEATURES)
    columns = ["trip_key", "vendor_id", "passenger_count", "rate_code_id", "pickup_hour", "day_of_week", "month",
               "is_weekend", "is_holiday", "pickup_is_airport", "dropoff_is_airport", "pickup_borough",
               "dropoff_borough", "pair_trips", "pair_median_distance"]  # fmt: skip
    assert sorted_rows(features.select(columns)) == sorted(
        [
            ("holiday", 2, 3, 2, 8, 3, 1, False, True, True, False, "Queens", "Manhattan", 0, None),
            ("saturday", 1, 1, 1, 23, 7, 1, True, False, False, True, "Manhattan", "EWR", 0, None),
            ("no_zone", 1, 1, 1, 0, 1, 1, True, False, False, False, None, None, 0, None),
        ],
        key=repr,
    )


# Window of 3 days before 2019-01-10: Jan 7, 8, 9. Jan 6 is too old; Jan 10 itself would leak the day's labels.
WINDOW_TRIPS = [
    trip("too_old", "2019-01-06 12:00:00", distance=100.0, duration=100.0),
    trip("first_in_window", "2019-01-07 00:00:00", distance=2.0, duration=10.0),
    trip("no_distance", "2019-01-08 09:00:00", distance=None, duration=30.0),
    trip("day_before_a", "2019-01-09 23:59:59", distance=4.0, duration=20.0),
    trip("day_before_b", "2019-01-09 10:00:00", distance=9.0, duration=40.0),
    trip("reverse_pair", "2019-01-09 10:00:00", pu=20, do=10, distance=7.0, duration=7.0),
    trip("unknown_zone", "2019-01-09 10:00:00", pu=None, do=20, distance=7.0, duration=7.0),
    trip("same_day", "2019-01-10 00:00:01", distance=500.0, duration=500.0),
    trip("reverse_same_day", "2019-01-10 00:00:01", pu=20, do=10, distance=1.0, duration=1.0),
]


def test_pair_stats_use_only_the_trailing_window_before_the_day(spark):
    trips = silver_frame(spark, WINDOW_TRIPS)
    stats = pair_stats(trips, {date(2019, 1, 10)}, window_days=3)
    assert columns_and_types(stats.schema) == columns_and_types(PAIR_STATS)
    # (10, 20): distances 2, 4, 9 (null ignored) -> 4; durations 10, 20, 30, 40 -> 25 (interpolated), within 1%.
    # (20, 10): one trip in the window. (20, 10) has a trip on Jan 10 too; (None, 20) never has a row.
    rows = {(row.pickup_zone_id, row.dropoff_zone_id): row for row in stats.collect()}
    assert sorted(rows) == [(10, 20), (20, 10)]
    pair = rows[(10, 20)]
    assert (pair.pair_trips, pair.stats_date) == (4, date(2019, 1, 10))
    assert pair.pair_median_distance == pytest.approx(4.0, rel=APPROX)
    assert pair.pair_median_duration == pytest.approx(25.0, rel=APPROX)
    reverse = rows[(20, 10)]
    assert reverse.pair_trips == 1 and reverse.pair_median_duration == pytest.approx(7.0, rel=APPROX)


def test_pair_stats_are_the_same_from_daily_cells_of_any_hour_bucket(spark):
    # build_gold computes the daily cells once, in the pair-hour buckets, for both statistics.
    trips = silver_frame(spark, WINDOW_TRIPS)
    expected = sorted_rows(pair_stats(trips, {date(2019, 1, 10)}, window_days=3))
    for hours in (1, 3, 24):
        cells = daily_cells(trips, hours, APPROX)
        assert sorted_rows(pair_stats(None, {date(2019, 1, 10)}, window_days=3, cells=cells)) == expected, hours
    one_bucket = pair_hour_stats(None, None, window_days=3, hours=24, cells=daily_cells(trips, 24, APPROX))
    assert {row.pickup_zone_id for row in one_bucket.collect()} == {10, 20}


def test_both_pair_statistics_read_the_stored_cells_without_a_shuffle_and_sort_each_window_once(spark):
    from pipelines.common import materialize, release

    cells = materialize(daily_cells(silver_frame(spark, WINDOW_TRIPS), 4, APPROX), keep_partitioning=True)
    try:
        for stats in (pair_stats(None, None, 3, cells=cells), pair_hour_stats(None, None, 3, cells=cells)):
            plan = stats._jdf.queryExecution().executedPlan().toString()
            assert "Exchange" not in plan, plan  # day aggregation and trailing window keep the cells' pair partitioning
            assert plan.count("sort_array(") == (2 if "distance_bins" in plan else 1), plan  # one per histogram
        # Only a (day, pair, bucket) whose window has a trip in the bucket: (10, 20) at 09:00 on Jan 8 and 10:00 on
        # Jan 9 (bucket 2), at 00:00 on Jan 7 and Jan 10 (bucket 0); every other window of the bucket is empty.
        medians = {tuple(row[:4]): row[4] for row in pair_hour_stats(None, None, 3, cells=cells).collect()}
        assert sorted(medians) == [
            (date(2019, 1, 9), 10, 20, 2),
            (date(2019, 1, 10), 10, 20, 0),
        ]
        assert medians[(date(2019, 1, 9), 10, 20, 2)] == pytest.approx(30.0, rel=APPROX)
        assert medians[(date(2019, 1, 10), 10, 20, 0)] == pytest.approx(10.0, rel=APPROX)
    finally:
        release([cells])


def test_pair_stats_medians_stay_within_the_relative_accuracy(spark):
    # 41 trips of one pair on Jan 1, durations spread over three orders of magnitude, and a standing taxi (0).
    durations = [0.0] + [0.5 * 1.37**k for k in range(40)]
    trips = [trip(f"t{k}", "2019-01-01 12:00:00", duration=d, distance=d / 3) for k, d in enumerate(durations)]
    trips.append(trip("probe", "2019-01-02 12:00:00"))
    stats = pair_stats(silver_frame(spark, trips), {date(2019, 1, 2)}, window_days=1).first()
    exact = sorted(durations)[20]
    assert stats.pair_trips == 41
    assert stats.pair_median_duration == pytest.approx(exact, rel=APPROX)
    assert stats.pair_median_duration != exact  # approximate: a tautology check would not notice an exact fallback
    assert stats.pair_median_distance == pytest.approx(exact / 3, rel=APPROX)


def test_trip_features_see_the_pair_history_of_earlier_days_only(spark):
    silver = silver_frame(spark, WINDOW_TRIPS)
    days = {date(2019, 1, d) for d in range(6, 11)}
    tables = build_gold(silver, days, days, window_days=3, holidays=[])
    features = {row.trip_key: row for row in tables["gold.trip_features"].collect()}
    same_day = features["same_day"]
    assert same_day.pair_trips == 4
    assert (same_day.pair_median_distance, same_day.pair_median_duration) == pytest.approx((4.0, 25.0), rel=APPROX)
    assert (same_day.trip_distance, same_day.duration_min) == (500.0, 500.0)  # label kept, not in its own history
    too_old = features["too_old"]
    assert (too_old.pair_trips, too_old.pair_median_distance, too_old.pair_median_duration) == (0, None, None)
    # Jan 9 sees Jan 6..8: the too_old trip (100) and first_in_window (2) -> 51; no_distance only counts.
    day_before = features["day_before_a"]
    assert day_before.pair_trips == 3
    assert (day_before.pair_median_distance, day_before.pair_median_duration) == pytest.approx((51.0, 30.0), rel=APPROX)
    assert features["unknown_zone"].pair_trips == 0
    assert len(features) == len(WINDOW_TRIPS)


def test_zone_daily_sums_averages_and_speed(spark):
    trips = silver_frame(
        spark,
        [
            trip("a", "2019-01-02 08:00:00", pu=230, distance=3.0, duration=10.0, total_amount=10.25, tip_amount=2.0),
            trip("standing", "2019-01-02 09:00:00", pu=230, distance=1.0, duration=0.0, total_amount=5.5,
                 tip_amount=0.0),
            trip("nulls", "2019-01-02 10:00:00", pu=230, distance=None, duration=20.0, total_amount=None,
                 tip_amount=None),
            trip("jfk", "2019-01-02 10:00:00", pu=132, distance=18.0, duration=30.0, total_amount=60.0),
        ],
    )  # fmt: skip
    rows = sorted_rows(zone_daily(trips))
    # Zone 230: speed counts only trips that took time: 3 miles in 10 minutes = 18 mph; duration avg (10+0+20)/3.
    assert rows == sorted(
        [
            (230, "Times Sq/Theatre District", "Manhattan", 3, 15.75, 2.0, 4.0, 10.0, 18.0, date(2019, 1, 2)),
            (132, "JFK Airport", "Queens", 1, 60.0, 1.0, 18.0, 30.0, 36.0, date(2019, 1, 2)),
        ],
        key=repr,
    )


def test_hourly_demand_counts_trips_per_borough_and_hour(spark):
    trips = silver_frame(
        spark,
        [
            trip("a", "2019-01-02 08:00:00", pu=230),
            trip("b", "2019-01-02 08:59:59", pu=230),
            trip("c", "2019-01-02 09:00:00", pu=230),
            trip("d", "2019-01-02 08:30:00", pu=132),
            trip("e", "2019-01-03 08:30:00", pu=None),
        ],
    )
    assert sorted_rows(hourly_demand(trips)) == sorted(
        [
            ("Manhattan", 8, 2, date(2019, 1, 2)),
            ("Manhattan", 9, 1, date(2019, 1, 2)),
            ("Queens", 8, 1, date(2019, 1, 2)),
            (None, 8, 1, date(2019, 1, 3)),
        ],
        key=repr,
    )


def test_pair_hour_median_uses_the_same_hour_bucket_of_the_window_only(spark):
    trips = silver_frame(
        spark,
        [
            trip("night_1", "2019-01-01 01:00:00", duration=5.0),  # bucket 0 (00-04)
            trip("night_2", "2019-01-01 03:59:59", duration=7.0),
            trip("rush", "2019-01-01 08:30:00", duration=40.0),  # bucket 2 (08-12)
            trip("rush_other_pair", "2019-01-01 09:00:00", pu=20, do=10, duration=90.0),
            trip("same_day_night", "2019-01-02 00:10:00", duration=500.0),  # its own day: not history
            trip("probe_night", "2019-01-02 02:00:00", duration=1.0),
            trip("probe_rush", "2019-01-02 11:00:00", duration=1.0),
            trip("probe_evening", "2019-01-02 18:00:00", duration=1.0),  # no history in bucket 4
        ],
    )
    days = {date(2019, 1, 2)}
    features = trip_features(
        trips.where("pickup_date = '2019-01-02'"),
        pair_stats(trips, days, window_days=1),
        holidays=[],
        hour_stats=pair_hour_stats(trips, days, window_days=1, hours=4),
    )
    medians = {row.trip_key: row.pair_hour_median_duration for row in features.collect()}
    assert medians["probe_night"] == pytest.approx(6.0, rel=APPROX)
    assert medians["same_day_night"] == pytest.approx(6.0, rel=APPROX)
    assert medians["probe_rush"] == pytest.approx(40.0, rel=APPROX)
    assert medians["probe_evening"] is None


def test_zone_trips_prev_hour_counts_strictly_earlier_pickups_of_the_hour_before(spark):
    trips = silver_frame(
        spark,
        [
            trip("late_yesterday", "2019-01-01 23:30:00", pu=230),
            trip("too_early", "2019-01-01 22:59:59", pu=230),
            trip("first", "2019-01-02 00:10:00", pu=230),  # sees late_yesterday only
            trip("tie_a", "2019-01-02 00:20:00", pu=230),  # sees late_yesterday and first, not tie_b
            trip("tie_b", "2019-01-02 00:20:00", pu=230),
            trip("hour_edge", "2019-01-02 01:10:00", pu=230),  # [00:10, 01:10): first, tie_a, tie_b
            trip("other_zone", "2019-01-02 00:30:00", pu=132),
            trip("no_zone", "2019-01-02 00:30:00", pu=None),
        ],
    )
    counted = with_zone_trips_prev_hour(trips, {date(2019, 1, 2)})
    counts = {row.trip_key: row.pickup_zone_trips_prev_hour for row in counted.collect()}
    assert counts == {"first": 1, "tie_a": 2, "tie_b": 2, "hour_edge": 3, "other_zone": 0, "no_zone": None}
    everything = {
        row.trip_key: row.pickup_zone_trips_prev_hour for row in with_zone_trips_prev_hour(trips, None).collect()
    }
    assert everything == {**counts, "late_yesterday": 1, "too_early": 0}  # 22:59:59 is in [22:30, 23:30)


def test_affected_days_are_the_touched_days_and_the_window_after_them():
    silver_days = {date(2019, 1, d) for d in (1, 2, 3, 4, 6)}
    assert affected_days({date(2019, 1, 2)}, silver_days, 2) == {date(2019, 1, d) for d in (2, 3, 4)}
    assert affected_days(set(), silver_days, 2) == set()
    # A touched day whose rows are all gone stays in, so its gold rows are removed.
    assert affected_days({date(2019, 1, 5)}, silver_days, 2) == {date(2019, 1, 5), date(2019, 1, 6)}
    # Without silver's day list: every calendar day of the window after (nothing to read, nothing to keep there).
    assert affected_days({date(2019, 1, 5)}, None, 2) == {date(2019, 1, d) for d in (5, 6, 7)}
    assert needed_days({date(2019, 1, 5), date(2019, 1, 9)}, 2) == {date(2019, 1, d) for d in (3, 4, 5, 7, 8, 9)}
