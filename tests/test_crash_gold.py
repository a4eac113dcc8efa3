"""Crash safety of gold: SIGKILL a gold run in the middle of its writes, rerun, and get what a clean run gives.

The run is killed inside the Spark job that writes gold.trip_features, while or after the other three tables (written
at the same time) commit: tables then disagree, and the watermark was not advanced. Each table's replaceWhere is one
atomic Delta commit (nothing of the killed write is visible), and the rerun recomputes the same days from the same
watermark.

Run as a script (`python tests/test_crash_gold.py LAKE_ROOT MARKER`) this file is the victim: a gold run in its own
small Spark whose trip_features write stalls on one row, after writing MARKER.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STALL_KEY = "d6_1"  # the trip whose trip_features row stalls the victim's write
GOLD = ["gold.pair_stats", "gold.trip_features", "gold.zone_daily", "gold.hourly_demand"]


def summary(lake, table: str) -> tuple[int, str]:
    """Row count and an order-independent checksum (sum of per-row digests) of a table."""
    rows = lake.read(table).collect()
    digest = sum(int(hashlib.sha256(repr(tuple(row)).encode()).hexdigest()[:16], 16) for row in rows) % 2**64
    return len(rows), f"{digest:016x}"


def test_gold_killed_mid_write_then_rerun_equals_a_clean_run(lake, tmp_path):
    from test_gold import silver_frame, trip  # tests/ is on sys.path under pytest

    from pipelines.gold import run_gold

    lake = type(lake)(lake.conf.with_overrides({"gold.pair_window_days": 2}), lake.spark)
    days = [trip(f"d{d}_{k}", f"2019-01-0{d} 1{k}:00:00", pu=10 + k % 2, do=20, duration=float(3 * d + k))
            for d in range(1, 6) for k in range(3)]  # fmt: skip
    lake.append("silver.trips", silver_frame(lake.spark, days))
    run_gold(lake)
    # New data for the run that will be killed: day 6 arrives and a day 4 trip is deleted.
    lake.append("silver.trips", silver_frame(lake.spark, [trip(f"d6_{k}", f"2019-01-06 1{k}:00:00") for k in range(3)]))
    lake.spark.sql(f"DELETE FROM delta.`{lake.path('silver.trips')}` WHERE trip_key = 'd4_0'")

    reference = type(lake)(lake.conf.with_overrides({"lake.root": str(tmp_path / "reference")}), lake.spark)
    shutil.copytree(lake.root, reference.root)
    clean = run_gold(reference)
    assert clean.details["mode"] == "incremental"
    before = {table: lake.version(table) for table in GOLD}
    watermark = lake.watermark("gold", "silver.trips")

    marker = tmp_path / "stalled"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SPARK_SHUFFLE_PARTITIONS": "2"}
    victim = subprocess.Popen(
        [sys.executable, __file__, lake.root, str(marker)],
        cwd=ROOT,
        env=env,
        start_new_session=True,  # its own process group: the JVM and Python workers die with it
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert victim.poll() is None, f"the victim ended before stalling: {victim.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "the victim never reached the trip_features write"
            time.sleep(0.2)
        time.sleep(1)
    finally:
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
    assert victim.returncode == -signal.SIGKILL

    # Killed inside the trip_features write, the other tables' writes (run at the same time) done or not: nothing of
    # trip_features is visible, each other table is at its old version or one commit later, the watermark stayed.
    after = {table: lake.version(table) for table in GOLD}
    assert after["gold.trip_features"] == before["gold.trip_features"]
    assert all(after[table] in (before[table], before[table] + 1) for table in GOLD), (before, after)
    assert lake.watermark("gold", "silver.trips") == watermark

    rerun = run_gold(lake)
    assert rerun.details["mode"] == "incremental"
    assert rerun.details["days"] == clean.details["days"]
    assert {table: summary(lake, table) for table in GOLD} == {table: summary(reference, table) for table in GOLD}


def _victim(root: str, marker: str) -> None:
    """A gold run whose gold.trip_features write stalls (inside the Spark job) on STALL_KEY's row."""
    from pyspark.sql import functions as F

    import lake.delta as delta
    from lake import Lake, load_conf
    from lake.session import build_spark
    from pipelines.gold import run_gold

    real_write = delta.write

    def stalling_write(df, path, mode, partition_by=None, **options):
        if path.rstrip("/").endswith("gold/trip_features"):

            @F.udf("string")
            def stall(key: str) -> str:
                if key == STALL_KEY:
                    Path(marker).write_text("writing gold.trip_features")
                    time.sleep(600)
                return key

            df = df.withColumn("trip_key", stall("trip_key"))
        return real_write(df, path, mode, partition_by, **options)

    delta.write = stalling_write
    conf = load_conf("test", overrides={"lake.root": root, "gold.pair_window_days": 2, "spark.driver_memory": "1g"})
    run_gold(Lake(conf, build_spark(conf)))


if __name__ == "__main__":
    _victim(sys.argv[1], sys.argv[2])
