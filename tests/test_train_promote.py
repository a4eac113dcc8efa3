"""`lake train --promote`: a better recipe moves the champion, a worse one does not, and a failed comparison or
alias move leaves no orphan registered version."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pytest
from test_train_support import make_lake, synthetic_features, write_params

from pipelines.common import StageError
from pipelines.train import promote as promote_module
from pipelines.train import run_train
from pipelines.train.model import FEATURES_TABLE
from pipelines.train.promote import decide_and_register
from pipelines.train.tracking import CHAMPION, PARAMS_ARTIFACT, open_tracking

START = dt.date(2019, 5, 1)
WEAK = {"type": "gbt", "params": {"maxIter": 1, "maxDepth": 1, "maxBins": 32}}


@pytest.fixture(scope="module")
def promotions(spark, tmp_path_factory):
    """A weak first champion, then a stronger recipe with --promote, then the weak recipe again with --promote."""
    root = tmp_path_factory.mktemp("promote")
    one_window = {"windows": 1}
    # target identity here (the shipped log1p is what test_train and test_train_real run): both targets fit and promote
    weak_params = write_params(root / "weak", regressor=WEAK, split=one_window, target="identity")
    weak = make_lake(spark, root / "lake", weak_params)
    strong = make_lake(spark, root / "lake", write_params(root / "strong", split=one_window, target="identity"))
    weak.append(FEATURES_TABLE, synthetic_features(spark, START, 20, 30, seed=21))
    first = run_train(weak)
    better = run_train(strong, promote=True)
    worse = run_train(weak, promote=True)
    return strong, open_tracking(strong), first, better, worse


def metrics_of(tracking, result) -> dict[str, float]:
    return tracking.client.get_run(result.details["mlflow_run_id"]).data.metrics


def champion_of(tracking) -> str:
    return str(tracking.client.get_model_version_by_alias(tracking.model_name, CHAMPION).version)


def versions_of(tracking) -> list[str]:
    return sorted(str(v.version) for v in tracking.client.search_model_versions(f"name='{tracking.model_name}'"))


def test_a_better_recipe_moves_the_champion(promotions):
    _, tracking, first, better, _ = promotions
    assert first.details["promoted"] is True
    assert better.details["promoted"] is True and better.details["model_version"] != first.details["model_version"]
    # the champion's recipe was refitted on the same window and rows: exactly the first run's own test RMSE
    champion_rmse = metrics_of(tracking, better)["champion_test_rmse_mean"]
    assert champion_rmse == pytest.approx(metrics_of(tracking, first)["test_rmse_mean"], abs=1e-9)
    assert metrics_of(tracking, better)["test_rmse_mean"] < champion_rmse


def test_a_worse_recipe_keeps_the_champion_but_is_registered(promotions):
    _, tracking, _, better, worse = promotions
    assert worse.details["promoted"] is False
    assert metrics_of(tracking, worse)["champion_test_rmse_mean"] == pytest.approx(
        metrics_of(tracking, better)["test_rmse_mean"], abs=1e-9
    )
    assert champion_of(tracking) == better.details["model_version"]
    assert worse.details["model_version"] in versions_of(tracking)


def test_a_failed_alias_move_deletes_the_new_version(promotions, monkeypatch):
    lake, tracking, _, better, worse = promotions
    before = versions_of(tracking)

    def broken(*_):
        raise RuntimeError("registry unavailable")

    monkeypatch.setattr(promote_module, "set_champion", broken)
    with mlflow.start_run(experiment_id=tracking.experiment_id), pytest.raises(RuntimeError, match="unavailable"):
        model_uri = tracking.client.get_model_version(tracking.model_name, worse.details["model_version"]).source
        decide_and_register(tracking, model_uri, 0.0, True, lambda current: 1.0)
    assert versions_of(tracking) == before
    assert champion_of(tracking) == better.details["model_version"]


def test_a_failed_comparison_registers_nothing(promotions):
    lake, tracking, _, better, _ = promotions
    before = versions_of(tracking)
    champion_run = tracking.client.get_run(better.details["mlflow_run_id"])
    Path(urlparse(champion_run.info.artifact_uri).path, PARAMS_ARTIFACT).unlink()  # the champion's recipe is gone

    with pytest.raises(StageError, match=rf"cannot compare with champion version {better.details['model_version']}"):
        run_train(lake, promote=True)

    assert versions_of(tracking) == before
    assert champion_of(tracking) == better.details["model_version"]
