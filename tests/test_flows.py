"""The Prefect flows against a temporary Prefect API (prefect_test_harness), with fake stage runners: no Spark."""

from __future__ import annotations

import sys
import types
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Failed
from prefect.testing.utilities import prefect_test_harness

from cli.main import main as lake_main
from flows import daily as daily_module
from flows import runtime
from flows.artifacts import mlflow_link, model_markdown
from flows.backfill import backfill_on_server, run_dates
from flows.daily import daily
from flows.policy import TrainingFacts, ingest_failure
from flows.serve import deployments, serve_all
from flows.stages import silver, train
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

RUN_DATE = date(2019, 1, 15)
STAGE_RUNNERS = {
    "ingest": ("pipelines.bronze", "run_ingest"),
    "silver": ("pipelines.silver", "run_silver"),
    "gold": ("pipelines.gold", "run_gold"),
    "train": ("pipelines.train", "run_train"),
    "score": ("pipelines.score", "run_score"),
}
QUARANTINED = {"fare_non_negative": 2, "pickup_before_dropoff": 1}
MLFLOW_URL = "http://127.0.0.1:5000/#/experiments/1/runs/abc123"
TRAIN_DETAILS = {
    "mlflow_run_id": "abc123",
    "mlflow_run_url": MLFLOW_URL,
    "metrics": {"rmse": 4.25, "r2": 0.61},
    "model_name": "trip_duration",
    "model_version": 3,
    "promoted": True,
}


def stage_result(stage: str) -> StageResult:
    """A result shaped like the real stage's (counts and versions are made up, never computed by the fakes)."""
    details = {"silver": {"quarantined_by_rule": QUARANTINED}, "train": TRAIN_DETAILS}.get(stage, {})
    return StageResult(stage, f"{stage}-run", counts={f"{stage}_rows": 10}, versions={f"x.{stage}": 1}, details=details)


class StageRecorder:
    """Fake run_<stage> functions: record each call, raise the queued errors, else return stage_result()."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Lake, tuple, dict]] = []
        self.errors: dict[str, list[BaseException]] = {}
        self.results: dict[str, StageResult] = {}

    def runner(self, stage: str):
        def run(lake: Lake, *args, **kwargs) -> StageResult:
            self.calls.append((stage, lake, args, kwargs))
            if self.errors.get(stage):
                raise self.errors[stage].pop(0)
            return self.results.get(stage) or stage_result(stage)

        return run

    def order(self) -> list[str]:
        return [call[0] for call in self.calls]

    def call(self, stage: str) -> tuple[Lake, tuple, dict]:
        (found,) = [call[1:] for call in self.calls if call[0] == stage]
        return found


@pytest.fixture(scope="module", autouse=True)
def prefect_api():
    with prefect_test_harness(server_startup_timeout=180):
        yield


class ModelFacts:
    """Stands in for what the daily flow asks MLflow: the last training and whether a champion exists."""

    def __init__(self) -> None:
        self.training = TrainingFacts(last_trained=None, new_rows=None)
        self.champion = True
        self.tagged: list[tuple[str, date]] = []


@pytest.fixture
def stages(monkeypatch) -> StageRecorder:
    recorder = StageRecorder()
    for stage, (module_name, function) in STAGE_RUNNERS.items():
        module = types.ModuleType(module_name)
        setattr(module, function, recorder.runner(stage))
        monkeypatch.setitem(sys.modules, module_name, module)
    return recorder


@pytest.fixture(autouse=True)
def model_facts(monkeypatch) -> ModelFacts:
    facts = ModelFacts()
    monkeypatch.setattr(daily_module, "training_facts", lambda lake: facts.training)
    monkeypatch.setattr(daily_module, "has_champion", lambda lake: facts.champion)
    monkeypatch.setattr(daily_module, "tag_training_run", lambda lake, run_id, day: facts.tagged.append((run_id, day)))
    return facts


def with_conf(monkeypatch, params: dict, **settings) -> None:
    """The daily flow's Lake with these orchestration.* settings."""
    overrides = {"lake.root": params["lake_root"], **{f"orchestration.{k}": v for k, v in settings.items()}}
    monkeypatch.setattr(daily_module, "open_lake", lambda env, lake_root: Lake(load_conf(env, overrides)))


def ingest_result(status: str, failed: dict[str, str], ingested: int = 1) -> StageResult:
    """An ingest result as run_ingest builds it: one `files` entry per file, counts, the run's status."""
    files = [{"source_file": f"ok-{n}.csv", "status": "ingested", "reason": None} for n in range(ingested)]
    files += [{"source_file": name, "status": "failed", "reason": reason} for name, reason in failed.items()]
    counts = {"files": len(files), "ingested_files": ingested, "failed_files": len(failed), "rows": 10 * ingested}
    return StageResult("ingest", "ingest-run", status=status, counts=counts, details={"files": files})


@pytest.fixture
def landing(tmp_path) -> Path:
    folder = tmp_path / "landing"
    (folder / RUN_DATE.isoformat()).mkdir(parents=True)
    (folder / RUN_DATE.isoformat() / "yellow_tripdata_2019-01.csv").write_text("VendorID\n1\n")
    (folder / "green_tripdata_2019-01.csv").write_text("VendorID\n1\n")
    return folder


