"""What every run records (training and reproduction alike): parameters, windows, metrics, label hygiene,
importances and plots; and one nested run per tuning candidate."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow

from pipelines.train.evaluate import APPROACHES
from pipelines.train.fit import Evaluation, FitResult
from pipelines.train.params import ModelParams
from pipelines.train.plots import all_plots
from pipelines.train.tracking import PARAMS_ARTIFACT
from pipelines.train.tune import Candidate, Tuned
from pipelines.train.windows import windows_tag

EVALUATION_ARTIFACT = "evaluation.json"
WINDOWS_TAG = "split.windows"


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


def evaluation_table(evaluation: Evaluation) -> list[dict[str, Any]]:
    """One row per window and approach: the evaluation.json artifact."""
    return [
        {
            "window": w.window.name,
            "train_rows": w.train_rows,
            "test_rows": w.test_rows,
            "approach": approach,
            **w.results[approach],
        }
        for w in evaluation.windows
        for approach in APPROACHES
        if approach in w.results
    ]


def run_metrics(evaluation: Evaluation, hygiene: dict[str, int], final: FitResult | None) -> dict[str, float]:
    """Every metric of a run: test metrics, row counts, label hygiene, fit times and throughput."""
    metrics = dict(evaluation.metrics)
    for number, window in enumerate(evaluation.windows, start=1):
        metrics[f"window{number}_train_rows"] = float(window.train_rows)
        metrics[f"window{number}_test_rows"] = float(window.test_rows)
        metrics[f"window{number}_fit_seconds"] = window.fit_seconds
    metrics["windows"] = float(len(evaluation.windows))
    metrics["labelled_rows"] = float(hygiene["rows"])
    metrics["excluded_under_floor_rows"] = float(hygiene["under_floor"])
    metrics["excluded_over_cap_rows"] = float(hygiene["over_cap"])
    if final is not None:
        metrics["train_rows"] = float(final.rows)
        metrics["train_seconds"] = final.seconds
        metrics["train_rows_per_second"] = final.rows_per_second
    return metrics


def log_run(
    evaluation: Evaluation, params: ModelParams, hygiene: dict[str, int], final: FitResult | None = None
) -> None:
    """Parameters, windows, metrics, the evaluation table, importances and plots of one run, into the active run."""
    resolved = params.to_dict()
    mlflow.log_params(flatten(resolved))
    mlflow.log_dict(resolved, PARAMS_ARTIFACT)
    windows = [w.window for w in evaluation.windows]
    first_day = str(windows[0].test_from)
    mlflow.set_tags({WINDOWS_TAG: windows_tag(windows), "split.first_test_day": first_day, "params_hash": params.hash})
    mlflow.log_metrics(run_metrics(evaluation, hygiene, final))
    mlflow.log_dict({"windows": evaluation_table(evaluation)}, EVALUATION_ARTIFACT)
    importances = final.importances(params) if final is not None else {}
    if importances:
        mlflow.log_dict(importances, "feature_importances.json")
    if evaluation.predictions is None:
        return
    with tempfile.TemporaryDirectory() as folder:
        for plot in all_plots(evaluation.predictions, importances, params, Path(folder)):
            mlflow.log_artifact(str(plot), artifact_path="plots")


def log_candidate(candidate: Candidate) -> None:
    """One tuning candidate as a nested run of the active run: its grid values and validation metrics."""
    experiment_id = mlflow.active_run().info.experiment_id  # a nested run does not inherit its parent's experiment
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"candidate-{candidate.number}", nested=True):
        mlflow.log_params({f"regressor.params.{name}": value for name, value in candidate.overrides.items()})
        mlflow.log_metrics({f"validation_{name}": value for name, value in candidate.metrics.items()})
        mlflow.log_metric("fit_seconds", candidate.fit_seconds)


def log_tuning(tuned: Tuned) -> None:
    """The tuning outcome on the parent run: the validation window, the winner and its validation metrics."""
    mlflow.set_tags(
        {
            "tuning.validation_window": f"{tuned.validation_from}..{tuned.validation_to}",
            "tuning.winner": str(tuned.winner.overrides),
            "tuning.candidates": str(len(tuned.candidates)),
        }
    )
    mlflow.log_metrics({f"tuning_validation_{name}": value for name, value in tuned.winner.metrics.items()})
    mlflow.log_metrics({"tuning_fit_rows": tuned.fit_rows, "tuning_validation_rows": tuned.validation_rows})
