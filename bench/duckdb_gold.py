"""Gold's four tables in DuckDB SQL, for the single-node reference (bench/duckdb_reference.py).

Mirrors pipelines/gold on a full run: zone_daily and hourly_demand (analytics.py), and pair_stats and trip_features
(features.py) with the same log-bucketed median sketch (sketch.py): a value's bin is ceil(ln(x) / ln(gamma)), values
<= 0 share one bin below every other, a window's median is read at the middle positions of its bins and the bin's
representative value 2 gamma^i / (gamma + 1) is returned, so both engines give the same medians. The pair and
pair-hour windows cover the `window_days` days before each day; the previous-hour count is the pickups of the same
zone in [pickup - 1 h, pickup).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[1]
ZERO_BIN = -1_000_000_000  # pipelines/gold/sketch.py
AIRPORT_ZONE_IDS = (1, 132, 138)  # pipelines/gold/features.py
TRIP, DISTANCE, DURATION = 0, 1, 2
TABLES = ("zone_daily", "hourly_demand", "pair_stats", "trip_features")
ROUNDED = ("revenue", "tips", "total_distance", "trip_minutes", "speed")


@dataclass(frozen=True)
class GoldSettings:
    """gold.* of the lake's configuration (conf/base.yaml when not given)."""

    window_days: int = 28
    relative_accuracy: float = 0.01
    hour_bucket_hours: int = 4
    extra_holidays: tuple[date, ...] = field(default_factory=tuple)

    @classmethod
    def from_base(cls) -> GoldSettings:
        gold = yaml.safe_load((ROOT / "conf" / "base.yaml").read_text())["gold"]
        return cls(
            int(gold["pair_window_days"]),
            float(gold["median_relative_accuracy"]),
            int(gold["pair_hour_bucket_hours"]),
            tuple(date.fromisoformat(str(d)) for d in gold.get("extra_holidays") or []),
        )


def _gamma(settings: GoldSettings) -> float:
    a = settings.relative_accuracy
    return (1 + a) / (1 - a)


def _bin(value: str, settings: GoldSettings) -> str:
    log_gamma = math.log(_gamma(settings))
    return (
        f"CASE WHEN {value} <= 0 THEN {ZERO_BIN} "
        f"WHEN {value} > 0 THEN CAST(ceil(ln({value}) / {log_gamma!r}) AS INTEGER) END"
    )


def _value(bin_index: str, settings: GoldSettings) -> str:
    gamma = _gamma(settings)
    return f"CASE WHEN {bin_index} = {ZERO_BIN} THEN 0.0 ELSE {2.0 / (gamma + 1)!r} * pow({gamma!r}, {bin_index}) END"


