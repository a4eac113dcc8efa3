"""A Spark standalone cluster (one master, N workers) on 127.0.0.1 from the installed pyspark distribution.

It exists so that the cluster path (`spark.master: spark://...`) is tested and measured on one machine with no
other install: `python -m lake.standalone --workers 2` prints the master URL and keeps the cluster up until
Ctrl-C; tests and benchmarks use `StandaloneCluster` as a context manager.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from lake.jars import SparkSetupError, check_java

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


def spark_home() -> Path:
    """The pyspark package folder: it holds bin/spark-class and the Spark JARs."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StandaloneCluster:
    """Starts a master and `workers` workers (each `cores` cores, `memory` of executor memory) on 127.0.0.1;
    `url` is the master URL to put in `spark.master` (or SPARK_MASTER). Logs go to `log_dir`."""

    def __init__(self, workers: int = 2, cores: int = 1, memory: str = "2g", log_dir: str | None = None) -> None:
        self.workers, self.cores, self.memory = workers, cores, memory
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="spark-standalone-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self._processes: list[subprocess.Popen] = []
        self._logs: list = []

    def _env(self) -> dict[str, str]:
        home = str(spark_home())
        # Executors start Python workers with PYSPARK_PYTHON: the interpreter that has pyspark, pyarrow and numpy.
        return {**os.environ, "SPARK_HOME": home, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}

    def _start(self, name: str, *args: str) -> None:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop(), after the process
        self._logs.append(log)
        command = [str(spark_home() / "bin" / "spark-class"), *args]
        self._processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self._env()))

    def status(self) -> dict:
        """The master's JSON status (workers, applications)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as response:
            return json.load(response)

    def alive_workers(self) -> int:
        """Workers the master has registered; 0 while its UI is not up. Spark's UI listens before all its pages are
        attached: until `/json` is, the master's HTML page answers for it."""
        try:
            return sum(1 for worker in self.status()["workers"] if worker["state"] == "ALIVE")
        except (OSError, ValueError):  # not listening yet, or not the JSON page yet (json's decode error)
            return 0

    def start(self, timeout: float = 90.0) -> StandaloneCluster:
        check_java()
        self._start("master", MASTER_CLASS, "--host", "127.0.0.1", "--port", str(self.port),
                    "--webui-port", str(self.ui_port))  # fmt: skip
        for number in range(self.workers):
            work_dir = self.log_dir / f"worker-{number}"
            options = ["--cores", str(self.cores), "--memory", self.memory, "--webui-port", "0"]
            self._start(f"worker-{number}", WORKER_CLASS, "--host", "127.0.0.1", *options,
                        "--work-dir", str(work_dir), self.url)  # fmt: skip
        deadline = time.monotonic() + timeout
        while self.alive_workers() < self.workers:
            if any(process.poll() is not None for process in self._processes) or time.monotonic() > deadline:
                self.stop()
                raise SparkSetupError(
                    f"the standalone cluster did not come up with {self.workers} worker(s) within {timeout:.0f} s; "
                    f"see the logs in {self.log_dir}"
                )
            time.sleep(0.5)
        return self

    def stop(self) -> None:
        for process in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a Spark standalone cluster on 127.0.0.1 until Ctrl-C")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1, help="cores per worker")
    parser.add_argument("--memory", default="2g", help="executor memory per worker")
    args = parser.parse_args(argv)
    with StandaloneCluster(args.workers, args.cores, args.memory) as cluster:
        print(f"master {cluster.url} (UI http://127.0.0.1:{cluster.ui_port}); logs in {cluster.log_dir}")
        print(f"run the pipeline on it: SPARK_MASTER={cluster.url} lake run daily --landing data/sample")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
