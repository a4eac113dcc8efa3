"""Shared by the model tests: a deterministic, realistic gold.trip_features generator and small model parameters."""

from __future__ import annotations

import copy
import datetime as dt
import random
from pathlib import Path

import yaml
from pyspark.sql import DataFrame, SparkSession

from lake import Lake, load_conf
from lake.config import DEFAULT_CONF_DIR
from pipelines.schemas import TRIP_FEATURES

# A few real taxi zones: (zone id, borough, airport?) and a travel time scale between boroughs (minutes).
ZONES = [
    (132, "Queens", True),
    (138, "Queens", True),
    (161, "Manhattan", False),
    (162, "Manhattan", False),
    (230, "Manhattan", False),
    (236, "Manhattan", False),
    (237, "Manhattan", False),
    (48, "Manhattan", False),
    (79, "Manhattan", False),
    (181, "Brooklyn", False),
    (255, "Brooklyn", False),
    (7, "Queens", False),
]
BOROUGH_MINUTES = {"Manhattan": 0.0, "Brooklyn": 9.0, "Queens": 14.0}
RUSH_HOURS = {7, 8, 9, 16, 17, 18, 19}


def trip_rows(start: dt.date, days: int, per_day: int, seed: int, key_prefix: str) -> list[tuple]:
    """Trips whose duration depends on the zone pair, the boroughs, rush hour and the weekend, plus noise."""
    rng = random.Random(seed)
    rows = []
    for day_offset in range(days):
        day = start + dt.timedelta(days=day_offset)
        day_of_week = (day.isoweekday() % 7) + 1  # Spark: 1 = Sunday
        weekend = day_of_week in (1, 7)
        for number in range(per_day):
            (pu, pu_borough, pu_airport), (do, do_borough, do_airport) = rng.choice(ZONES), rng.choice(ZONES)
            hour = rng.randrange(24)
            pair_minutes = 6.0 + abs(pu - do) % 17 + BOROUGH_MINUTES[pu_borough] + BOROUGH_MINUTES[do_borough]
            slowdown = 1.35 if hour in RUSH_HOURS and not weekend else 1.0
            duration = max(1.0, pair_minutes * slowdown + rng.gauss(0, 2.5))
            has_history = rng.random() > 0.1
            rows.append(
                (
                    f"{key_prefix}-{day.isoformat()}-{number:04d}",
                    dt.datetime.combine(day, dt.time(hour, rng.randrange(60))),
                    "yellow",
                    rng.choice([1, 2]),
                    1,
                    rng.choice([1, 1, 1, 2, 3, None]),
                    hour,
                    day_of_week,
                    day.month,
                    weekend,
                    False,
                    pu,
                    do,
                    pu_borough,
                    do_borough,
                    pu_airport,
                    do_airport,
                    rng.randrange(5, 60) if has_history else 0,
                    round(pair_minutes / 3.0, 2) if has_history else None,
                    round(pair_minutes + rng.gauss(0, 1.0), 2) if has_history else None,
                    round(pair_minutes * slowdown + rng.gauss(0, 1.0), 2) if has_history else None,
                    rng.randrange(0, 12),
                    round(pair_minutes / 3.0 + rng.gauss(0, 0.3), 2),
                    round(duration, 3),
                    day,
                )
            )
    return rows


def synthetic_features(
    spark: SparkSession, start: dt.date, days: int, per_day: int, seed: int, key_prefix: str = "t"
) -> DataFrame:
    return spark.createDataFrame(trip_rows(start, days, per_day, seed, key_prefix), TRIP_FEATURES)


def write_params(folder: Path, **changes: dict) -> Path:
    """conf/model.yaml with tiny-model settings for tests (two 7-day windows, a 2-point grid), then `changes`
    merged into its top-level sections (a non-dict value replaces the section)."""
    params = yaml.safe_load((DEFAULT_CONF_DIR / "model.yaml").read_text())
    params["regressor"]["params"].update({"maxIter": 3, "maxDepth": 3, "maxBins": 32, "stepSize": 0.3})
    params["split"] = {"windows": 2, "window": "days", "test_days": 7, "min_train_rows": 100, "min_test_rows": 30}
    params["tuning"] = {"validation_days": 5, "grid": {"maxDepth": [2, 3]}}
    params["plots"]["sample_rows"] = 200
    for section, values in changes.items():
        if isinstance(values, dict):
            params[section] = {**copy.deepcopy(params.get(section) or {}), **values}
        else:
            params[section] = values
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def make_lake(spark: SparkSession, root: Path, params_path: Path) -> Lake:
    """A lake under root (its MLflow store too) reading the model parameters from params_path."""
    overrides = {"lake.root": str(root), "model.params": str(params_path), "mlflow.tracking_uri": None}
    return Lake(load_conf("test", overrides=overrides), spark)
