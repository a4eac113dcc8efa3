"""The product's claim in one run: the pipeline on a Spark cluster over object storage, unchanged but for
configuration. Started on 127.0.0.1: a Spark standalone master and two workers (from the installed pyspark), moto's S3
server with one bucket, and an MLflow tracking server whose artifact store is in that bucket. `lake run daily` on a
real month (January 2019, 1,500 trips) runs in a process of its own with settings from environment variables
(SPARK_MASTER, MLFLOW_TRACKING_URI, LAKE_ROOT=s3a://..., the credentials) and a copy of conf/ (LAKE_CONF_DIR) whose
test.yaml adds the S3A JARs of conf/cluster.yaml, the endpoint and the fast path's storage options.

Compared: every table it writes in the bucket equals, by row count and an order-independent checksum (both lakes read
with deltalake, hashed by DuckDB), what the same stages wrote on `local[2]` into a folder from the same file (the
suite's real-sample lake, read at the versions it had after January alone); the model scored the same trips; the fast
query path reads the bucket and agrees with Spark on the local lake's January version; `lake doctor`'s table and
accounting checks pass on the bucket; the run, its metrics, its pinned input version and the champion are on the
server, the model's artifacts in the bucket."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml
from mlflow.tracking import MlflowClient
from real_lake import FIRST
from servers import S3_CREDENTIALS, S3_REGION, bucket_keys, mlflow_server, moto_s3
from test_train_support import write_params

from lake import Lake, load_conf
from lake.doctor import OK, check_accounting, check_table, open_delta
from lake.query import comparable, run_query
from lake.standalone import StandaloneCluster

PROJECT = Path(__file__).resolve().parents[1]
BUCKET, PREFIX, ARTIFACTS = "taxi-lake", "prod/lake", "mlflow"
ROOT = f"s3a://{BUCKET}/{PREFIX}"
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
SQL = "SELECT count(*) AS days, sum(trips) AS trips, round(sum(revenue), 2) AS revenue FROM gold.zone_daily"


def object_store_conf(endpoint: str) -> dict[str, dict]:
    """What the run's conf/test.yaml gains (sections merged): everything but the root and the credentials that
    differs from a local lake."""
    return {
        # hadoop-aws matching pyspark's Hadoop and the AWS SDK it was built on, as the shipped cluster example has them
        "spark": {
            "jar_packages": load_conf("cluster", conf_dir=PROJECT / "conf").get("spark.jar_packages"),
            "extra": {
                "spark.hadoop.fs.s3a.endpoint": endpoint,
                "spark.hadoop.fs.s3a.endpoint.region": S3_REGION,
                "spark.hadoop.fs.s3a.path.style.access": "true",
                "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
            },
        },
        "lake": {"storage_options": {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": S3_REGION, "AWS_ALLOW_HTTP": "true"}},
        "silver": {"data_docs": False},
    }


def dataset(lake: Lake, table: str, version: int | None = None):
    """The table at `version` (else its latest) as a pyarrow dataset, read with deltalake (a bucket or a folder)."""
    delta = open_delta(lake, lake.path(table), version)
    assert delta is not None, f"{table}: no Delta table at {lake.path(table)}"
    return delta.to_pyarrow_dataset()


def fingerprint(lake: Lake, table: str, version: int | None = None) -> tuple:
    """Columns, row count and an order-independent checksum of every column but run ids and timestamps of the run.
    The table (at `version`, else its latest) is read with deltalake (a bucket or a folder alike, same types);
    DuckDB's hash of a NULL is a value of its own, and a row's hash depends on its columns' order (sorted)."""
    data = dataset(lake, table, version).to_table()
    columns = sorted(c for c in data.column_names if not c.endswith(VOLATILE))
    row_hash = "hash(" + ", ".join(f'"{c}"' for c in columns) + ")"
    with duckdb.connect() as connection:
        connection.register("data", data)
        count, checksum = connection.execute(f"SELECT count(*), sum({row_hash}::HUGEINT) FROM data").fetchone()
    return columns, count, checksum


def trip_keys(lake: Lake, table: str, version: int | None = None) -> list[str]:
    return sorted(dataset(lake, table, version).to_table(columns=["trip_key"])["trip_key"].to_pylist())


@pytest.fixture(scope="module")
def landing(real_sample_lake) -> Path:
    """The folder of the month the suite's real-sample lake ingested first, alone (tests/real_lake.py)."""
    return real_sample_lake.landing / FIRST


@pytest.fixture(scope="module")
def params(tmp_path_factory) -> Path:
    """A smaller model than the local lake's, tested on January's last 10 days: the tables compared do not depend on
    it, and the model is compared by the trips it scored."""
    return write_params(
        tmp_path_factory.mktemp("cluster-model"),
        regressor={"type": "gbt", "params": {"maxIter": 5, "maxDepth": 3, "maxBins": 270}},
        split={"windows": 1, "window": "days", "test_days": 10, "min_train_rows": 300, "min_test_rows": 100},
    )


