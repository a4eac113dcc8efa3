"""Ingests running at once (threads sharing a session): both succeed, retrying Delta conflicts, and the final
bronze equals a serial run; a file landed by two runs at once is in bronze once, and logged once when one run starts
between the other's bronze commit and its log write."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pyspark.sql import functions as F

from pipelines.bronze import ingest_log, run_ingest
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


def test_a_run_starting_between_another_runs_bronze_commit_and_its_log_write_logs_no_file_twice(
    spark, tmp_path, monkeypatch
):
    first = write_trips(tmp_path / "yellow_tripdata_2019-01-07.csv", 8, 7)
    second = write_trips(tmp_path / "yellow_tripdata_2019-01-08.csv", 5, 8)
    lake = lake_at(spark, tmp_path / "lake")
    real_write, during = ingest_log.write, {}

    def write_after_another_run(lk, log, bronze_version):  # the second run starts and ends in the first one's gap
        if not during:
            during["started"] = True
            during["run"] = run_ingest(lk, [str(second)])
        return real_write(lk, log, bronze_version)

    monkeypatch.setattr(ingest_log, "write", write_after_another_run)
    result = run_ingest(lake, [str(first)])
    assert result.counts["ingested_files"] == 1  # what the first run landed, reported by it
    assert during["run"].counts["ingested_files"] == 2  # its own file and the first run's, not yet logged
    entries = lake.read("bronze.ingest_log").where(F.col("status") == "ingested").collect()
    assert sorted(Path(e.source_file).name for e in entries) == [first.name, second.name]
    assert len({e.content_hash for e in entries}) == 2
