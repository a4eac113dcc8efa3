"""Servers the scale-out tests start on 127.0.0.1 (a shared MLflow tracking server) and how they wait for one."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lake.standalone import free_port

START_SECONDS = 120


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
    s3:// URI) that it serves to clients (--serve-artifacts): clients need no access to the store themselves."""
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
