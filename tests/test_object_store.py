"""A lake on object storage by configuration only: `lake.root: s3a://...` against a local S3-compatible server
(moto's server mode on 127.0.0.1), hadoop-aws and its AWS SDK fetched like the Delta JARs, credentials only from the
environment. Spark writes bronze, silver and gold there and trains the model, tracked by an MLflow server whose
artifact root is in the same bucket; the fast query path (deltalake + DuckDB) reads the tables back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from mlflow.tracking import MlflowClient
from servers import mlflow_server, wait_until_up
from test_train_support import write_params

from lake import Lake, load_conf
from lake.doctor import OK, check_accounting, check_table
from lake.query import run_query
from lake.standalone import free_port

PROJECT = Path(__file__).resolve().parents[1]
BUCKET, PREFIX, ARTIFACTS = "taxi-lake", "prod/lake", "mlflow"
ROWS = 1000
# The S3A JARs of the shipped cluster example: hadoop-aws matching pyspark's Hadoop and the AWS SDK it was built on.
S3A_JARS = load_conf("cluster").get("spark.jar_packages")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "lake-test-key", "AWS_SECRET_ACCESS_KEY": "lake-test-secret"}
SQL = "SELECT count(*) AS days, sum(trips) AS trips, round(sum(revenue), 2) AS revenue FROM gold.zone_daily"

# The stages in a process of their own: S3A's JARs join the JVM's classpath only when a session starts.
CHILD = """
import json, sys
from lake import Lake, load_conf
from pipelines.bronze.ingest import run_ingest
from pipelines.gold.run import run_gold
from pipelines.silver.run import run_silver
from pipelines.train import run_train
lake = Lake(load_conf("test", overrides=json.loads(sys.argv[1])))
run_ingest(lake, [sys.argv[2]])
run_silver(lake)
run_gold(lake)
trained = run_train(lake, promote=True)
row = lake.spark.sql(sys.argv[3].replace("gold.zone_daily", f"delta.`{lake.path('gold.zone_daily')}`")).first()
counts = {t: lake.read(t).count() for t in ("bronze.trips", "silver.trips")}
print(json.dumps({"counts": counts, "row": list(row), "mlflow_run_id": trained.details["mlflow_run_id"]}))
"""


def object_store_conf(endpoint: str) -> dict:
    """Everything that differs from a local lake: the root, the JARs, the endpoint, the fast path's options."""
    return {
        "lake.root": f"s3a://{BUCKET}/{PREFIX}",
        "spark.jar_packages": S3A_JARS,
        "spark.extra": {
            "spark.hadoop.fs.s3a.endpoint": endpoint,
            "spark.hadoop.fs.s3a.endpoint.region": "us-east-1",
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        },
        "lake.storage_options": {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"},
        "silver.data_docs": False,
    }


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (a process of its own: delta-rs calls hold this process's GIL) with one empty
    bucket; the credentials are in the environment only."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in CREDENTIALS.items():
                patch.setenv(name, value)
            client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            wait_until_up(lambda: client.create_bucket(Bucket=BUCKET), server, log, "moto", (EndpointConnectionError,))
            yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def tracking(s3, tmp_path_factory) -> Iterator[str]:
    """An MLflow server whose artifact store is s3://<bucket>/mlflow (its own credentials, from its environment)."""
    env = {**os.environ, "MLFLOW_S3_ENDPOINT_URL": s3}
    with mlflow_server(tmp_path_factory.mktemp("mlflow"), f"s3://{BUCKET}/{ARTIFACTS}", env) as url:
        yield url


@pytest.fixture(scope="module")
def written(s3, tracking, samples, tmp_path_factory) -> dict:
    source = samples / "yellow" / "yellow_tripdata_sample_2019-01.csv"
    landing = tmp_path_factory.mktemp("s3-landing") / source.name
    landing.write_text("\n".join(source.read_text().splitlines()[: ROWS + 1]) + "\n")
    conf = object_store_conf(s3) | {
        "mlflow.tracking_uri": tracking,
        "model.params": str(write_params(tmp_path_factory.mktemp("s3-conf"))),
    }
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "SPARK_MASTER": "local[2]"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(conf), str(landing), SQL],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.integration
def test_spark_writes_every_layer_into_the_bucket(s3, written):
    assert written["counts"]["bronze.trips"] == ROWS and written["counts"]["silver.trips"] > 0
    listed = boto3.client("s3", endpoint_url=s3, region_name="us-east-1").list_objects_v2(Bucket=BUCKET)
    keys = [item["Key"] for item in listed.get("Contents", [])]
    for table in ("bronze/trips", "silver/trips", "silver/quarantine", "gold/zone_daily", "gold/trip_features"):
        assert f"{PREFIX}/{table}/_delta_log/00000000000000000000.json" in keys
        assert any(k.startswith(f"{PREFIX}/{table}/") and k.endswith(".parquet") for k in keys)


@pytest.mark.integration
def test_the_fast_path_reads_the_bucket_and_agrees_with_spark(s3, written, spark):
    lake = Lake(load_conf("test", overrides=object_store_conf(s3)), spark)
    result = run_query(lake, SQL, engine="fast")
    assert result.engine == "fast"
    assert list(result.table.to_pylist()[0].values()) == written["row"]


@pytest.mark.integration
def test_the_model_is_tracked_on_the_server_with_its_artifacts_in_the_bucket(s3, tracking, written):
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    champion = client.get_model_version_by_alias("trip_duration", "champion")
    assert champion.run_id == written["mlflow_run_id"]
    assert client.get_run(champion.run_id).data.tags["input.gold.trip_features.path"].startswith(f"s3a://{BUCKET}/")
    listed = boto3.client("s3", endpoint_url=s3, region_name="us-east-1").list_objects_v2(
        Bucket=BUCKET, Prefix=f"{ARTIFACTS}/"
    )
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert any(key.endswith("/MLmodel") for key in keys), keys[:20]


@pytest.mark.integration
def test_lake_doctor_reads_the_tables_and_the_accounting_in_the_bucket(s3, written, spark):
    lake = Lake(load_conf("test", overrides=object_store_conf(s3)), spark)
    for table in ("bronze.trips", "silver.trips", "gold.zone_daily"):
        check = check_table(lake, table)
        assert check.status == OK, check.detail
    accounting = check_accounting(lake)
    assert accounting.status == OK and f") {ROWS} = silver.trips" in accounting.detail, accounting.detail
