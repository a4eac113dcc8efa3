"""Fitting: the servable model on a training frame, and the rolling-origin evaluation of a parameter set.

The feature preparation is fitted once per training frame and the assembled (features, target) frame is cached,
so the tree ensemble's many passes read vectors from memory instead of recomputing the features each pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from pipelines.train.evaluate import MODEL, Results, aggregate, baseline_results, flat_metrics, regression_metrics
from pipelines.train.model import (
    FEATURES_COL,
    PREDICTION_COL,
    build_regressor,
    fit_preparation,
    regressor_stage,
    servable,
    target_column,
    vector_feature_names,
)
from pipelines.train.params import ModelParams
from pipelines.train.windows import ORDER_KEY, Window, check_window_sizes, test_rows, train_rows


@dataclass
class FitResult:
    """A fitted servable model, the rows it was fitted on and how long the fit took (preparation included)."""

    model: PipelineModel
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def importances(self, params: ModelParams) -> dict[str, float]:
        weights = regressor_stage(self.model).featureImportances.toArray().tolist()
        return dict(zip(vector_feature_names(params), weights, strict=True))


def fit_servable(train: DataFrame, params: ModelParams) -> FitResult:
    """Fits the preparation, caches the assembled frame once, fits the tree regressor on it."""
    started = time.perf_counter()
    preparation = fit_preparation(train, params)
    assembled = preparation.transform(train).select(FEATURES_COL, target_column(params)).persist()
    try:
        rows = assembled.count()
        regressor = build_regressor(params).fit(assembled)
    finally:
        assembled.unpersist()
    return FitResult(servable(preparation, regressor, params), rows, time.perf_counter() - started)


@dataclass
class WindowResult:
    """One rolling-origin fold: its rows, fit time, and the test metrics of the model and the baselines."""

    window: Window
    train_rows: int
    test_rows: int
    fit_seconds: float
    results: Results


@dataclass
class Evaluation:
    """The rolling-origin evaluation of one parameter set; `predictions` are the last window's (persisted)."""

    windows: list[WindowResult]
    predictions: DataFrame | None = None
    extra_counts: dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> Results:
        """Mean and worst over the windows, per approach."""
        return aggregate([w.results for w in self.windows])

    @property
    def metrics(self) -> dict[str, float]:
        """The deterministic metrics (aggregates and per window): what a reproduction must match."""
        return flat_metrics([w.results for w in self.windows])

    @property
    def fit_rows(self) -> int:
        return sum(w.train_rows for w in self.windows)

    @property
    def test_rows(self) -> int:
        """Rows tested over all windows (they never overlap): the rows of test_span."""
        return sum(w.test_rows for w in self.windows)

    @property
    def fit_seconds(self) -> float:
        return sum(w.fit_seconds for w in self.windows)

    def release(self) -> None:
        if self.predictions is not None:
            self.predictions.unpersist()


def evaluate_window(
    rows: DataFrame, window: Window, params: ModelParams, keep_predictions: bool = False, baselines: bool = True
) -> tuple[WindowResult, DataFrame | None]:
    """Fits on every in-bounds row before the window and measures the model (and the baselines) on the window."""
    train = train_rows(rows, params, before=window.test_from).persist()
    test = test_rows(rows, params, window).persist()
    predictions = None
    try:
        train_count, test_count = train.count(), test.count()
        check_window_sizes(window, params, train_count, test_count)
        fitted = fit_servable(train, params)
        columns = [ORDER_KEY, "pickup_date", params.label, PREDICTION_COL]
        columns += ["pickup_hour"] if "pickup_hour" in test.columns else []
        predictions = fitted.model.transform(test).select(*columns).persist()
        results = {MODEL: regression_metrics(predictions, params.label)}
        if baselines:
            results.update(baseline_results(train, test, params))
    finally:
        train.unpersist()
        test.unpersist()
    if not keep_predictions:
        predictions.unpersist()
        predictions = None
    return WindowResult(window, train_count, test_count, fitted.seconds, results), predictions


def evaluate_windows(
    rows: DataFrame, windows: list[Window], params: ModelParams, keep_predictions: bool = True, baselines: bool = True
) -> Evaluation:
    """The rolling-origin evaluation: one fit and test per window, oldest first."""
    results, predictions = [], None
    for number, window in enumerate(windows):
        is_last = number == len(windows) - 1
        result, kept = evaluate_window(rows, window, params, keep_predictions and is_last, baselines)
        results.append(result)
        predictions = kept if kept is not None else predictions
    return Evaluation(results, predictions)


def fit_final(rows: DataFrame, params: ModelParams) -> FitResult:
    """The model that is logged and registered: fitted on every in-bounds labelled row of the table version."""
    train = train_rows(rows, params).persist()
    try:
        return fit_servable(train, params)
    finally:
        train.unpersist()
