"""Flow operations against a temporary Prefect API: retries, schedules, backfill, serving, MLflow links. No Spark."""

from __future__ import annotations

import types
from datetime import date, datetime, timezone

import pytest
from flow_fakes import (
    MLFLOW_URL,
    RUN_DATE,
    STAGE_RUNNERS,
    api_filter,
    stage_result,
)
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Failed

from flows import daily as daily_module
from flows import runtime
from flows.artifacts import mlflow_link, model_markdown
from flows.backfill import backfill_on_server, run_dates
from flows.daily import daily
from flows.serve import deployments, serve_all
from flows.tasks import (
    gold_task,
    ingest_with_retries,
    is_transient,
    retry_on_io_error,
    score_task,
    silver_task,
    with_mlflow_ui_link,
)
from lake import Lake, load_conf
from lake.errors import SetupError
from pipelines.common import ExpectationFailed, StageResult


def test_ingest_is_retried_after_an_io_error(stages, params, monkeypatch):
    no_delay = {"lake.root": params["lake_root"], "orchestration.ingest_retry_delay_seconds": 0}
    monkeypatch.setattr(daily_module, "open_lake", lambda env, lake_root: Lake(load_conf(env, no_delay)))
    stages.errors["ingest"] = [ConnectionResetError("object store connection reset")]

    state = daily(run_date=RUN_DATE, **params, return_state=True)

    assert state.is_completed()
    assert stages.order() == ["ingest", "ingest", "silver", "gold", "train", "score"]


def test_a_missing_file_is_not_retried(stages, params):
    stages.errors["ingest"] = [FileNotFoundError("yellow_tripdata_2019-01.csv vanished")]

    state = daily(run_date=RUN_DATE, **params, return_state=True)

    assert state.is_failed() and "vanished" in state.message
    assert stages.order() == ["ingest"]


def test_only_ingestion_retries():
    conf = load_conf("test")
    assert ingest_with_retries(conf).retries == conf.get("orchestration.ingest_retries") > 0
    assert ingest_with_retries(conf).retry_condition_fn is retry_on_io_error
    assert [t.retries for t in (silver_task, gold_task, score_task)] == [0, 0, 0]


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionResetError("reset"), True),
        (TimeoutError("slow"), True),
        (FileNotFoundError("gone"), False),
        (ExpectationFailed("rule", 1), False),
        (ValueError("bad"), False),
        (None, False),
    ],
)
def test_transient_errors_are_io_errors(error, transient):
    assert is_transient(error) is transient
    assert retry_on_io_error(None, None, Failed(data=error)) is transient


@pytest.mark.parametrize(("scheduled_utc_hour", "expected_day"), [(7, 15), (3, 14)])
def test_a_scheduled_run_date_is_the_scheduled_day_in_the_configured_timezone(
    monkeypatch, scheduled_utc_hour, expected_day
):
    scheduled = datetime(2019, 1, 15, scheduled_utc_hour, tzinfo=timezone.utc)
    monkeypatch.setattr("prefect.runtime.flow_run", types.SimpleNamespace(scheduled_start_time=scheduled))
    conf = load_conf("test", {"orchestration.timezone": "America/New_York"})

    assert runtime.resolve_run_date(None, conf) == date(2019, 1, expected_day)
    assert runtime.resolve_run_date(RUN_DATE, conf) == RUN_DATE


def test_daily_deployment_is_scheduled_from_conf(landing):
    conf = load_conf("test", {"orchestration.daily_cron": "30 4 * * *", "lake.landing": str(landing)})

    served = {deployment.name: deployment for deployment in deployments(conf)}

    assert set(served) == set(STAGE_RUNNERS) | {"daily"}
    (schedule,) = served["daily"].schedules
    assert schedule.schedule.cron == "30 4 * * *"
    assert schedule.schedule.timezone == conf.get("orchestration.timezone")
    assert served["daily"].parameters == {"landing": str(landing), "env": "test"}
    assert all(not served[name].schedules for name in STAGE_RUNNERS)