@pytest.fixture
def params(tmp_path, landing) -> dict:
    return {"env": "test", "lake_root": str(tmp_path / "lake"), "landing": str(landing)}


def api_filter(collection: str, body: dict) -> list[dict]:
    """POST /<collection>/filter: this server rejects the null filters the Python client sends, and empty filter
    objects make it join tables that exclude flow-level artifacts and runner deployments, so the body names only
    the filters used."""
    response = httpx.post(f"{PREFECT_API_URL.value()}/{collection}/filter", json=body)
    response.raise_for_status()
    return response.json()


def artifacts_of(flow_run_id: UUID) -> dict[str, str]:
    found = api_filter("artifacts", {"artifacts": {"flow_run_id": {"any_": [str(flow_run_id)]}}, "limit": 100})
    return {artifact["key"]: str(artifact["data"]) for artifact in found}


def test_daily_runs_every_stage_in_order_on_one_lake_with_the_parameters(stages, params, landing):
    results = daily(run_date=RUN_DATE, reprocess_quarantine=True, full_refresh=True, promote=False, **params)

    assert stages.order() == ["ingest", "silver", "gold", "train", "score"]
    lakes = {id(call[1]) for call in stages.calls}
    assert len(lakes) == 1
    lake = stages.calls[0][1]
    assert lake.root == params["lake_root"] and lake.conf.env == "test"
    assert stages.call("ingest")[1] == ([str(landing / RUN_DATE.isoformat())],)
    assert stages.call("silver")[2] == {"reprocess_quarantine": True}
    assert stages.call("gold")[2] == {"full_refresh": True}
    assert stages.call("train")[2] == {"promote": False, "reproduce_run_id": None}
    assert [r["stage"] for r in results] == stages.order()
    assert results[1] == stage_result("silver").to_dict()


def test_daily_ingests_the_whole_landing_folder_when_the_date_has_no_folder(stages, params, landing):
    daily(run_date=date(2019, 1, 16), **params)

    assert stages.call("ingest")[1] == ([str(landing)],)
    assert stages.call("train")[2]["promote"] is True  # the daily chain promotes by default


def test_daily_without_a_landing_folder_fails_naming_it(stages, params, tmp_path):
    missing = tmp_path / "nowhere"
    state = daily(run_date=RUN_DATE, **{**params, "landing": str(missing)}, return_state=True)

    assert state.is_failed()
    assert str(missing) in state.message
    assert stages.calls == []


def test_daily_publishes_stage_and_run_artifacts(stages, params):
    state = daily(run_date=RUN_DATE, **params, return_state=True)
    assert state.is_completed()

    artifacts = artifacts_of(state.state_details.flow_run_id)

    expected = {f"{s}-summary" for s in STAGE_RUNNERS} | {"daily-summary", "daily-counts", "mlflow-run"}
    assert set(artifacts) == expected
    summary = artifacts["daily-summary"]
    assert f"daily run {RUN_DATE.isoformat()}" in summary and "completed" in summary
    for stage in STAGE_RUNNERS:
        assert f"{stage}-run" in summary and f"{stage}_rows" in summary and f"x.{stage}" in summary
    for rule, rows in QUARANTINED.items():
        assert f"| {rule} | {rows:,} |" in artifacts["silver-summary"]
    assert MLFLOW_URL in artifacts["train-summary"] and "rmse" in artifacts["train-summary"]
    assert MLFLOW_URL in artifacts["mlflow-run"]
    assert "ingest_rows" in artifacts["daily-counts"] and "version x.gold" in artifacts["daily-counts"]


def test_a_failing_expectation_fails_the_run_naming_the_rule_and_nothing_downstream_runs(stages, params):
    stages.errors["silver"] = [ExpectationFailed("fare_non_negative", 3)]

    state = daily(run_date=RUN_DATE, **params, return_state=True)

    assert state.is_failed()
    assert "fare_non_negative" in state.message
    assert stages.order() == ["ingest", "silver"]
    artifacts = artifacts_of(state.state_details.flow_run_id)
    assert "`fare_non_negative`" in artifacts["silver-summary"] and "3 row(s)" in artifacts["silver-summary"]
    assert "Not run: gold, train, score." in artifacts["daily-summary"]
    assert "failed" in artifacts["daily-summary"]
    assert {"gold-summary", "train-summary", "score-summary"}.isdisjoint(artifacts)


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


def test_stage_flows_pass_their_parameters(stages, params):
    silver_result = silver(reprocess_quarantine=True, env="test", lake_root=params["lake_root"])
    train(promote=True, reproduce_run_id="abc123", env="test", lake_root=params["lake_root"])

    assert silver_result == stage_result("silver").to_dict()
    assert stages.call("silver")[2] == {"reprocess_quarantine": True}
    assert stages.call("train")[2] == {"promote": True, "reproduce_run_id": "abc123"}


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


