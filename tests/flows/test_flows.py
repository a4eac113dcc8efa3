"""The daily flow against a temporary Prefect API (prefect_test_harness), with fake stage runners: no Spark."""

from __future__ import annotations

import types
from datetime import date, timedelta

import pytest
from flow_fakes import (
    MLFLOW_URL,
    QUARANTINED,
    RUN_DATE,
    STAGE_RUNNERS,
    artifacts_of,
    ingest_result,
    stage_result,
    with_conf,
)

from cli.main import main as lake_main
from flows import daily as daily_module
from flows.daily import daily
from flows.policy import TrainingFacts, ingest_failure
from flows.stages import silver, train
from pipelines.common import ExpectationFailed


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
    assert all(callable(stages.progress[stage]) for stage in ("ingest", "silver", "gold"))  # progress to the run log
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


def test_stage_flows_pass_their_parameters(stages, params):
    silver_result = silver(reprocess_quarantine=True, env="test", lake_root=params["lake_root"])
    train(promote=True, reproduce_run_id="abc123", env="test", lake_root=params["lake_root"])

    assert silver_result == stage_result("silver").to_dict()
    assert stages.call("silver")[2] == {"reprocess_quarantine": True}
    assert stages.call("train")[2] == {"promote": True, "reproduce_run_id": "abc123"}


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
