"""What every run records about a fit: parameters, the split, metrics, importances and plots."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow

from pipelines.train.fit import Fitted
from pipelines.train.model import params_hash
from pipelines.train.plots import all_plots
from pipelines.train.tracking import PARAMS_ARTIFACT


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested model parameters as MLflow params: {"regressor.params.maxIter": "20", ...}."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return flat


def split_tags(fitted: Fitted) -> dict[str, str]:
    return {
        "split.train_from": str(fitted.split.train_min),
        "split.test_from": str(fitted.split.test_from),
        "split.test_to": str(fitted.split.test_max),
    }


def log_fitted(fitted: Fitted, params: dict[str, Any]) -> None:
    """Metrics, parameters, the split and the diagnostic plots of one fit, into the active run."""
    mlflow.log_params(flatten(params))
    mlflow.log_dict(params, PARAMS_ARTIFACT)
    mlflow.set_tags({**split_tags(fitted), "params_hash": params_hash(params)})
    mlflow.log_metrics(fitted.run_metrics)
    mlflow.log_dict(fitted.importances, "feature_importances.json")
    with tempfile.TemporaryDirectory() as folder:
        for plot in all_plots(fitted.predictions, fitted.importances, params, Path(folder)):
            mlflow.log_artifact(str(plot), artifact_path="plots")