@pytest.fixture(scope="module")
def moto_folder(tmp_path_factory) -> Path:
    """Where moto's server keeps its log: one line per request (method and key)."""
    return tmp_path_factory.mktemp("moto")


@pytest.fixture(scope="module")
def s3(moto_folder) -> Iterator[str]:
    """moto's S3 endpoint with an empty bucket; the credentials are in os.environ while this module runs."""
    with moto_s3(moto_folder, BUCKET) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def tracking(s3, tmp_path_factory) -> Iterator[str]:
    """An MLflow server whose artifact store is s3://<bucket>/mlflow (credentials from its environment); clients
    upload and download through it."""
    env = {**os.environ, "MLFLOW_S3_ENDPOINT_URL": s3}
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server"), f"s3://{BUCKET}/{ARTIFACTS}", env) as url:
        yield url


@pytest.fixture(scope="module")
def conf_dir(s3, tmp_path_factory) -> Path:
    """conf/ as shipped, its test.yaml with object_store_conf merged in (spark.extra: both sets of settings)."""
    workdir = tmp_path_factory.mktemp("cluster-workdir")
    folder = workdir / "conf"
    shutil.copytree(PROJECT / "conf", folder)
    (workdir / "data").symlink_to(PROJECT / "data")  # conf paths are relative to the folder holding conf/
    settings = yaml.safe_load((folder / "test.yaml").read_text())
    for section, values in object_store_conf(s3).items():
        merged = settings.setdefault(section, {})
        extra = {**(merged.get("extra") or {}), **values.get("extra", {})}  # test.yaml's settings stay
        merged.update(values)
        if extra:
            merged["extra"] = extra
    (folder / "test.yaml").write_text(yaml.safe_dump(settings))
    return folder


@pytest.fixture(scope="module")
def on_cluster(landing, params, s3, tracking, conf_dir) -> tuple[subprocess.CompletedProcess, dict]:
    """`lake run daily` in its own process against a 2-worker standalone cluster, the bucket and the MLflow server;
    returns the run and the master's record of the applications it served. The cluster starts while the credentials
    are in the environment: its workers, and the executors they launch, inherit them (no key is in Spark's conf)."""
    assert all(os.environ.get(name) == value for name, value in S3_CREDENTIALS.items())
    logs = conf_dir.parent / "spark-logs"
    with StandaloneCluster(workers=2, cores=1, memory="1g", log_dir=str(logs)) as cluster:
        env = {
            **os.environ,
            "SPARK_MASTER": cluster.url,  # the only changes from a local run: configuration
            "MLFLOW_TRACKING_URI": tracking,
            "LAKE_ENV": "test",
            "LAKE_CONF_DIR": str(conf_dir),
            "LAKE_ROOT": ROOT,
            "LAKE_MODEL_PARAMS": str(params),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
            "PYTHONPATH": str(PROJECT),
        }
        command = [sys.executable, "-m", "cli.main", "run", "daily", "--landing", str(landing), "--date", "2019-02-01"]
        done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=1200)
        status = cluster.status()
    (logs / "daily.log").write_text(f"{done.stdout}\n{done.stderr}")  # the run's own output, kept with the logs
    for copy in logs.glob("worker-*/app-*/*/*.jar"):  # the executors' copies of spark.jars (1.3 GB); logs stay
        copy.unlink()
    assert done.returncode == 0, f"{done.stderr[-3000:]}\n(Spark master and worker logs in {logs})"
    return done, status


@pytest.fixture(scope="module")
def cluster_lake(on_cluster, conf_dir) -> Lake:
    """The bucket's lake as the run configured it; read here with deltalake only (this process's Spark session has
    no S3A JARs)."""
    return Lake(load_conf("test", overrides={"lake.root": ROOT}, conf_dir=conf_dir))


@pytest.fixture(scope="module")
def on_local(real_sample_lake) -> tuple[Lake, dict[str, int]]:
    """The same file through the same stages in the suite's local[2] session into a folder: the real-sample lake,
    with every table's version from when January alone had gone through ingest, silver and gold."""
    return real_sample_lake.lake, real_sample_lake.january


@pytest.mark.cluster
@pytest.mark.integration
def test_the_cluster_ran_the_work_on_its_two_workers(on_cluster):
    done, status = on_cluster
    apps = status["completedapps"] + status["activeapps"]
    assert [app["name"] for app in apps] == ["taxi-lakehouse"]  # the daily run's one session ran on the cluster
    assert apps[0]["cores"] == 2 and len(status["workers"]) == 2
    assert "train" in done.stdout and "score" in done.stdout


