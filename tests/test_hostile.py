"""A hostile corpus in one glob: every file is named with its outcome, the batch completes, and every data row of a
readable file lands in bronze (malformed rows with their raw text). Byte-level files live in tests/hostile/."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from pipelines.bronze import run_ingest
from tests.test_crash_ingest import HEADER, lake_at, write_trips

COMMITTED = Path(__file__).resolve().parent / "hostile"
HUGE = 1_000_000


def trip_table(rows: int, passenger_type: pa.DataType | None = None) -> pa.Table:
    """Trips as a real TLC Parquet file types them: timestamps, integers, doubles, original column names."""
    pickups = pa.array([f"2019-01-0{1 + i % 9} 0{i % 10}:00:00" for i in range(rows)]).cast(pa.timestamp("us"))
    return pa.table(
        {
            "VendorID": pa.array([1 + i % 2 for i in range(rows)], pa.int64()),
            "tpep_pickup_datetime": pickups,
            "tpep_dropoff_datetime": pickups,
            "passenger_count": pa.array([i % 4 for i in range(rows)]).cast(passenger_type or pa.int64()),
            "trip_distance": pa.array([i * 0.5 for i in range(rows)]),
            "PULocationID": pa.array([48] * rows, pa.int32()),
        }
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    for name in COMMITTED.glob("*.csv"):
        shutil.copy(name, folder / name.name)
    (folder / "empty_2019-01.csv").write_bytes(b"")
    (folder / "header_only_2019-01.csv").write_text(HEADER + "\n")
    (folder / "garbage_2019-01.csv").write_bytes(bytes(range(256)) * 8)
    pq.write_table(trip_table(40), folder / "yellow_tripdata_2019-01.parquet")
    pq.write_table(trip_table(7, pa.string()), folder / "conflicting_type_2019-01.parquet")
    whole = (folder / "yellow_tripdata_2019-01.parquet").read_bytes()
    (folder / "truncated_2019-01.parquet").write_bytes(whole[: len(whole) // 2])
    corrupt = bytearray(whole)
    corrupt[4:200] = b"\xff" * 196  # page headers destroyed, footer intact
    (folder / "corrupt_pages_2019-01.parquet").write_bytes(bytes(corrupt))
    plain = write_trips(folder / "plain.txt", 9, 3).read_bytes()
    (folder / "plain.txt").unlink()
    (folder / "gzipped_2019-01.csv.gz").write_bytes(gzip.compress(plain))
    (folder / "truncated_2019-01.csv.gz").write_bytes(gzip.compress(plain)[:-40])
    rows = [
        f"1,2019-01-05 10:00:00,2019-01-05 10:10:00,1,{'x' * HUGE},48,68",  # a 1 MB value
        "1,2019-01-05 10:00:00,2019-01-05 10:10:00,NaN,1e308,48,68",
        "1,2019-01-05 10:00:00,2019-01-05 10:10:00,-99999999999999999999999,-Infinity,48,68",
        "1,1900-01-01 00:00:00,1900-01-01 00:10:00,1,1.0,48,68",
        "1,2100-12-31 23:00:00,2100-12-31 23:10:00,1,1.0,48,68",
    ]
    (folder / "extremes_2019-01.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    return folder


EXPECTED_FAILURES = {
    "empty_2019-01.csv": "0 bytes",
    "header_only_2019-01.csv": "no data rows",
    "garbage_2019-01.csv": "match no known taxi schema",
    "semicolon_2019-01.csv": "wrong delimiter (semicolon",
    "truncated_2019-01.parquet": "unreadable parquet",
    "corrupt_pages_2019-01.parquet": "unreadable parquet",
    "truncated_2019-01.csv.gz": "truncated gzip",
}
EXPECTED_ROWS = {
    "latin1_bytes_2019-01.csv": 3,
    "extra_fields_2019-01.csv": 3,
    "us_timestamps_2019-01.csv": 2,
    "yellow_tripdata_2019-01.parquet": 40,
    "conflicting_type_2019-01.parquet": 7,
    "gzipped_2019-01.csv.gz": 9,
    "extremes_2019-01.csv": 5,
}


@pytest.fixture(scope="module")
def ingested(spark, corpus, tmp_path_factory):
    lake = lake_at(spark, tmp_path_factory.mktemp("lake"))
    return lake, run_ingest(lake, [str(corpus / "*")])  # a glob


def test_every_file_is_named_with_its_outcome_and_the_batch_completes(ingested, corpus):
    _, result = ingested
    outcome = {Path(e["source_file"]).name: (e["status"], e["reason"] or "") for e in result.details["files"]}
    assert set(outcome) == {p.name for p in corpus.iterdir()}
    failed = {name: reason for name, (status, reason) in outcome.items() if status == "failed"}
    assert set(failed) == set(EXPECTED_FAILURES)
    for name, reason in EXPECTED_FAILURES.items():
        assert reason in failed[name], (name, failed[name])
    assert {name for name, (status, _) in outcome.items() if status == "ingested"} == set(EXPECTED_ROWS)
    assert result.status == "partial"


def test_every_data_row_of_a_readable_file_is_in_bronze(ingested):
    lake, result = ingested
    bronze = lake.read("bronze.trips")
    per_file = {Path(r[0]).name: r[1] for r in bronze.groupBy("_source_file").count().collect()}
    assert per_file == EXPECTED_ROWS
    assert result.counts["rows"] == sum(EXPECTED_ROWS.values())
    numbers = bronze.groupBy("_source_file").agg(
        F.min("_row_number"), F.max("_row_number"), F.count_distinct("_row_number")
    )
    got = {Path(r[0]).name: (r[1], r[2], r[3]) for r in numbers.collect()}
    assert got == {name: (1, rows, rows) for name, rows in EXPECTED_ROWS.items()}


def test_hostile_values_are_kept_verbatim(ingested):
    lake, _ = ingested
    bronze = lake.read("bronze.trips")
    extremes = bronze.where(F.col("_source_file").endswith("extremes_2019-01.csv"))
    assert extremes.where(F.length("trip_distance") == HUGE).count() == 1
    assert {r[0] for r in extremes.select("passenger_count").collect()} >= {"NaN", "-99999999999999999999999"}
    months = {r[0]: r[1] for r in extremes.groupBy("pickup_month").count().collect()}
    assert months == {"2019-01": 3, "1900-01": 1, "2100-12": 1}
    extra = bronze.where(F.col("_source_file").endswith("extra_fields_2019-01.csv"))
    malformed = extra.where(F.col("_corrupt_record").isNotNull()).select("_row_number", "_corrupt_record")
    corrupt = [(r[0], r[1]) for r in malformed.collect()]
    assert corrupt == [(2, "2,2019-01-05 11:00:00,2019-01-05 11:10:00,1,2.4,999,extra")]
    flags = bronze.where(F.col("_source_file").endswith("latin1_bytes_2019-01.csv")).select("store_and_fwd_flag")
    assert sorted(r[0] for r in flags.collect())[-1] == "\ufffd"  # an undecodable byte is replaced, the row kept
    typed = bronze.where(F.col("_source_file").endswith("conflicting_type_2019-01.parquet"))
    assert sorted(r[0] for r in typed.select("passenger_count").collect()) == ["0", "0", "1", "1", "2", "2", "3"]


def test_us_format_pickups_are_partitioned_by_their_month(ingested):
    lake, _ = ingested
    us = lake.read("bronze.trips").where(F.col("_source_file").endswith("us_timestamps_2019-01.csv"))
    assert {r[0] for r in us.select("pickup_month").collect()} == {"2019-01"}
    parquet = lake.read("bronze.trips").where(F.col("_source_file").endswith("yellow_tripdata_2019-01.parquet"))
    assert {r[0] for r in parquet.select("pickup_month").collect()} == {"2019-01"}
    assert parquet.where(F.col("pickup_datetime").startswith("2019-01-0")).count() == 40
