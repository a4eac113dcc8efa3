"""Fakes for the flow tests: recorded stage runners, made-up stage results, model facts, Prefect API helpers."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import httpx
from prefect.settings import PREFECT_API_URL

from flows import daily as daily_module
from flows.policy import TrainingFacts
from lake import Lake, load_conf
from pipelines.common import StageResult

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
        self.progress: dict[str, object] = {}

    def runner(self, stage: str):
        def run(lake: Lake, *args, **kwargs) -> StageResult:
            self.progress[stage] = kwargs.pop("progress", None)  # the flow log's progress callback, if passed
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


class ModelFacts:
    """Stands in for what the daily flow asks MLflow: the last training and whether a champion exists."""

    def __init__(self) -> None:
        self.training = TrainingFacts(last_trained=None, new_rows=None)
        self.champion = True
        self.tagged: list[tuple[str, date]] = []


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
