"""Crash safety of ingestion: a crash at any point, then a retry, leaves each source row in bronze exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lake import Lake, load_conf
from pipelines.bronze import ingest_log, run_ingest

ROOT = Path(__file__).resolve().parents[1]
HEADER = (
    "vendor_id,pickup_datetime,dropoff_datetime,passenger_count,trip_distance,pickup_location_id,dropoff_location_id"
)


def write_trips(path: Path, rows: int, day: int) -> Path:
    """A small TLC-like CSV whose rows all differ (the row number is in the distance)."""
    lines = [HEADER] + [
        f"1,2019-01-{day:02d} {i % 24:02d}:{i % 60:02d}:00,2019-01-{day:02d} {i % 24:02d}:{i % 60:02d}:30,1,{i}.5,48,68"
        for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def fingerprint(lake: Lake) -> tuple[int, int, int]:
    """(rows, distinct (file, row) keys, an order-independent checksum of the keys) of bronze.trips."""
    if not lake.exists("bronze.trips"):
        return (0, 0, 0)
    key = F.xxhash64("_source_hash", "_row_number").cast("decimal(38,0)")
    row = (
        lake.read("bronze.trips")
        .agg(F.count(F.lit(1)), F.count_distinct("_source_hash", "_row_number"), F.sum(key))
        .first()
    )
    return (row[0], row[1], int(row[2] or 0))


def lake_at(spark, root: Path) -> Lake:
    return Lake(load_conf("test", overrides={"lake.root": str(root)}), spark)


def test_retry_after_a_crash_between_the_bronze_commit_and_the_log_adds_nothing(spark, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    landing.mkdir()
    write_trips(landing / "yellow_tripdata_2019-01-01.csv", 6, 1)
    write_trips(landing / "yellow_tripdata_2019-01-02.csv", 4, 2)
    lake = lake_at(spark, tmp_path / "lake")

    def crash(*args, **kwargs):
        raise ConnectionError("driver lost between the bronze commit and the log")

    monkeypatch.setattr(ingest_log, "write", crash)
    with pytest.raises(ConnectionError):
        run_ingest(lake, [str(landing)])
    monkeypatch.undo()
    committed = fingerprint(lake)
    assert committed[:2] == (10, 10)
    assert not lake.exists("bronze.ingest_log")

    retry = run_ingest(lake, [str(landing)])
    assert fingerprint(lake) == committed  # nothing appended twice
    assert retry.counts["ingested_files"] == 2 and retry.counts["rows"] == 10  # the log is repaired from bronze
    assert all("recovered" in entry["reason"] for entry in retry.details["files"])
    again = run_ingest(lake, [str(landing)])
    assert again.counts["duplicate_files"] == 2 and again.counts["rows"] == 0
    assert fingerprint(lake) == committed


INGEST_SCRIPT = textwrap.dedent(
    """
    import sys
    from lake import Lake, load_conf
    from pipelines.bronze import run_ingest
    lake = Lake(load_conf("test", overrides={"lake.root": sys.argv[1]}))
    result = run_ingest(lake, [sys.argv[2]])
    print("DONE", result.status, result.counts["rows"], flush=True)
    """
)


def test_sigkill_in_the_middle_of_the_write_then_a_restart_loses_and_duplicates_nothing(spark, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    for day in (1, 2, 3):
        write_trips(landing / f"yellow_tripdata_2019-01-{day:02d}.csv", 5_000, day)
    clean = lake_at(spark, tmp_path / "clean")
    run_ingest(clean, [str(landing)])
    expected = fingerprint(clean)
    assert expected[:2] == (15_000, 15_000)

    root = tmp_path / "crashed"
    script = tmp_path / "ingest.py"
    script.write_text(INGEST_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(script), str(root), str(landing)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill reaches the JVM too
    )
    table = root / "bronze" / "trips"
    deadline = time.monotonic() + 240
    try:
        # Kill at the first data file written: inside the bronze write job, before its commit.
        while time.monotonic() < deadline and child.poll() is None:
            if table.exists() and any(table.rglob("*.parquet")):
                break
            time.sleep(0.05)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL or b"DONE" in child.stdout.read()

    crashed = lake_at(spark, root)
    visible = fingerprint(crashed)
    assert visible in {(0, 0, 0), expected}  # no partial commit is ever visible
    run_ingest(crashed, [str(landing)])
    assert fingerprint(crashed) == expected
