"""One training pass: split, fit the model, evaluate it and its baselines. Shared by training and reproduction."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from pipelines.common import StageError
from pipelines.train.evaluate import evaluate_all, flat_metrics
from pipelines.train.model import (
    Split,
    build_model_pipeline,
    check_window_sizes,
    split_frames,
    vector_feature_names,
)


@dataclass
class Fitted:
    """A fitted model with everything measured about it."""

    model: PipelineModel
    split: Split
    train: DataFrame
    test: DataFrame
    train_rows: int
    test_rows: int
    train_seconds: float
    results: dict[str, dict[str, float]]
    predictions: DataFrame
    importances: dict[str, float]

    @property
    def metrics(self) -> dict[str, float]:
        """The deterministic metrics (test window, model and baselines): what a reproduction must match."""
        return flat_metrics(self.results)

    @property
    def run_metrics(self) -> dict[str, float]:
        """Everything logged as an MLflow metric, including row counts and timing."""
        return {
            **self.metrics,
            "train_rows": float(self.train_rows),
            "test_rows": float(self.test_rows),
            "train_seconds": self.train_seconds,
            "train_rows_per_second": self.train_rows / self.train_seconds if self.train_seconds else 0.0,
        }

    def release(self) -> None:
        for frame in (self.train, self.test, self.predictions):
            frame.unpersist()


def fit_and_evaluate(features: DataFrame, split: Split, params: dict[str, Any]) -> Fitted:
    """Fits the configured pipeline on the train window and evaluates it and the baselines on the test window."""
    train, test = split_frames(features, split, params)
    train, test = train.persist(), test.persist()
    train_rows, test_rows = train.count(), test.count()
    try:
        check_window_sizes(split, params, train_rows, test_rows)
    except StageError:
        train.unpersist()
        test.unpersist()
        raise
    started = time.perf_counter()
    model = build_model_pipeline(params).fit(train)
    train_seconds = time.perf_counter() - started
    results, predictions = evaluate_all(model, train, test, params)
    weights = model.stages[-1].featureImportances.toArray().tolist()
    importances = dict(zip(vector_feature_names(params), weights, strict=True))
    return Fitted(model, split, train, test, train_rows, test_rows, train_seconds, results, predictions, importances)
