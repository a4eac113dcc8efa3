"""Servers the scale-out tests start on 127.0.0.1 (an MLflow tracking server, moto's S3 server) and how they wait for
one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from lake.standalone import free_port

START_SECONDS = 120
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "lake-test-key", "AWS_SECRET_ACCESS_KEY": "lake-test-secret"}
S3_REGION = "us-east-1"


def wait_until_up(
    probe: Callable[[], object],
    server: subprocess.Popen,
    log: Path,
    what: str,
    errors: tuple[type[Exception], ...] = (OSError,),
) -> None:
    """Calls probe until it stops raising `errors` (connection refused and the like); fails with the server's log
    when the server exits or START_SECONDS pass."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            probe()
            return
        except errors:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{what} did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.3)


@contextmanager
def mlflow_server(folder: Path, artifacts: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`mlflow server` with a SQLite backend store in `folder` and the artifact store `artifacts` (a folder or an
    s3:// URI) that it serves to clients (--serve-artifacts): clients need no access to the store themselves.
    Without MLflow's job execution: it starts a job runner and Huey consumer processes for GenAI jobs the tests never
    submit, which poll; the server's processes used 41.6 s of CPU during the cluster test with them, 9.0 s without."""
    env = {**(os.environ if env is None else env), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--serve-artifacts",
               "--artifacts-destination", artifacts]  # fmt: skip
    log = folder / "mlflow-server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(lambda: urllib.request.urlopen(f"{url}/health", timeout=2), server, log, "mlflow server")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def moto_s3(folder: Path, bucket: str) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (a process of its own: delta-rs calls hold this process's GIL) with one empty
    bucket; yields its endpoint. The credentials (S3_CREDENTIALS) are in os.environ while it is up, in no file:
    processes started meanwhile (Spark workers and their executors, servers, drivers) inherit them."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = folder / "moto.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in S3_CREDENTIALS.items():
                patch.setenv(name, value)
            client = boto3.client("s3", endpoint_url=endpoint, region_name=S3_REGION)
            wait_until_up(lambda: client.create_bucket(Bucket=bucket), server, log, "moto", (EndpointConnectionError,))
            yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


def bucket_keys(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    """Every object key under prefix (all pages: a listing returns at most 1,000 keys)."""
    pages = boto3.client("s3", endpoint_url=endpoint, region_name=S3_REGION).get_paginator("list_objects_v2")
    return [item["Key"] for page in pages.paginate(Bucket=bucket, Prefix=prefix) for item in page.get("Contents", [])]