@pytest.mark.cluster
@pytest.mark.integration
def test_spark_wrote_every_layer_into_the_bucket(s3, on_cluster):
    keys = bucket_keys(s3, BUCKET, f"{PREFIX}/")
    for table in (*COMPARED, "gold.trip_predictions"):
        folder = f"{PREFIX}/{table.replace('.', '/')}/"
        assert f"{folder}_delta_log/00000000000000000000.json" in keys, table
        assert any(key.startswith(folder) and key.endswith(".parquet") for key in keys), table


@pytest.mark.cluster
@pytest.mark.integration
@pytest.mark.parametrize("table", COMPARED)
def test_every_table_equals_the_local_run(cluster_lake, on_local, table):
    local, january = on_local
    expected = fingerprint(local, table, january[table])
    assert expected[1] > 0
    assert fingerprint(cluster_lake, table) == expected


@pytest.mark.cluster
@pytest.mark.integration
def test_the_model_trained_and_scored_the_same_trips(cluster_lake, on_local):
    local, january = on_local
    scored = trip_keys(cluster_lake, "gold.trip_predictions")
    assert len(scored) > 0 and scored == trip_keys(local, "gold.trip_features", january["gold.trip_features"])


@pytest.mark.cluster
@pytest.mark.integration
def test_the_fast_path_reads_the_bucket_and_agrees_with_spark(cluster_lake, on_local):
    local, january = on_local
    fast = run_query(cluster_lake, SQL, engine="fast")
    assert fast.engine == "fast"
    _, rows = comparable(fast.table)
    assert rows[0][0] > 0
    spark = run_query(local, SQL, engine="spark", version=january["gold.zone_daily"])
    assert comparable(fast.table) == comparable(spark.table)


@pytest.mark.cluster
@pytest.mark.integration
def test_lake_doctor_reads_the_tables_and_the_accounting_in_the_bucket(cluster_lake, landing):
    for table in ("bronze.trips", "silver.trips", "gold.zone_daily"):
        check = check_table(cluster_lake, table)
        assert check.status == OK, check.detail
    landed = sum(len(path.read_text().splitlines()) - 1 for path in landing.glob("*.csv"))  # header lines off
    accounting = check_accounting(cluster_lake)
    assert accounting.status == OK and f") {landed} = silver.trips" in accounting.detail, accounting.detail


@pytest.mark.cluster
@pytest.mark.integration
def test_the_run_the_model_and_the_champion_are_on_the_server_with_the_artifacts_in_the_bucket(
    on_cluster, tracking, s3, tmp_path
):
    done, _ = on_cluster
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)  # not the process-wide registry
    champion = client.get_model_version_by_alias("trip_duration", "champion")
    run = client.get_run(champion.run_id)
    assert f"`{run.data.tags['stage_run_id']}`" in done.stdout  # the daily run's training made the champion
    assert run.info.status == "FINISHED" and run.data.metrics["train_rows"] > 0
    assert run.data.metrics["test_rmse_mean"] > 0
    assert run.data.tags["input.gold.trip_features.version"].isdigit()  # pinned to the Delta version it read
    assert run.data.tags["input.gold.trip_features.path"].startswith(f"s3a://{BUCKET}/")
    downloaded = Path(client.download_artifacts(champion.run_id, "", str(tmp_path)))  # through the server's proxy
    assert any(downloaded.rglob("MLmodel"))
    keys = bucket_keys(s3, BUCKET, f"{ARTIFACTS}/")
    assert any(key.endswith("/MLmodel") for key in keys), keys[:20]


@pytest.mark.cluster
@pytest.mark.integration
def test_spark_staged_the_model_in_the_bucket_and_removed_it(s3, moto_folder, on_cluster):
    """On machines that share no disk, executors must write the model MLflow logs, and read the one scoring loads,
    where the driver and every other executor see them: under the lake root in the bucket (Lake.staging; the bucket
    is Hadoop's default filesystem, lake.session). moto's request log shows both copies written there; none is left."""
    staging = f"{PREFIX}/_staging/models/"
    written = re.findall(
        rf'"PUT /{BUCKET}/{staging}(\S+)/metadata/part-\S* HTTP', (moto_folder / "moto.log").read_text()
    )
    copies = {folder for folder in written if "/stages/" not in folder and "_temporary" not in folder}
    by_stage = sorted(copy.split("-", 1)[0] for copy in copies)  # <stage>-<ours>/<MLflow's uuid>
    assert by_stage == ["score", "train"] and all(copy.count("/") == 1 for copy in copies), sorted(copies)
    assert not [key for key in bucket_keys(s3, BUCKET, staging) if not key.endswith("/")]  # only folder markers