def _windowed_medians(
    con: duckdb.DuckDBPyConnection, name: str, keys: list[str], kinds: list[int], window_days: int
) -> None:
    """`name`: per day with cells and keys, the trailing window's count of each kind (`n_<kind>`) and the middle bins
    of the window's values (`lo_<kind>`, `hi_<kind>`; not for TRIP), from `cells_<name>` (pickup_date, keys, kind,
    bin, n). As gold does it: a day's bins as a list (each bin repeated n times), the window's lists concatenated and
    sorted, the middle positions read. (A range join of each day to its window's cells, summed per bin and read by a
    running count, gave the same tables in twice the time: 13.0 against 6.9 s for gold at 1M rows.)"""
    key_list = ", ".join(keys)
    daily, window, middle = [], [], []
    for k in kinds:
        daily.append(f"CAST(sum(n) FILTER (WHERE kind = {k}) AS BIGINT) AS day_n_{k}")
        window.append(f"CAST(sum(day_n_{k}) OVER w AS BIGINT) AS n_{k}")
        middle.append(f"n_{k}")
        if k == TRIP:
            continue
        daily.append(f"flatten(list(list_resize([bin], n, bin)) FILTER (WHERE kind = {k})) AS day_bins_{k}")
        window.append(f"list_sort(flatten(list(day_bins_{k}) OVER w)) AS bins_{k}")
        for side, position in (("lo", f"(len(bins_{k}) - 1) // 2"), ("hi", f"len(bins_{k}) // 2")):
            middle.append(f"CASE WHEN len(bins_{k}) > 0 THEN bins_{k}[{position} + 1] END AS {side}_{k}")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {name} AS
        WITH per_day AS (SELECT pickup_date, {key_list}, {', '.join(daily)} FROM cells_{name} GROUP BY ALL),
        windowed AS (
            SELECT pickup_date, {key_list}, {', '.join(window)} FROM per_day
            WINDOW w AS (PARTITION BY {key_list} ORDER BY pickup_date
                         RANGE BETWEEN INTERVAL {int(window_days)} DAY PRECEDING AND INTERVAL 1 DAY PRECEDING)
        )
        SELECT pickup_date, {key_list}, {', '.join(middle)} FROM windowed
    """)  # fmt: skip


def build_gold(con: duckdb.DuckDBPyConnection, settings: GoldSettings, holidays: list[date]) -> None:
    """Creates zone_daily, hourly_demand, pair_stats and trip_features from the connection's `silver` table."""
    con.execute("CREATE OR REPLACE TEMP TABLE g_trips AS SELECT * FROM silver WHERE pickup_date IS NOT NULL")
    took_time = "duration_min > 0 AND trip_distance IS NOT NULL"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE zone_daily AS
        SELECT pickup_zone_id, pickup_zone, pickup_borough, count(*) AS trips,
               CAST(sum(CAST(total_amount AS DECIMAL(18, 2))) AS DOUBLE) AS revenue,
               CAST(sum(CAST(tip_amount AS DECIMAL(18, 2))) AS DOUBLE) AS tips,
               CAST(sum(CAST(trip_distance AS DECIMAL(18, 6))) AS DOUBLE) AS total_distance,
               CAST(sum(CAST(duration_min AS DECIMAL(18, 6))) AS DOUBLE) / count(duration_min) AS avg_duration_min,
               CAST(sum(CASE WHEN {took_time} THEN CAST(trip_distance AS DECIMAL(18, 6)) END) AS DOUBLE)
                 / (CAST(sum(CASE WHEN {took_time} THEN CAST(duration_min AS DECIMAL(18, 6)) END) AS DOUBLE) / 60)
                 AS avg_speed_mph,
               pickup_date
        FROM g_trips GROUP BY pickup_date, pickup_zone_id, pickup_zone, pickup_borough
    """)  # fmt: skip
    con.execute("""
        CREATE OR REPLACE TEMP TABLE hourly_demand AS
        SELECT pickup_borough, CAST(hour(pickup_ts) AS INTEGER) AS pickup_hour, count(*) AS trips, pickup_date
        FROM g_trips GROUP BY pickup_date, pickup_borough, hour(pickup_ts)
    """)
    bucket = f"CAST(floor(hour(pickup_ts) / {int(settings.hour_bucket_hours)}) AS INTEGER)"
    # Every trip with a known pair: one TRIP entry, its distance's and its duration's bins (none for a null value).
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cells AS
        WITH entries AS (
            SELECT pickup_date, pickup_zone_id, dropoff_zone_id, {bucket} AS bucket,
                   unnest([{TRIP}, {DISTANCE}, {DURATION}]) AS kind,
                   unnest([0, {_bin('trip_distance', settings)}, {_bin('duration_min', settings)}]) AS bin
            FROM g_trips WHERE pickup_zone_id IS NOT NULL AND dropoff_zone_id IS NOT NULL
        )
        SELECT pickup_date, pickup_zone_id, dropoff_zone_id, bucket, kind, bin, count(*) AS n
        FROM entries WHERE bin IS NOT NULL GROUP BY ALL
    """)  # fmt: skip
    pair = ["pickup_zone_id", "dropoff_zone_id"]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cells_pair_window AS SELECT pickup_date, pickup_zone_id, dropoff_zone_id, kind, "
        "bin, sum(n) AS n FROM cells GROUP BY ALL"
    )
    _windowed_medians(con, "pair_window", pair, [TRIP, DISTANCE, DURATION], settings.window_days)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cells_pair_hour_window AS SELECT pickup_date, pickup_zone_id, dropoff_zone_id, "
        f"bucket, kind, bin, n FROM cells WHERE kind = {DURATION}"
    )
    _windowed_medians(con, "pair_hour_window", [*pair, "bucket"], [DURATION], settings.window_days)

    def median(k: int) -> str:
        return f"({_value(f'lo_{k}', settings)} + {_value(f'hi_{k}', settings)}) / 2"

    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE pair_stats AS
        SELECT pickup_zone_id, dropoff_zone_id, n_{TRIP} AS pair_trips,
               {median(DISTANCE)} AS pair_median_distance, {median(DURATION)} AS pair_median_duration,
               pickup_date AS stats_date
        FROM pair_window WHERE n_{TRIP} > 0
    """)  # fmt: skip
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE pair_hour_stats AS
        SELECT pickup_date, pickup_zone_id, dropoff_zone_id, bucket, {median(DURATION)} AS pair_hour_median_duration
        FROM pair_hour_window WHERE lo_{DURATION} IS NOT NULL
    """)  # fmt: skip
    holiday_list = ", ".join(f"DATE '{day.isoformat()}'" for day in holidays)
    airports = ", ".join(str(z) for z in AIRPORT_ZONE_IDS)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE trip_features AS
        WITH counted AS (
            SELECT *, {bucket} AS bucket,
                   CASE WHEN pickup_zone_id IS NOT NULL THEN count(*) OVER (
                       PARTITION BY pickup_zone_id ORDER BY epoch_us(pickup_ts)
                       RANGE BETWEEN 3600000000 PRECEDING AND 1 PRECEDING) END AS pickup_zone_trips_prev_hour
            FROM g_trips
        )
        SELECT t.trip_key, t.pickup_ts, t.taxi_type, t.vendor_id, t.rate_code_id, t.passenger_count,
               CAST(hour(t.pickup_ts) AS INTEGER) AS pickup_hour,
               CAST(dayofweek(t.pickup_date) + 1 AS INTEGER) AS day_of_week,
               CAST(month(t.pickup_date) AS INTEGER) AS month,
               dayofweek(t.pickup_date) IN (0, 6) AS is_weekend,
               {f"t.pickup_date IN ({holiday_list})" if holidays else "false"} AS is_holiday,
               t.pickup_zone_id, t.dropoff_zone_id, t.pickup_borough, t.dropoff_borough,
               coalesce(t.pickup_zone_id IN ({airports}), false) AS pickup_is_airport,
               coalesce(t.dropoff_zone_id IN ({airports}), false) AS dropoff_is_airport,
               coalesce(p.pair_trips, 0) AS pair_trips, p.pair_median_distance, p.pair_median_duration,
               h.pair_hour_median_duration, t.pickup_zone_trips_prev_hour, t.trip_distance, t.duration_min,
               t.pickup_date
        FROM counted t
        LEFT JOIN pair_stats p ON p.stats_date = t.pickup_date AND p.pickup_zone_id = t.pickup_zone_id
                              AND p.dropoff_zone_id = t.dropoff_zone_id
        LEFT JOIN pair_hour_stats h ON h.pickup_date = t.pickup_date AND h.pickup_zone_id = t.pickup_zone_id
                                   AND h.dropoff_zone_id = t.dropoff_zone_id AND h.bucket = t.bucket
    """)  # fmt: skip


def _exact(column: str) -> str:
    """A sum that is the same in any order of addition: of the values rounded to 6 decimals."""
    return f"CAST(sum(CAST({column} AS DECIMAL(18, 6))) AS DOUBLE)"


# The compared aggregates per gold table, as SQL over the table: the same text runs on DuckDB and on Spark. Sums of
# doubles (ROUNDED) depend on the order of addition: equal within a cent; the rest must be equal (exact decimal sums).
SUMS = {
    "zone_daily": {
        "rows": "count(*)", "trips": "sum(trips)", "revenue": "round(sum(revenue), 2)", "tips": "round(sum(tips), 2)",
        "total_distance": "round(sum(total_distance), 4)", "trip_minutes": "round(sum(avg_duration_min * trips), 3)",
        "with_speed": "count(avg_speed_mph)", "speed": "round(sum(avg_speed_mph), 2)",
    },
    "hourly_demand": {"rows": "count(*)", "trips": "sum(trips)", "hours": "sum(pickup_hour * trips)"},
    "pair_stats": {
        "rows": "count(*)", "pair_trips": "sum(pair_trips)", "median_distance": _exact("pair_median_distance"),
        "median_duration": _exact("pair_median_duration"), "with_distance": "count(pair_median_distance)",
    },
    "trip_features": {
        "rows": "count(*)", "pair_trips": "sum(pair_trips)", "prev_hour": "sum(pickup_zone_trips_prev_hour)",
        "median_distance": _exact("pair_median_distance"), "median_duration": _exact("pair_median_duration"),
        "with_median_distance": "count(pair_median_distance)", "with_median_duration": "count(pair_median_duration)",
        "hour_median": _exact("pair_hour_median_duration"), "with_hour_median": "count(pair_hour_median_duration)",
        "holidays": "sum(CASE WHEN is_holiday THEN 1 ELSE 0 END)",
        "weekend": "sum(CASE WHEN is_weekend THEN 1 ELSE 0 END)",
        "pickup_airports": "sum(CASE WHEN pickup_is_airport THEN 1 ELSE 0 END)",
        "dropoff_airports": "sum(CASE WHEN dropoff_is_airport THEN 1 ELSE 0 END)",
        "calendar": "sum(day_of_week * 100 + month + pickup_hour * 10000)", "minutes": _exact("duration_min"),
        "keys": "count(DISTINCT trip_key)", "first_key": "min(trip_key)", "last_key": "max(trip_key)",
    },
}  # fmt: skip


def gold_sums(fetch_one: Callable[[str], Sequence]) -> dict[str, dict[str, int | float]]:
    """Each gold table's compared aggregates; `fetch_one` runs a query on the engine (tables named as in TABLES)
    and returns its one row. Integers and text stay as they are, decimals become floats."""
    sums = {}
    for table, columns in SUMS.items():
        row = fetch_one(f"SELECT {', '.join(f'{expr} AS {name}' for name, expr in columns.items())} FROM {table}")
        sums[table] = {n: 0 if v is None else v if isinstance(v, int | str) else float(v) for n, v in zip(columns, row)}
    return sums
