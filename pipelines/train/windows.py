"""Rolling-origin windows over pickup days, label hygiene, and the stable frames each fit reads.

A window trains on every labelled day before test_from and tests on test_from..test_to: the last N calendar
months by default (train up to month m, test month m+1), or N windows of test_days days when the data holds too
few months. Never a random split across time.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake.errors import StageError
from pipelines.train.model import FEATURES_TABLE
from pipelines.train.params import ModelParams

# Rows are hash-partitioned and sorted by this key before fitting, so a re-run sees the same rows in the same order.
ORDER_KEY = "trip_key"
# Read whatever the feature list: the zone-pair baseline groups by the pair, the residual plot by the hour.
EVALUATION_COLUMNS = ("pickup_zone_id", "dropoff_zone_id", "pickup_hour")


@dataclass(frozen=True)
class Window:
    """One fold: train on pickup_date < test_from, test on test_from <= pickup_date <= test_to."""

    test_from: dt.date
    test_to: dt.date

    @property
    def name(self) -> str:
        return f"{self.test_from}..{self.test_to}"


def windows_tag(windows: list[Window]) -> str:
    """The windows as an MLflow tag value (read back by --reproduce)."""
    return json.dumps([[str(w.test_from), str(w.test_to)] for w in windows])


def windows_from_tag(value: str) -> list[Window]:
    return [Window(dt.date.fromisoformat(start), dt.date.fromisoformat(end)) for start, end in json.loads(value)]


def labelled(features: DataFrame, params: ModelParams) -> DataFrame:
    """Rows with a label, reduced to the columns a fit, the baselines and the plots read."""
    columns = [ORDER_KEY, "pickup_date", params.label, *EVALUATION_COLUMNS, *params.features]
    return features.where(F.col(params.label).isNotNull()).select(*dict.fromkeys(columns))


def in_bounds(params: ModelParams) -> F.Column:
    """True for a label inside the configured [min_minutes, max_minutes] (label hygiene)."""
    label, bounds = F.col(params.label), params.label_bounds
    inside = F.lit(True)
    if bounds.min_minutes is not None:
        inside = inside & (label >= F.lit(bounds.min_minutes))
    if bounds.max_minutes is not None:
        inside = inside & (label <= F.lit(bounds.max_minutes))
    return inside


def hygiene_counts(rows: DataFrame, params: ModelParams) -> dict[str, int]:
    """How many labelled rows the bounds leave out, below the floor and over the cap (one pass)."""
    label, bounds = F.col(params.label), params.label_bounds
    under = label < F.lit(bounds.min_minutes) if bounds.min_minutes is not None else F.lit(False)
    over = label > F.lit(bounds.max_minutes) if bounds.max_minutes is not None else F.lit(False)
    row = rows.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count(F.when(under, 1)).alias("under_floor"),
        F.count(F.when(over, 1)).alias("over_cap"),
    ).first()
    return {"rows": row["rows"], "under_floor": row["under_floor"], "over_cap": row["over_cap"]}


def stable(frame: DataFrame, params: ModelParams) -> DataFrame:
    """The same rows in the same partitions in the same order, whatever order the table's files were listed in:
    the trees sample rows per partition to find split candidates, so partitioning must depend on the data only
    (a range sort's boundaries depend on the input order; a hash repartition's do not)."""
    return frame.repartition(params.fit_partitions, ORDER_KEY).sortWithinPartitions(ORDER_KEY)


def train_rows(rows: DataFrame, params: ModelParams, before: dt.date | None = None) -> DataFrame:
    """Training rows: labels inside the bounds, pickup days before `before` (all days when None)."""
    kept = rows.where(in_bounds(params))
    if before is not None:
        kept = kept.where(F.col("pickup_date") < F.lit(before))
    return stable(kept, params)


def test_rows(rows: DataFrame, params: ModelParams, window: Window) -> DataFrame:
    """Every labelled row of the window's days: test metrics include labels outside the training bounds."""
    return stable(rows.where(F.col("pickup_date").between(F.lit(window.test_from), F.lit(window.test_to))), params)


def test_span(rows: DataFrame, windows: list[Window]) -> DataFrame:
    """Every row some window tests on (the run's "testing" dataset); month windows may skip a month too small to test
    on, and the windows never overlap, so its rows are the windows' test rows."""
    day = F.col("pickup_date")
    return rows.where(reduce(operator.or_, [day.between(F.lit(w.test_from), F.lit(w.test_to)) for w in windows]))


def _month_end(day: dt.date) -> dt.date:
    following = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


def choose_windows(rows: DataFrame, params: ModelParams) -> list[Window]:
    """The evaluation windows for these labelled rows (see the module docstring); a StageError when none fit."""
    split = params.split
    months = (
        rows.groupBy(F.trunc("pickup_date", "month").alias("month"))
        .agg(F.count(F.lit(1)).alias("rows"), F.min("pickup_date").alias("first"), F.max("pickup_date").alias("last"))
        .orderBy("month")
        .collect()  # one row per calendar month
    )
    if not months:
        raise StageError(f"{FEATURES_TABLE} has no labelled rows: nothing to train on (run `lake gold` first)")
    first, last = months[0]["first"], max(m["last"] for m in months)
    if split.test_from is not None:
        windows = _windows_from(split.test_from, last, split.window, split.test_days)
    elif split.window == "month":
        eligible = [m for m in months[1:] if m["rows"] >= split.min_test_rows]
        windows = [Window(m["month"], min(_month_end(m["month"]), last)) for m in eligible[-split.windows :]]
        if len(windows) < split.windows:  # too few months: day windows at the end of the data instead
            windows = _last_day_windows(last, split.windows, split.test_days)
    else:
        windows = _last_day_windows(last, split.windows, split.test_days)
    windows = [w for w in windows if w.test_from > first]
    if not windows:
        raise StageError(
            f"{FEATURES_TABLE} holds pickup days {first}..{last}: no test window fits after the first day "
            f"(split.windows={split.windows}, split.window={split.window}, split.test_days={split.test_days})"
        )
    return windows


def _windows_from(start: dt.date, last: dt.date, unit: str, days: int) -> list[Window]:
    windows, test_from = [], start
    while test_from <= last:
        test_to = _month_end(test_from) if unit == "month" else test_from + dt.timedelta(days=days - 1)
        windows.append(Window(test_from, min(test_to, last)))
        test_from = min(test_to, last) + dt.timedelta(days=1)
    return windows


def _last_day_windows(last: dt.date, count: int, days: int) -> list[Window]:
    starts = [last - dt.timedelta(days=days * k - 1) for k in range(count, 0, -1)]
    return [Window(start, start + dt.timedelta(days=days - 1)) for start in starts]


def check_window_sizes(window: Window, params: ModelParams, train_count: int, test_count: int) -> None:
    """Too few rows on either side of a window is an error that names the window and the setting."""
    for name, count, minimum, where in (
        ("train", train_count, "min_train_rows", f"pickup_date < {window.test_from}"),
        ("test", test_count, "min_test_rows", f"{window.test_from} <= pickup_date <= {window.test_to}"),
    ):
        needed = getattr(params.split, minimum)
        if count < needed:
            raise StageError(
                f"{name} window ({where}) has {count} labelled row(s) of {FEATURES_TABLE}; at least {needed} "
                f"needed (split.{minimum} in the model parameters)"
            )