def test_lake_run_runs_one_flow_and_rejects_options_of_other_flows(stages, params, capsys):
    command = ["--env", "test", "run", "silver", "--reprocess-quarantine", "--lake-root", params["lake_root"]]
    assert lake_main(command) == 0
    assert stages.call("silver")[2] == {"reprocess_quarantine": True}
    assert "silver-run" in capsys.readouterr().out

    assert lake_main(["--env", "test", "run", "silver", "--full-refresh"]) == 2
    assert "--full-refresh does not apply to flow silver" in capsys.readouterr().err


def test_lake_run_reports_a_failed_expectation(stages, params, capsys):
    stages.errors["silver"] = [ExpectationFailed("fare_non_negative", 3)]

    assert lake_main(["--env", "test", "run", "silver", "--lake-root", params["lake_root"]]) == 1
    assert "fare_non_negative" in capsys.readouterr().err


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


BROKEN = {"/landing/yellow_tripdata_2019-02.csv": "empty file (0 bytes)", "/landing/bad.parquet": "unreadable parquet"}


@pytest.mark.parametrize("status", ["failed", "partial"])
def test_a_failed_ingest_fails_the_run_naming_the_files_and_nothing_trains(stages, params, status):
    stages.results["ingest"] = ingest_result(status, BROKEN, ingested=0 if status == "failed" else 2)

    state = daily(run_date=RUN_DATE, **params, return_state=True)

    assert state.is_failed()
    for name, reason in BROKEN.items():
        assert f"{name}: {reason}" in state.message
    assert stages.order() == ["ingest"]
    artifacts = artifacts_of(state.state_details.flow_run_id)
    summary = artifacts["daily-summary"]
    assert f"ingest {status}" in summary and "Not run: silver, gold, train, score." in summary
    for name, reason in BROKEN.items():
        assert f"- {name}: {reason}" in summary
        assert f"| {name} | {reason} |" in artifacts["ingest-summary"]


def test_continue_after_a_failed_ingest_runs_the_rest_but_never_trains(stages, params, monkeypatch, model_facts):
    with_conf(monkeypatch, params, on_ingest_failure="continue", retrain="daily")
    stages.results["ingest"] = ingest_result("partial", BROKEN)

    state = daily(run_date=RUN_DATE, **params, return_state=True)

    assert state.is_completed()
    assert stages.order() == ["ingest", "silver", "gold", "score"]
    results = {r["stage"]: r for r in state.result()}
    assert results["train"]["status"] == "skipped" and "failed ingest" in results["train"]["details"]["reason"]
    assert model_facts.tagged == []
    artifacts = artifacts_of(state.state_details.flow_run_id)
    assert "| train | skipped |" in artifacts["daily-summary"]
    assert "train: skipped" in artifacts["train-summary"] and "failed ingest" in artifacts["train-summary"]
    assert "bad.parquet" in artifacts["train-summary"]


def test_a_clean_ingest_is_not_a_failure():
    assert ingest_failure(ingest_result("success", {})) is None
    problem = ingest_failure(ingest_result("partial", BROKEN, ingested=3))
    assert problem.problems == [f"{name}: {reason}" for name, reason in BROKEN.items()]
    assert "2 of 5 file(s)" in str(problem)


def test_daily_skips_training_as_the_policy_says_and_scores_with_the_champion(stages, params, model_facts):
    model_facts.training = TrainingFacts(last_trained=RUN_DATE - timedelta(days=2), new_rows=5000)

    state = daily(run_date=RUN_DATE, **params, return_state=True)

    assert state.is_completed()
    assert stages.order() == ["ingest", "silver", "gold", "score"]
    artifacts = artifacts_of(state.state_details.flow_run_id)
    assert "| train | skipped |" in artifacts["daily-summary"] and "weekly" in artifacts["train-summary"]


def test_daily_trains_when_due_tags_the_run_date_and_skips_score_without_a_champion(stages, params, model_facts):
    model_facts.champion = False

    state = daily(run_date=RUN_DATE, **params, return_state=True)

    assert state.is_completed()
    assert stages.order() == ["ingest", "silver", "gold", "train"]
    assert model_facts.tagged == [("abc123", RUN_DATE)]
    artifacts = artifacts_of(state.state_details.flow_run_id)
    assert "Trained because: no model trained yet." in artifacts["daily-summary"]
    assert "score: skipped" in artifacts["score-summary"] and "no champion" in artifacts["score-summary"]


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


def test_daily_reports_progress_per_stage(stages, params, monkeypatch, model_facts):
    lines: list[str] = []
    logger = types.SimpleNamespace(info=lambda message, *args: lines.append(message % args))
    monkeypatch.setattr(daily_module, "get_run_logger", lambda: logger)
    model_facts.champion = False

    daily(run_date=RUN_DATE, **params)

    progress = [line for line in lines if line.startswith("[")]
    assert [line.split()[:2] for line in progress[:8:2]] == [
        ["[1/5]", "ingest"],
        ["[2/5]", "silver"],
        ["[3/5]", "gold"],
        ["[4/5]", "train"],
    ]
    assert "silver_rows 10" in progress[3] and progress[3].startswith("[2/5] silver success in")
    assert progress[-1].startswith("[5/5] score skipped: no champion")
