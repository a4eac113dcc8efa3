"""Model parameters (typed, frozen, checked), rolling-origin windows and label hygiene on tiny frames."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import yaml
from pyspark.sql import types as T

from lake.config import DEFAULT_CONF_DIR
from lake.errors import ConfigError, StageError
from pipelines.train import windows as train_windows
from pipelines.train.model import fit_preparation, frequent_categories
from pipelines.train.params import ModelParams
from pipelines.train.windows import Window, choose_windows, hygiene_counts, train_rows

D = dt.date
DAYS_SCHEMA = T.StructType([T.StructField("trip_key", T.StringType()), T.StructField("pickup_date", T.DateType())])
LABELS_SCHEMA = T.StructType(
    [
        T.StructField("trip_key", T.StringType()),
        T.StructField("pickup_date", T.DateType()),
        T.StructField("duration_min", T.DoubleType()),
    ]
)


def shipped() -> dict:
    return yaml.safe_load((DEFAULT_CONF_DIR / "model.yaml").read_text())


def params_with(**split) -> ModelParams:
    raw = shipped()
    raw["split"] = {**raw["split"], "min_test_rows": 2, **split}
    return ModelParams.from_dict(raw)


def days(spark, counts: dict[dt.date, int]):
    rows = [(f"{day}-{n}", day) for day, count in counts.items() for n in range(count)]
    return spark.createDataFrame(rows, DAYS_SCHEMA)


def test_shipped_parameters_are_typed_frozen_and_round_trip_through_their_logged_dict():
    params = ModelParams.from_dict(shipped())
    assert isinstance(params.categorical, tuple) and params.regressor_kwargs["maxBins"] == 270
    assert ModelParams.from_dict(params.to_dict()) == params and params.hash == ModelParams.from_dict(shipped()).hash
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.seed = 1
    tuned = params.with_regressor(maxDepth=9)
    assert tuned.regressor_kwargs["maxDepth"] == 9 and params.regressor_kwargs["maxDepth"] != 9
    assert tuned.hash != params.hash


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("regressor", {"type": "xgboost", "params": {}}, "regressor.type must be one of"),
        ("target", "sqrt", "target must be one of"),
        ("label_bounds", {"max_minutes": "three hours"}, "label_bounds.max_minutes must be a number"),
        ("tuning", {"grid": {"maxDepth": 5}}, "tuning.grid.maxDepth must be a non-empty list"),
        ("label", None, "label is required"),
    ],
)
def test_wrong_parameters_name_the_key(key, value, message):
    raw = shipped()
    raw[key] = value
    with pytest.raises(ConfigError, match=message):
        ModelParams.from_dict(raw, source="conf/model.yaml")


def test_month_windows_are_the_last_months_and_skip_months_too_small_to_test(spark):
    rows = days(spark, {D(2019, 1, 5): 3, D(2019, 2, 3): 3, D(2019, 3, 9): 3, D(2019, 4, 2): 2, D(2019, 5, 1): 1})
    windows = choose_windows(rows, params_with(windows=3, window="month"))
    assert windows == [
        Window(D(2019, 2, 1), D(2019, 2, 28)),
        Window(D(2019, 3, 1), D(2019, 3, 31)),
        Window(D(2019, 4, 1), D(2019, 4, 30)),
    ]  # May has 1 row < min_test_rows: not a window


def test_too_few_months_fall_back_to_day_windows_at_the_end(spark):
    rows = days(spark, {D(2019, 1, 1): 2, D(2019, 1, 20): 2, D(2019, 2, 10): 2})
    windows = choose_windows(rows, params_with(windows=3, window="month", test_days=7))
    assert windows == [
        Window(D(2019, 1, 21), D(2019, 1, 27)),
        Window(D(2019, 1, 28), D(2019, 2, 3)),
        Window(D(2019, 2, 4), D(2019, 2, 10)),
    ]


def test_test_from_starts_the_windows_and_no_window_before_the_first_day_is_an_error(spark):
    rows = days(spark, {D(2019, 1, 1): 2, D(2019, 1, 20): 2})
    windows = choose_windows(rows, params_with(window="days", test_days=7, test_from="2019-01-08"))
    assert windows == [Window(D(2019, 1, 8), D(2019, 1, 14)), Window(D(2019, 1, 15), D(2019, 1, 20))]
    with pytest.raises(StageError, match=r"pickup days 2019-01-01..2019-01-20: no test window fits"):
        choose_windows(rows, params_with(window="days", windows=1, test_days=30))


def test_labels_outside_the_bounds_are_counted_and_left_out_of_training(spark):
    labels = [
        ("a", D(2019, 1, 1), 0.5),
        ("b", D(2019, 1, 1), 1.0),
        ("c", D(2019, 1, 2), 30.0),
        ("d", D(2019, 1, 2), 180.0),
        ("e", D(2019, 1, 3), 181.0),
        ("f", D(2019, 1, 3), 12.0),
    ]
    rows = spark.createDataFrame(labels, LABELS_SCHEMA)
    raw = shipped()
    raw["label_bounds"] = {"min_minutes": 1, "max_minutes": 180}  # what ships, stated here
    params = ModelParams.from_dict(raw).resolved(2)
    assert hygiene_counts(rows, params) == {"rows": 6, "under_floor": 1, "over_cap": 1}
    kept = train_rows(rows, params, before=D(2019, 1, 3))
    assert sorted(r.trip_key for r in kept.collect()) == ["b", "c", "d"]
    raw["label_bounds"] = {"min_minutes": None, "max_minutes": None}
    unbounded = ModelParams.from_dict(raw).resolved(2)
    assert hygiene_counts(rows, unbounded) == {"rows": 6, "under_floor": 0, "over_cap": 0}
    assert train_rows(rows, unbounded).count() == 6


def test_categories_rarer_than_min_category_rows_join_unknown_in_the_fitted_preparation(spark):
    """Zone 7 has 3 training rows, zone 9 one and a null one: with min_category_rows 2, 9 and null become 'unknown'
    at fit time, and so does a zone the training rows never had (42) when the fitted model is applied."""
    schema = T.StructType([T.StructField("zone", T.IntegerType()), T.StructField("minutes", T.DoubleType())])
    train = spark.createDataFrame([(7, 1.0), (7, 2.0), (7, 3.0), (9, 4.0), (None, 5.0)], schema)
    raw = shipped()
    raw["features"] = {"categorical": ["zone"], "numeric": ["minutes"], "min_category_rows": 2}
    params = ModelParams.from_dict(raw)
    assert params.min_category_rows == 2 and ModelParams.from_dict(params.to_dict()) == params
    assert frequent_categories(train, params) == {"zone": ("7",)}
    serving = spark.createDataFrame([(7, 0.0), (9, 0.0), (42, 0.0), (None, 0.0)], schema)
    prepared = fit_preparation(train, params).transform(serving)
    assert [r.zone_cat for r in prepared.collect()] == ["7", "unknown", "unknown", "unknown"]
    raw["features"]["min_category_rows"] = 0  # the default keeps every category
    everything = ModelParams.from_dict(raw)
    assert frequent_categories(train, everything) is None
    assert [r.zone_cat for r in fit_preparation(train, everything).transform(serving).collect()] == [
        "7", "9", "42", "unknown"
    ]  # fmt: skip


def test_the_testing_dataset_holds_the_windows_days_and_not_a_skipped_month(spark):
    days = [D(2019, 1, 15), D(2019, 2, 15), D(2019, 3, 15), D(2019, 4, 15)]
    rows = spark.createDataFrame([(f"t{n}", day) for n, day in enumerate(days)], DAYS_SCHEMA)
    windows = [Window(D(2019, 2, 1), D(2019, 2, 28)), Window(D(2019, 4, 1), D(2019, 4, 30))]  # March: too few rows
    assert sorted(row.trip_key for row in train_windows.test_span(rows, windows).collect()) == ["t1", "t3"]
