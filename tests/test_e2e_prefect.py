"""End to end with real components: a Prefect server, `python -m flows.serve`, a run of the `daily` deployment
created through the Prefect client (what the UI's Run button does), then the lake and MLflow it produced.

Spark runs in the served flow run only: this process reads the lake through delta-rs (deltalake), the fast path."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from deltalake import DeltaTable
from mlflow.tracking import MlflowClient
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings

from lake import Lake, load_conf
from lake.standalone import free_port
from pipelines.train.tracking import tracking_uri

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[1]
SAMPLES = [PROJECT / "data" / "sample" / f"yellow_tripdata_sample_2019-0{month}.csv" for month in (1, 2)]
ROWS_PER_MONTH = 2500  # enough for the model's split below (1,000 training and 200 test rows at least)
SERVER_START_SECONDS = 240
DEPLOYMENT_SECONDS = 240
# The whole chain, Spark start-up and model training included, on 2 cores shared with other work.
FLOW_RUN_SECONDS = 25 * 60
POLL_SECONDS = 0.5  # short polls instead of sleeps: each wait ends as soon as its condition holds


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Starts command in its own process group, so stopping it stops its children too."""
    with log.open("w") as out:
        return subprocess.Popen(
            command, env=env, cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def wait_until(ready, seconds: float, process: subprocess.Popen, log: Path, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what}: process exited with {process.returncode}\n{tail(log)}")
        value = ready()
        if value:
            return value
        time.sleep(POLL_SECONDS)
    pytest.fail(f"{what}: not ready after {seconds}s\n{tail(log)}")


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without Prefect/MLflow/lake settings that would point elsewhere, plus values."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "LAKE_", "MLFLOW_")) and key != "SPARK_MASTER"
    }
    return {**inherited, "PYTHONUNBUFFERED": "1", **values}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("e2e")
    (folder / "landing").mkdir()
    for sample in SAMPLES:  # the first rows of each bundled month: a random sample of it (this test is about flows)
        lines = sample.read_text().splitlines()[: ROWS_PER_MONTH + 1]
        (folder / "landing" / sample.name).write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def conf_dir(workdir) -> Path:
    """conf/ as shipped, but with a model split that fits two sample months: the last 14 days are the test window."""
    folder = workdir / "conf"
    shutil.copytree(PROJECT / "conf", folder)
    (workdir / "data").symlink_to(PROJECT / "data")  # conf paths are relative to the folder holding conf/
    model_file = load_conf("test", conf_dir=folder).conf_file("model.params")
    params = yaml.safe_load(model_file.read_text())
    params["split"] |= {"test_from": None, "test_days": 14, "windows": 1, "window": "days"}
    # a smaller model, trained once: this test is about orchestration
    params["regressor"]["params"] |= {"maxIter": 5, "maxDepth": 3}
    params["plots"]["sample_rows"] = 200
    model_file.write_text(yaml.safe_dump(params))
    return folder


@pytest.fixture(scope="module")
def prefect_server(workdir) -> Iterator[str]:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = clean_env(
        PREFECT_HOME=str(workdir / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",  # scheduled runs appear within seconds of serving
    )
    log = workdir / "prefect-server.log"
    prefect = str(Path(sys.executable).parent / "prefect")
    process = start([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, log)
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{api_url}/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, SERVER_START_SECONDS, process, log, "prefect server")
        yield api_url
    finally:
        stop(process)


def runner_env(prefect_server: str, workdir: Path, conf_dir: Path, **values: str) -> dict[str, str]:
    """The environment of what runs flows (`lake serve`, a worker): the server, a temporary lake and landing."""
    return clean_env(
        PREFECT_API_URL=prefect_server,
        PREFECT_HOME=str(workdir / "prefect"),
        LAKE_ENV="test",
        LAKE_CONF_DIR=str(conf_dir),
        LAKE_ROOT=str(workdir / "lake"),
        LAKE_LANDING=str(workdir / "landing"),
        **values,
    )


@pytest.fixture(scope="module")
def served(prefect_server, workdir, conf_dir) -> Iterator[tuple[subprocess.Popen, Path]]:
    """`python -m flows.serve` against the server, with a temporary lake and landing folder (conf env `test`)."""
    env = runner_env(prefect_server, workdir, conf_dir, PREFECT_RUNNER_POLL_FREQUENCY="1")
    log = workdir / "serve.log"
    process = start([sys.executable, "-m", "flows.serve"], env, log)
    try:
        yield process, log
    finally:
        stop(process)


async def create_and_wait(process: subprocess.Popen, log: Path) -> tuple[str, str, str]:
    """Creates a run of daily/daily with the deployment's defaults, like the UI's Run button, and waits for it."""
    async with get_client() as client:
        deadline = time.monotonic() + DEPLOYMENT_SECONDS
        while True:
            try:
                deployment = await client.read_deployment_by_name("daily/daily")
                break
            except ObjectNotFound:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"deployment daily/daily never appeared\n{tail(log)}")
                await asyncio.sleep(POLL_SECONDS)
        flow_run = await client.create_flow_run_from_deployment(deployment.id)
        deadline = time.monotonic() + FLOW_RUN_SECONDS
        while not (flow_run.state and flow_run.state.is_final()):
            if time.monotonic() > deadline:
                pytest.fail(f"flow run {flow_run.name} still {flow_run.state_name}\n{tail(log)}")
            await asyncio.sleep(POLL_SECONDS)
            flow_run = await client.read_flow_run(flow_run.id)
        return str(flow_run.id), flow_run.state_name, flow_run.state.message or ""


def artifacts_of(api_url: str, flow_run_id: str) -> dict[str, object]:
    body = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 100}
    response = httpx.post(f"{api_url}/artifacts/filter", json=body, timeout=30)
    response.raise_for_status()
    return {artifact["key"]: artifact["data"] for artifact in response.json()}


