"""Crash safety of `lake score`: a run SIGKILLed while it writes leaves no partial commit, and the rerun scores
each trip exactly once, with the same predictions as a run that never crashed."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_train_support import make_lake, synthetic_features, write_params

from pipelines.score import PREDICTIONS_TABLE, run_score
from pipelines.train import run_train
from pipelines.train.model import FEATURES_TABLE

PROJECT = Path(__file__).resolve().parents[1]
START = dt.date(2019, 3, 1)
START_SECONDS = 600  # a ceiling, not a wait: the child's own Spark and MLflow start-up on 2 busy cores
POLL_SECONDS = 0.02

# The score stage in a process of its own, with its own SparkSession, on the lake given by argv.
CHILD = """
import sys
from lake import Lake, load_conf
from pipelines.score import run_score
overrides = {"lake.root": sys.argv[1], "model.params": sys.argv[2], "mlflow.tracking_uri": None}
run_score(Lake(load_conf("test", overrides=overrides)))
"""


def data_files(table_path: Path) -> set[Path]:
    return set(table_path.rglob("*.parquet")) if table_path.exists() else set()


def score_and_kill_mid_write(root: Path, params: Path, table_path: Path) -> str:
    """Runs the score stage in a child process and SIGKILLs it (Python and its JVM) as soon as it has written a new
    data file of gold.trip_predictions; returns what the child had reached."""
    before = data_files(table_path)
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "LAKE_ENV": "test"}
    env.pop("MLFLOW_TRACKING_URI", None)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(params)],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + START_SECONDS
    try:
        while child.poll() is None and time.monotonic() < deadline:
            if data_files(table_path) - before:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=30)
                return "killed after writing data files"
            time.sleep(POLL_SECONDS)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
    pytest.fail(f"the score child never wrote a data file (exit {child.returncode}): {child.stderr.read()[-2000:]}")


def predictions(lake) -> list[tuple]:
    rows = lake.read(PREDICTIONS_TABLE).select("trip_key", "predicted_duration_min", "model_version").collect()
    return sorted((row[0], round(row[1], 9), row[2]) for row in rows)


def test_a_score_run_killed_mid_write_reruns_to_the_clean_result(spark, tmp_path):
    params = write_params(tmp_path / "conf", split={"windows": 1})  # one evaluation window: scoring needs the model
    lake = make_lake(spark, tmp_path / "lake", params)
    lake.append(FEATURES_TABLE, synthetic_features(spark, START, 12, 25, seed=21))
    run_train(lake)
    run_score(lake)
    lake.append(FEATURES_TABLE, synthetic_features(spark, START + dt.timedelta(days=12), 4, 40, seed=22))
    shutil.copytree(tmp_path / "lake", tmp_path / "clean")
    clean = make_lake(spark, tmp_path / "clean", params)
    run_score(clean)
    committed = lake.version(PREDICTIONS_TABLE)
    scored_before = lake.read(PREDICTIONS_TABLE).count()

    reached = score_and_kill_mid_write(tmp_path / "lake", params, Path(lake.path(PREDICTIONS_TABLE)))

    # Delta commits are atomic: either the child's MERGE committed whole, or the table is as it was.
    after_kill = lake.read(PREDICTIONS_TABLE).count()
    assert after_kill in (scored_before, lake.read(FEATURES_TABLE).count()), reached
    assert lake.version(PREDICTIONS_TABLE) in (committed, committed + 1)

    rerun = run_score(lake)

    trips = lake.read(FEATURES_TABLE).count()
    assert rerun.counts["scored"] == trips - after_kill
    assert len(predictions(lake)) == trips == len({row[0] for row in predictions(lake)})
    assert predictions(lake) == predictions(clean)
