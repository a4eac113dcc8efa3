"""`lake train --tune`: a grid over the regressor's parameters, judged on a time-ordered validation window.

MLlib's TrainValidationSplit and CrossValidator split rows at random (or by a fold column used symmetrically),
which would train on days after the validation days. So the split is ours: candidates train on every in-bounds
day before the validation window (the last tuning.validation_days days before the first test window) and are
judged on it; test windows are never seen by tuning. The grid and the fits are MLlib's (ParamGridBuilder,
Estimator.fitMultiple); the preparation is fitted and the assembled frames cached once for all candidates.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.ml.tuning import ParamGridBuilder
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake.errors import ConfigError, StageError
from pipelines.train.evaluate import regression_metrics
from pipelines.train.model import (
    FEATURES_COL,
    back_transform,
    build_regressor,
    fit_preparation,
    target_column,
)
from pipelines.train.params import ModelParams
from pipelines.train.windows import stable, train_rows

SELECTION_METRIC = "rmse"  # the champion decision compares RMSE too


@dataclass(frozen=True)
class Candidate:
    """One grid point, its validation metrics and fit time."""

    number: int
    overrides: dict[str, Any]
    metrics: dict[str, float]
    fit_seconds: float


@dataclass(frozen=True)
class Tuned:
    """The tuning outcome: the winner's parameters and every candidate, with the validation window used."""

    params: ModelParams
    winner: Candidate
    candidates: list[Candidate]
    validation_from: dt.date
    validation_to: dt.date
    fit_rows: int
    validation_rows: int


def param_grid(params: ModelParams, regressor: Any) -> list[dict]:
    """MLlib param maps from tuning.grid (names of the regressor's parameters, e.g. maxDepth: [5, 7])."""
    if not params.tuning.grid:
        raise ConfigError("model parameters: tuning.grid is empty; add e.g. maxDepth: [5, 7] to tune")
    builder = ParamGridBuilder()
    for name, values in params.tuning.grid:
        if not regressor.hasParam(name):
            raise ConfigError(f"model parameters: tuning.grid.{name} is not a parameter of {params.regressor_type}")
        builder = builder.addGrid(regressor.getParam(name), list(values))
    return builder.build()


def tune(
    rows: DataFrame, first_test_day: dt.date, params: ModelParams, on_candidate: Callable[[Candidate], None]
) -> Tuned:
    """Fits every grid point on the days before the validation window and keeps the lowest validation RMSE."""
    validation_to = first_test_day - dt.timedelta(days=1)
    validation_from = first_test_day - dt.timedelta(days=params.tuning.validation_days)
    fit_part = train_rows(rows, params, before=validation_from).persist()
    in_validation = F.col("pickup_date").between(F.lit(validation_from), F.lit(validation_to))
    validation = stable(rows.where(in_validation), params).persist()
    assembled = None
    try:
        fit_count, validation_count = fit_part.count(), validation.count()
        if fit_count < params.split.min_train_rows or validation_count == 0:
            raise StageError(
                f"tuning needs rows before and in the validation window {validation_from}..{validation_to} "
                f"(tuning.validation_days={params.tuning.validation_days}): {fit_count} train, "
                f"{validation_count} validation row(s); at least split.min_train_rows={params.split.min_train_rows}"
                " train rows and one validation row needed"
            )
        preparation = fit_preparation(fit_part, params)
        assembled = preparation.transform(fit_part).select(FEATURES_COL, target_column(params)).persist()
        validation_vectors = preparation.transform(validation).select(FEATURES_COL, params.label).persist()
        regressor = build_regressor(params)
        grid = param_grid(params, regressor)
        candidates = []
        fits = regressor.fitMultiple(assembled, grid)
        for _ in grid:
            started = time.perf_counter()
            number, model = next(fits)
            seconds = time.perf_counter() - started
            predictions = PipelineModel(stages=[model, *back_transform(params)]).transform(validation_vectors)
            overrides = {param.name: value for param, value in grid[number].items()}
            candidate = Candidate(number, overrides, regression_metrics(predictions, params.label), seconds)
            on_candidate(candidate)
            candidates.append(candidate)
        validation_vectors.unpersist()
    finally:
        for frame in (fit_part, validation, assembled):
            if frame is not None:
                frame.unpersist()
    winner = min(candidates, key=lambda c: (c.metrics[SELECTION_METRIC], c.number))
    return Tuned(
        params.with_regressor(**winner.overrides),
        winner,
        sorted(candidates, key=lambda c: c.number),
        validation_from,
        validation_to,
        fit_count,
        validation_count,
    )