def row_counts(lake: Lake) -> dict[str, int]:
    """Rows of every table the run wrote, read by delta-rs from the Delta log (no Spark in this process)."""
    return {
        name: DeltaTable(spec.path).count() for name, spec in lake.specs.items() if DeltaTable.is_deltatable(spec.path)
    }


def test_daily_deployment_run_builds_the_lake_and_the_model(prefect_server, served, workdir, conf_dir):
    process, log = served
    with temporary_settings(updates={PREFECT_API_URL: prefect_server}):
        flow_run_id, state, message = asyncio.run(create_and_wait(process, log))
    assert state == "Completed", f"{state}: {message}\n{tail(log, 80)}"

    artifacts = artifacts_of(prefect_server, flow_run_id)
    assert {"daily-summary", "daily-counts", "ingest-summary", "silver-summary", "train-summary"} <= set(artifacts)
    counts = artifacts["daily-counts"]
    table = json.loads(counts) if isinstance(counts, str) else counts
    reported = {(row["stage"], row["measure"]): row["value"] for row in table}

    lake = Lake(load_conf("test", {"lake.root": str(workdir / "lake")}, conf_dir))
    rows = row_counts(lake)
    sample_rows = sum(len(path.read_text().splitlines()) - 1 for path in (workdir / "landing").glob("*.csv"))
    assert sample_rows == ROWS_PER_MONTH * len(SAMPLES)

    assert rows["bronze.trips"] == sample_rows == reported[("ingest", "rows")]
    assert 0 < rows["silver.trips"] == reported[("silver", "silver_written")] <= sample_rows
    assert rows.get("silver.quarantine", 0) == reported[("silver", "quarantined")]
    assert rows["gold.trip_features"] == rows["silver.trips"]
    assert rows["gold.zone_daily"] > 0 and rows["gold.hourly_demand"] > 0
    assert rows["gold.trip_predictions"] == reported[("score", "scored")] == rows["gold.trip_features"]

    mlflow = MlflowClient(tracking_uri(lake))
    experiment = mlflow.get_experiment_by_name(lake.conf.get("mlflow.experiment"))
    (run,) = mlflow.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_id in artifacts["train-summary"]


def test_the_daily_schedule_creates_runs_at_the_configured_time(prefect_server, served):
    """The server's scheduler turns the cron schedule into scheduled `daily` runs (SQLAlchemy 2.1 breaks this)."""
    process, log = served
    conf = load_conf("test")
    zone = ZoneInfo(conf.get("orchestration.timezone"))
    minute, hour = (int(field) for field in conf.get("orchestration.daily_cron").split()[:2])

    def scheduled_runs() -> list[dict]:
        body = {"deployments": {"name": {"any_": ["daily"]}}, "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}}
        response = httpx.post(f"{prefect_server}/flow_runs/filter", json=body, timeout=30)
        return response.json() if response.status_code == 200 else []

    runs = wait_until(scheduled_runs, DEPLOYMENT_SECONDS, process, log, "scheduled daily runs")
    starts = [datetime.fromisoformat(run["expected_start_time"]).astimezone(zone) for run in runs]
    assert {(start.hour, start.minute) for start in starts} == {(hour, minute)}
    assert len({start.date() for start in starts}) == len(starts)


async def run_deployment(name: str, log: Path, worker: subprocess.Popen) -> tuple[str, str, dict]:
    """Creates a run of deployment `name` (like the UI's Run button) and waits until it is final."""
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(name)
        flow_run = await client.create_flow_run_from_deployment(deployment.id)
        deadline = time.monotonic() + FLOW_RUN_SECONDS
        while not (flow_run.state and flow_run.state.is_final()):
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"flow run {flow_run.name} still {flow_run.state_name}\n{tail(log)}")
            await asyncio.sleep(POLL_SECONDS)
            flow_run = await client.read_flow_run(flow_run.id)
        return flow_run.state_name, flow_run.state.message or "", {"pool": deployment.work_pool_name, "id": flow_run.id}


def test_a_worker_of_a_process_work_pool_runs_the_deployed_flows(prefect_server, served, workdir, conf_dir):
    """The alternative to `lake serve`: `lake deploy --pool` registers every flow on a process work pool and a
    `prefect worker` runs them; here a `gold` run on the lake the daily run built (it runs after that test)."""
    stop(served[0])  # the same deployment names move from `lake serve` to the pool
    env = runner_env(prefect_server, workdir, conf_dir, PREFECT_WORKER_QUERY_SECONDS="1")
    prefect = str(Path(sys.executable).parent / "prefect")
    created = subprocess.run([prefect, "work-pool", "create", "lake-pool", "--type", "process"], env=env, cwd=PROJECT,
                             capture_output=True, text=True)  # fmt: skip
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = subprocess.run([sys.executable, "-m", "cli.main", "deploy", "--pool", "lake-pool"], env=env,
                              cwd=PROJECT, capture_output=True, text=True)  # fmt: skip
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "6 deployment(s) on work pool 'lake-pool'" in deployed.stdout
    log = workdir / "worker.log"
    worker = start([prefect, "worker", "start", "--pool", "lake-pool", "--limit", "1"], env, log)
    try:
        with temporary_settings(updates={PREFECT_API_URL: prefect_server}):
            state, message, deployment = asyncio.run(run_deployment("gold/gold", log, worker))
    finally:
        stop(worker)
    assert deployment["pool"] == "lake-pool"
    assert state == "Completed", f"{state}: {message}\n{tail(log, 80)}"
    artifacts = artifacts_of(prefect_server, str(deployment["id"]))  # written by the gold task in the worker's run
    assert any(key.startswith("gold") for key in artifacts), sorted(artifacts)
