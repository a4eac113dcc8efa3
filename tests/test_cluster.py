"""The pipeline on a Spark standalone cluster by configuration only: a master and two workers on 127.0.0.1 (started
from the installed pyspark), a shared MLflow tracking server, `SPARK_MASTER=spark://...`,
`MLFLOW_TRACKING_URI=http://...` and `lake run daily` on three real months; every table it writes equals what the
same stages wrote on `local[2]` in two incremental runs (the suite's real-sample lake), and the model, its metrics
and the champion alias are on the server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import functions as F
from servers import mlflow_server
from test_train_support import make_lake, write_params

from lake import Lake
from lake.standalone import StandaloneCluster

PROJECT = Path(__file__).resolve().parents[1]
COMPARED = (
    "bronze.trips",
    "silver.trips",
    "silver.quarantine",
    "gold.trip_features",
    "gold.zone_daily",
    "gold.hourly_demand",
    "gold.pair_stats",
)
VOLATILE = ("run_id", "_at")  # run ids and wall-clock stamps differ between any two runs


def fingerprint(lake: Lake, table: str) -> tuple:
    """Row count and an order-independent checksum of every column but run ids and timestamps of the run."""
    frame = lake.read(table)
    columns = sorted(c for c in frame.columns if not c.endswith(VOLATILE))
    row_hash = F.xxhash64(*[F.coalesce(F.col(c).cast("string"), F.lit("\u2400")) for c in columns])
    return (columns, *frame.agg(F.count(F.lit(1)), F.sum(row_hash.cast("decimal(38,0)"))).first())


@pytest.fixture(scope="module")
def landing(real_sample_lake) -> Path:
    """The three month files the suite's real-sample lake ingested (tests/real_lake.py)."""
    return real_sample_lake.landing


@pytest.fixture(scope="module")
def params(tmp_path_factory) -> Path:
    """A smaller model than the local lake's: the tables compared do not depend on it, and the model is compared
    by the trips it scored."""
    return write_params(
        tmp_path_factory.mktemp("cluster-conf"),
        regressor={"type": "gbt", "params": {"maxIter": 5, "maxDepth": 3, "maxBins": 270}},
        split={"windows": 2, "window": "month", "test_days": 14, "min_train_rows": 300, "min_test_rows": 100},
    )


@pytest.fixture(scope="module")
def shared_mlflow(tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("mlflow-server")
    with mlflow_server(folder, str(folder / "artifacts")) as url:
        yield url


@pytest.fixture(scope="module")
def on_cluster(landing, params, shared_mlflow, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, dict]:
    """`lake run daily` in its own process against a 2-worker standalone cluster and the MLflow server; returns the
    lake root, the run and the master's record of the applications it served."""
    root = tmp_path_factory.mktemp("cluster") / "lake"
    with StandaloneCluster(workers=2, cores=1, memory="1g", log_dir=str(root.parent / "logs")) as cluster:
        env = {
            **os.environ,
            "SPARK_MASTER": cluster.url,  # the only changes from a local run: configuration
            "MLFLOW_TRACKING_URI": shared_mlflow,
            "LAKE_ENV": "test",
            "LAKE_ROOT": str(root),
            "LAKE_MODEL_PARAMS": str(params),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
            "PYTHONPATH": str(PROJECT),
        }
        command = [sys.executable, "-m", "cli.main", "run", "daily", "--landing", str(landing), "--date", "2019-04-01"]
        done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=1200)
        status = cluster.status()
    assert done.returncode == 0, done.stderr[-3000:]
    return root, done, status


@pytest.fixture(scope="module")
def on_local(real_sample_lake) -> Lake:
    """The same files through the same stages in the suite's local[2] session: the real-sample lake, which ingested
    January first and February + March in a second run (the cluster lands all three in one daily run)."""
    return real_sample_lake.lake


@pytest.mark.cluster
@pytest.mark.integration
def test_the_cluster_ran_the_work_on_its_two_workers(on_cluster):
    _, done, status = on_cluster
    apps = status["completedapps"] + status["activeapps"]
    assert [app["name"] for app in apps] == ["taxi-lakehouse"]  # the daily run's one session ran on the cluster
    assert apps[0]["cores"] == 2 and len(status["workers"]) == 2
    assert "train" in done.stdout and "score" in done.stdout


@pytest.mark.cluster
@pytest.mark.integration
@pytest.mark.parametrize("table", COMPARED)
def test_every_table_equals_the_local_run(on_cluster, on_local, spark, params, table):
    root, _, _ = on_cluster
    cluster_lake = make_lake(spark, root, params)  # read back through the local session: same files, any engine
    expected = fingerprint(on_local, table)
    assert expected[1] > 0
    assert fingerprint(cluster_lake, table) == expected


@pytest.mark.cluster
@pytest.mark.integration
def test_the_model_trained_and_scored_the_same_trips(on_cluster, on_local, spark, params):
    root, _, _ = on_cluster
    cluster_lake = make_lake(spark, root, params)
    keys = [lake.read("gold.trip_predictions").select("trip_key") for lake in (cluster_lake, on_local)]
    assert keys[0].count() == keys[1].count() > 0
    assert keys[0].exceptAll(keys[1]).isEmpty()


@pytest.mark.cluster
@pytest.mark.integration
def test_the_run_the_model_and_the_champion_are_on_the_shared_mlflow_server(on_cluster, shared_mlflow, tmp_path):
    client = MlflowClient(tracking_uri=shared_mlflow, registry_uri=shared_mlflow)  # not the process-wide registry
    champion = client.get_model_version_by_alias("trip_duration", "champion")
    run = client.get_run(champion.run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["train_rows"] > 0
    assert run.data.metrics["test_rmse_mean"] > 0
    assert run.data.tags["input.gold.trip_features.version"].isdigit()  # pinned to the Delta version it read
    downloaded = Path(client.download_artifacts(champion.run_id, "", str(tmp_path)))  # through the server's proxy
    assert any(downloaded.rglob("MLmodel"))
