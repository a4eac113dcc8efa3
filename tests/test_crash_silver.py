"""Crash safety of silver: a run killed mid-write, or stopped between its commits, then rerun, equals a clean run."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lake import Lake, load_conf
from pipelines.schemas import BRONZE_TRIPS
from pipelines.silver import run_silver
from pipelines.silver import write as silver_write

ROOT = Path(__file__).resolve().parents[1]
KILL_AFTER_SECONDS = 3.0  # after the child signals it is inside the silver.trips write
CHILD_TIMEOUT_SECONDS = 420  # a second JVM plus a silver run: minutes on a loaded 2-core machine

# The child: its own small Spark; the silver.trips append is slowed (each task sleeps) so the kill lands mid-write.
CHILD = """
import sys, time
from pathlib import Path
from lake import Lake, load_conf
from pipelines.silver import run_silver
from pipelines.silver import write

root, marker = sys.argv[1], Path(sys.argv[2])
lake = Lake(load_conf("test", overrides={"lake.root": root, "spark.shuffle_partitions": 1}))
real_append = write.append_trips

def slow(batches):
    time.sleep(120)
    yield from batches

def slow_append(lk, rows):
    marker.write_text("writing")
    return real_append(lk, rows.mapInArrow(slow, rows.schema))

write.append_trips = slow_append
run_silver(lake, run_id="silver-killed")
"""


def bronze(spark, rows: int = 40):
    """bronze.trips text rows: distinct trips, a repeated trip, and every fifth row with a negative fare."""
    records = []
    for n in range(1, rows + 1):
        trip = min(n, rows - 1)  # the last row repeats the one before: a duplicate
        minute = trip % 50
        record = dict.fromkeys(BRONZE_TRIPS.fieldNames())
        record |= {
            "taxi_type": "yellow",
            "vendor_id": "1",
            "pickup_datetime": f"2019-01-{1 + trip % 28:02d} 10:{minute:02d}:00",
            "dropoff_datetime": f"2019-01-{1 + trip % 28:02d} 11:{minute:02d}:00",
            "passenger_count": "1",
            "trip_distance": "2.5",
            "pickup_location_id": "230",
            "dropoff_location_id": "48",
            "payment_type": "1",
            "fare_amount": "-3.0" if n % 5 == 0 else f"{10 + trip}.0",
            "total_amount": "12.0",
            "_source_file": "yellow_tripdata_2019-01.csv",
            "_source_hash": "hash-2019-01",
            "_source_month": "2019-01",
            "_row_number": n,
            "_ingested_at": dt.datetime(2019, 2, 1),
            "_run_id": "ingest-test",
            "pickup_month": "2019-01",
        }
        records.append(tuple(record[name] for name in BRONZE_TRIPS.fieldNames()))
    return spark.createDataFrame(records, BRONZE_TRIPS)


def new_lake(spark, root: Path) -> Lake:
    lake = Lake(load_conf("test", overrides={"lake.root": str(root)}), spark)
    lake.append("bronze.trips", bronze(spark))
    return lake


def fingerprint(lake: Lake) -> dict:
    """Row counts and order-independent checksums of the silver and quarantine keys."""
    trips = lake.read("silver.trips").agg(
        F.count(F.lit(1)), F.count_distinct("trip_key"), F.sum(F.xxhash64("trip_key").cast("decimal(38,0)"))
    )
    quarantine = lake.read("silver.quarantine").agg(
        F.count(F.lit(1)),
        F.count_distinct("_source_hash", "_row_number"),
        F.sum(F.xxhash64("_source_hash", "_row_number").cast("decimal(38,0)")),  # no long overflow
    )
    return {"trips": tuple(trips.first()), "quarantine": tuple(quarantine.first())}


@pytest.fixture(scope="module")
def clean(spark, tmp_path_factory):
    lake = new_lake(spark, tmp_path_factory.mktemp("clean") / "lake")
    run_silver(lake)
    return fingerprint(lake)


def test_clean_run_fingerprint_is_not_trivial(clean):
    rows, distinct, _ = clean["trips"]
    assert rows == distinct > 0 and clean["quarantine"][0] > 0


def test_a_run_killed_during_its_silver_write_leaves_no_trace_and_the_rerun_equals_a_clean_run(spark, tmp_path, clean):
    lake = new_lake(spark, tmp_path / "lake")
    marker = tmp_path / "writing"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, lake.root, str(marker)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the kill takes the child's JVM and workers too
    )
    deadline = time.monotonic() + CHILD_TIMEOUT_SECONDS
    try:
        while not marker.exists():
            if child.poll() is not None:
                pytest.fail(f"the child ended before its write: {child.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the child did not reach its silver write in time")
            time.sleep(0.2)
        time.sleep(KILL_AFTER_SECONDS)
        if child.poll() is not None:
            pytest.fail(
                f"the child ended (exit {child.returncode}) before the kill: {child.stderr.read().decode()[-3000:]}"
            )
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert lake.read("silver.trips").count() == 0  # no partial commit visible
    assert lake.watermark("silver", "bronze.trips") is None
    rerun = run_silver(lake)
    assert fingerprint(lake) == clean
    assert rerun.counts["silver_written"] == clean["trips"][0]


def test_a_run_stopped_between_the_silver_and_quarantine_commits_reruns_without_duplicates(
    spark, tmp_path, clean, monkeypatch
):
    lake = new_lake(spark, tmp_path / "lake")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("stopped between the silver and the quarantine commit")

    monkeypatch.setattr(silver_write, "append_quarantine", crash)
    with pytest.raises(KeyboardInterrupt):
        run_silver(lake)
    monkeypatch.undo()
    assert lake.read("silver.trips").count() == clean["trips"][0]  # silver committed, quarantine and watermark not
    assert lake.read("silver.quarantine").count() == 0
    assert lake.watermark("silver", "bronze.trips") is None
    rerun = run_silver(lake)
    assert fingerprint(lake) == clean
    # No watermark yet: the rerun starts silver over from bronze (as after a restore), emptying what the first wrote.
    assert rerun.details["cleared"] == {"silver.trips": clean["trips"][0], "silver.quarantine": 0}
    assert rerun.counts["silver_written"] == clean["trips"][0] and rerun.counts["duplicates_in_silver"] == 0
    run_silver(lake)  # nothing new: the watermark moved only after both commits
    assert fingerprint(lake) == clean
