"""Diagnostic plots logged with each run: predicted vs actual, residuals by hour, feature importances."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and workers

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from pyspark.sql import DataFrame  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from pipelines.train.evaluate import clipped_prediction  # noqa: E402
from pipelines.train.params import ModelParams  # noqa: E402

DPI = 110


def predicted_vs_actual(predictions: DataFrame, label: str, sample_rows: int, seed: int, out: Path) -> Path:
    """Scatter of a random sample of test trips, with the y = x line."""
    total = predictions.count()
    fraction = min(1.0, sample_rows / total) if total else 1.0
    sample = (
        predictions.sample(fraction=fraction, seed=seed)
        .select(F.col(label).alias("actual"), clipped_prediction().alias("predicted"))
        .toPandas()
    )
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(sample["actual"], sample["predicted"], s=4, alpha=0.3)
    limit = float(max(sample["actual"].quantile(0.99), sample["predicted"].quantile(0.99), 1.0))
    ax.plot([0, limit], [0, limit], color="black", linewidth=1)
    ax.set(xlim=(0, limit), ylim=(0, limit), xlabel="actual duration (min)", ylabel="predicted duration (min)")
    ax.set_title(f"Test window: predicted vs actual ({len(sample):,} trips)")
    return _save(fig, out / "predicted_vs_actual.png")


def residuals_by_hour(predictions: DataFrame, label: str, out: Path) -> Path:
    """Mean and mean absolute residual (predicted - actual) per pickup hour."""
    residual = clipped_prediction() - F.col(label)
    by_hour = (
        predictions.groupBy("pickup_hour")
        .agg(F.avg(residual).alias("mean"), F.avg(F.abs(residual)).alias("mean_abs"))
        .orderBy("pickup_hour")
        .toPandas()
    )
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(by_hour["pickup_hour"], by_hour["mean_abs"], color="lightsteelblue", label="mean |residual|")
    ax.plot(by_hour["pickup_hour"], by_hour["mean"], color="darkred", marker="o", label="mean residual")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(xlabel="pickup hour", ylabel="minutes", title="Test window residuals by pickup hour")
    ax.legend()
    return _save(fig, out / "residuals_by_hour.png")


def feature_importances(importances: dict[str, float], out: Path) -> Path:
    """Horizontal bars of the tree ensemble's feature importances, largest on top."""
    ranked = sorted(importances.items(), key=lambda item: item[1])
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.35 * len(ranked))))
    ax.barh([name for name, _ in ranked], [value for _, value in ranked], color="seagreen")
    ax.set(xlabel="importance", title="Feature importances")
    return _save(fig, out / "feature_importances.png")


def all_plots(predictions: DataFrame, importances: dict[str, float], params: ModelParams, out: Path) -> list[Path]:
    """The plots of the last test window (and of the final model's importances, when there is one)."""
    plots = [predicted_vs_actual(predictions, params.label, params.plot_sample_rows, params.seed, out)]
    if "pickup_hour" in predictions.columns:
        plots.append(residuals_by_hour(predictions, params.label, out))
    if importances:
        plots.append(feature_importances(importances, out))
    return plots


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
