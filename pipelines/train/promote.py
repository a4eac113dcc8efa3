"""The champion decision and registration.

The registered model is refitted on every labelled row, so no held-out data is left on which to compare it with
the champion model directly (the champion may have been fitted on the very windows we test on). What is compared
is the recipe: the champion's recorded parameters are refitted on this run's windows and rows, and the mean test
RMSE over the windows decides (the same aggregate the run reports). A tie goes to the new version, which has
seen the newest data. A version is registered only after the comparison succeeded, so a failed comparison never
leaves an orphan version; if moving the alias fails, the new version is deleted again.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame

from lake.errors import StageError, UserError
from pipelines.train.evaluate import MODEL
from pipelines.train.fit import Evaluation, evaluate_windows
from pipelines.train.params import ModelParams
from pipelines.train.tracking import (
    PARAMS_ARTIFACT,
    Tracking,
    champion_version,
    delete_version,
    register_version,
    set_champion,
)
from pipelines.train.windows import Window

DECISION_METRIC = "rmse_mean"


def champion_params(tracking: Tracking, run_id: str, version: str) -> ModelParams:
    """The resolved parameters the champion version was trained with (its run's model_params.json)."""
    run = tracking.client.get_run(run_id)
    raw = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/{PARAMS_ARTIFACT}")
    return ModelParams.from_dict(raw, source=f"champion version {version} (run {run_id}) {PARAMS_ARTIFACT}")


def champion_score(
    rows: DataFrame, windows: list[Window], params: ModelParams, evaluation: Evaluation, tracking: Tracking, current
) -> float:
    """The champion recipe's mean test RMSE over this run's windows; a StageError when it cannot be computed."""
    try:
        theirs = champion_params(tracking, current.run_id, str(current.version))
        if theirs.hash == params.hash:  # the same recipe on the same rows and windows: the same metrics
            return evaluation.summary[MODEL][DECISION_METRIC]
        refitted = evaluate_windows(rows, windows, theirs, keep_predictions=False, baselines=False)
        return refitted.summary[MODEL][DECISION_METRIC]
    except (MlflowException, OSError, AnalysisException, UserError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StageError(
            f"cannot compare with champion version {current.version} of {tracking.model_name}: {first_line}; "
            "no new version was registered"
        ) from exc


def decide_and_register(
    tracking: Tracking,
    model_uri: str,
    new_score: float,
    promote: bool,
    score_champion,
) -> dict[str, Any]:
    """Decides, then registers the logged model, then moves the alias; records the decision in the active run."""
    current = champion_version(tracking)
    details: dict[str, Any] = {}
    if current is None:
        promoted, reason = True, "first registered model: became champion"
    elif not promote:
        promoted, reason = False, f"champion stays version {current.version} (--promote not given)"
    else:
        champion = score_champion(current)
        mlflow.log_metric(f"champion_test_{DECISION_METRIC}", champion)
        mlflow.set_tag("champion.compared_version", str(current.version))
        promoted = new_score <= champion
        details["champion_rmse_mean"] = champion
        reason = (
            f"mean test RMSE over the windows {new_score:.4f} vs champion version {current.version}'s recipe "
            f"{champion:.4f} on the same windows: {'promoted' if promoted else 'not better, champion kept'}"
        )
    version = register_version(tracking, model_uri)
    if promoted:
        try:
            set_champion(tracking, version)
        except Exception:
            delete_version(tracking, version)
            raise
    mlflow.set_tags({"champion.promoted": str(promoted).lower(), "champion.reason": reason})
    return {"model_version": version, "promoted": promoted, "reason": reason, **details}
