"""Ingests running at once (threads sharing a session): both succeed, retrying Delta conflicts, and the final
bronze equals a serial run; a file landed by two runs at once is in bronze once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pyspark.sql import functions as F

from pipelines.bronze import run_ingest
from tests.test_crash_ingest import fingerprint, lake_at, write_trips


def per_file(lake) -> dict[str, int]:
    rows = lake.read("bronze.trips").groupBy("_source_file").count().collect()
    return {Path(r[0]).name: r[1] for r in rows}


def run_together(lake, batches: list[list[str]]):
    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        return list(pool.map(lambda paths: run_ingest(lake, paths), batches))


def test_two_ingests_of_different_files_at_once_equal_a_serial_run(spark, tmp_path):
    files = [write_trips(tmp_path / f"yellow_tripdata_2019-01-{d:02d}.csv", 5 + d, d) for d in (1, 2, 3, 4)]
    first, second = [str(f) for f in files[:2]], [str(f) for f in files[2:]]
    serial = lake_at(spark, tmp_path / "serial")
    run_ingest(serial, first)
    run_ingest(serial, second)

    together = lake_at(spark, tmp_path / "together")
    results = run_together(together, [first, second])
    assert [r.status for r in results] == ["success", "success"]
    assert [r.counts["ingested_files"] for r in results] == [2, 2]
    assert fingerprint(together) == fingerprint(serial)
    assert per_file(together) == per_file(serial)
    logged = together.read("bronze.ingest_log").where(F.col("status") == "ingested").count()
    assert logged == 4


def test_the_same_file_ingested_twice_at_once_lands_once(spark, tmp_path):
    trips = write_trips(tmp_path / "yellow_tripdata_2019-01-07.csv", 8, 7)
    lake = lake_at(spark, tmp_path / "lake")
    run_ingest(lake, [str(write_trips(tmp_path / "seed_2019-01.csv", 3, 9))])  # the table exists: fence applies
    results = run_together(lake, [[str(trips)], [str(trips)]])
    assert {r.status for r in results} == {"success"}
    assert per_file(lake) == {"seed_2019-01.csv": 3, "yellow_tripdata_2019-01-07.csv": 8}
    assert fingerprint(lake)[:2] == (11, 11)