def test_run_dates_include_both_ends():
    assert run_dates(date(2019, 1, 30), date(2019, 2, 2)) == [date(2019, 1, d) for d in (30, 31)] + [
        date(2019, 2, d) for d in (1, 2)
    ]
    with pytest.raises(ValueError, match="before"):
        run_dates(date(2019, 2, 2), date(2019, 2, 1))


def test_backfill_creates_one_daily_run_per_date(landing):
    conf = load_conf("test", {"lake.landing": str(landing)})
    daily_deployment = deployments(conf)[0]
    daily_deployment.apply()

    runs = backfill_on_server(date(2019, 1, 30), date(2019, 2, 1), parameters={"promote": False})

    ids = [str(run.id) for run in runs]
    created = sorted(api_filter("flow_runs", {"flow_runs": {"id": {"any_": ids}}}), key=lambda run: run["name"])
    assert [run["name"] for run in created] == ["daily-2019-01-30", "daily-2019-01-31", "daily-2019-02-01"]
    assert [run["parameters"]["run_date"] for run in created] == ["2019-01-30", "2019-01-31", "2019-02-01"]
    assert all(run["parameters"]["promote"] is False and run["parameters"]["env"] == "test" for run in created)
    assert {run["state_type"] for run in created} == {"SCHEDULED"}


def test_backfill_names_what_is_missing():
    with pytest.raises(ValueError, match="deployment nope/nope not found"):
        backfill_on_server(RUN_DATE, RUN_DATE, deployment="nope/nope")
    with temporary_settings(updates={PREFECT_API_URL: ""}), pytest.raises(ValueError, match="--local"):
        backfill_on_server(RUN_DATE, RUN_DATE)


def test_a_local_tracking_store_links_the_run_in_the_mlflow_ui():
    ui_page = "http://127.0.0.1:5000/#/experiments/7/runs/r1"
    stored = "sqlite:///lake/_mlflow/mlflow.db experiment 7 run r1"
    details = {"mlflow_run_id": "r1", "mlflow_run_url": stored}

    assert mlflow_link(details) == f"MLflow run `r1` (tracking store: `{stored}`)"
    assert mlflow_link({**details, "mlflow_ui_url": ui_page}).startswith(f"[MLflow run r1]({ui_page})")
    assert mlflow_link({"mlflow_run_id": "r1", "mlflow_run_url": MLFLOW_URL}) == f"[MLflow run r1]({MLFLOW_URL})"
    assert mlflow_link({}) == ""


def test_model_summary_says_promoted_only_for_training():
    scored = StageResult("score", "s1", details={"model_name": "trip_duration", "model_version": "3"})

    assert "Model `trip_duration` version 3." in model_markdown(scored)
    assert "(promoted)" in model_markdown(stage_result("train")) and "rmse" in model_markdown(stage_result("train"))


def test_serving_needs_a_prefect_server():
    with temporary_settings(updates={PREFECT_API_URL: ""}), pytest.raises(SetupError, match="PREFECT_API_URL"):
        serve_all("test")


def test_the_mlflow_ui_link_is_the_tracking_run_url_on_the_ui(monkeypatch, tmp_path):
    from pipelines.train import tracking

    lake = Lake(load_conf("test", {"lake.root": str(tmp_path / "lake")}))
    store = tracking.Tracking("sqlite:///x/mlflow.db", "7", "trip_duration", client=None)
    monkeypatch.setattr(tracking, "open_tracking", lambda lake: store)
    local = StageResult("train", "t", details={"mlflow_run_id": "r1", "mlflow_run_url": store.run_url("r1")})

    linked = with_mlflow_ui_link(lake, local)

    ui = lake.conf.get("orchestration.mlflow_ui_url")
    assert linked.details["mlflow_ui_url"] == f"{ui}/#/experiments/7/runs/r1"
    served = StageResult("train", "t", details={"mlflow_run_id": "r1", "mlflow_run_url": MLFLOW_URL})
    assert "mlflow_ui_url" not in with_mlflow_ui_link(lake, served).details
