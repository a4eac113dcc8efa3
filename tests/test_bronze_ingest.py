"""Ingesting the real TLC samples and broken files: counts, metadata, idempotency, nothing lost."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lake import Lake, delta, load_conf
from pipelines.bronze import run_ingest

YELLOW_RENAMED = "yellow/yellow_tripdata_sample_2019-01.csv"
YELLOW_MIXED = "yellow/random_subsamples/yellow_tripdata_7500_lines_sample_2019-01.csv"
YELLOW_ORIGINAL = "yellow/yellow_tripdata_sample_2021.csv"
GREEN_FOLDER = "green"


@pytest.fixture(scope="session")
def tlc(request) -> Path:
    """The real samples: $TLC_SAMPLES when set (a worktree away from ../shared), else conftest's `samples`."""
    override = os.environ.get("TLC_SAMPLES")
    return Path(override) if override else request.getfixturevalue("samples")


def data_rows(path: Path) -> int:
    with path.open(newline="") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


@pytest.fixture(scope="module")
def landing(tlc, tmp_path_factory) -> Path:
    """Real samples in every naming, plus broken files, in one landing folder."""
    folder = tmp_path_factory.mktemp("landing")
    samples = tlc
    for name in (YELLOW_RENAMED, YELLOW_MIXED, YELLOW_ORIGINAL):
        shutil.copy(samples / name, folder / Path(name).name)
    shutil.copytree(samples / GREEN_FOLDER, folder / "green")
    bad = folder / "bad"
    bad.mkdir()
    (bad / "empty.csv").write_bytes(b"")
    (bad / "header_only_2019-05.csv").write_text((samples / YELLOW_RENAMED).open().readline())
    (bad / "garbage.parquet").write_bytes(bytes(range(256)) * 40)
    (bad / "garbage.csv").write_bytes(b"\x00\xff\xfe" * 500)
    (bad / "zones_wrong_header.csv").write_text("LocationID,Borough,Zone\n1,EWR,Newark Airport\n")
    lines = (samples / YELLOW_RENAMED).read_text().splitlines(keepends=True)[:51]
    lines[10] = lines[10].rstrip("\r\n") + ",999,extra-field\r\n"  # too many fields
    truncated = "".join(lines)[:-30]  # cut in the middle of the last row
    (bad / "yellow_tripdata_2019-03_damaged.csv").write_text(truncated)
    return folder


@pytest.fixture(scope="module")
def ingested(spark, landing, tmp_path_factory):
    lake = Lake(load_conf("test", overrides={"lake.root": str(tmp_path_factory.mktemp("lake"))}), spark)
    # Small splits, so files are read by several tasks and row numbers must stitch partitions together.
    spark.conf.set("spark.sql.files.maxPartitionBytes", "256k")
    try:
        result = run_ingest(lake, [str(landing)])
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    return lake, result


def test_row_counts_equal_the_source_files_data_rows(ingested, landing):
    lake, result = ingested
    per_file = {
        r["_source_file"]: r["count"] for r in lake.read("bronze.trips").groupBy("_source_file").count().collect()
    }
    good = [p for p in landing.rglob("*.csv") if "bad" not in p.parts]
    assert {str(p): data_rows(p) for p in good}.items() <= per_file.items()
    assert result.counts["rows"] == sum(per_file.values())


def test_broken_files_are_reported_and_the_good_files_landed(ingested, landing):
    lake, result = ingested
    failed = {Path(e["source_file"]).name: e["reason"] for e in result.details["files"] if e["status"] == "failed"}
    assert set(failed) == {
        "empty.csv",
        "header_only_2019-05.csv",
        "garbage.parquet",
        "garbage.csv",
        "zones_wrong_header.csv",
    }
    assert "0 bytes" in failed["empty.csv"]
    assert "no data rows" in failed["header_only_2019-05.csv"]
    assert "unreadable parquet" in failed["garbage.parquet"]
    assert "match no known taxi schema" in failed["zones_wrong_header.csv"]
    assert result.status == "partial"
    logged = lake.read("bronze.ingest_log").where(F.col("status") == "failed").count()
    assert logged == len(failed)


def test_malformed_rows_are_kept_with_their_raw_text(ingested, landing):
    lake, _ = ingested
    damaged = str(landing / "bad" / "yellow_tripdata_2019-03_damaged.csv")
    rows = lake.read("bronze.trips").where(F.col("_source_file") == damaged)
    assert rows.count() == 50
    corrupt = {
        r["_row_number"]: r["_corrupt_record"] for r in rows.where(F.col("_corrupt_record").isNotNull()).collect()
    }
    assert sorted(corrupt) == [10, 50]
    assert corrupt[10].endswith(",999,extra-field")


def test_the_log_reports_each_files_rows_and_malformed_rows_as_bronze_holds_them(ingested, landing):
    lake, result = ingested
    bronze = lake.read("bronze.trips").groupBy("_source_file")
    held = {r[0]: (r[1], r[2]) for r in bronze.agg(F.count(F.lit(1)), F.count("_corrupt_record")).collect()}
    logged = {e["source_file"]: (e["rows"], e["corrupt_rows"]) for e in result.details["files"] if e["rows"]}
    assert logged == held
    assert logged[str(landing / "bad" / "yellow_tripdata_2019-03_damaged.csv")] == (50, 2)


def test_counts_come_from_the_commit_and_a_commit_that_disagrees_is_read_back(lake, landing, tmp_path, monkeypatch):
    from lake import changes
    from pipelines.bronze import ingest_log

    scanned: list[list[str]] = []
    counts_in_bronze = ingest_log.counts_in_bronze
    monkeypatch.setattr(
        ingest_log, "counts_in_bronze", lambda lk, hashes: scanned.append(hashes) or counts_in_bronze(lk, hashes)
    )
    damaged = landing / "bad" / "yellow_tripdata_2019-03_damaged.csv"
    lines = damaged.read_text().splitlines(keepends=True)
    (tmp_path / "yellow_tripdata_2019-04.csv").write_text("".join(lines[:9]))
    (tmp_path / "yellow_tripdata_2019-05.csv").write_text("".join(lines[:6]))
    first = run_ingest(lake, [str(damaged)])  # creates bronze (an append)
    # As an older release created bronze: no statistics on _corrupt_record. A new Lake (a new process) restores
    # the registry's setting before its write, so its commit's statistics give the counts too.
    old_setting = {"delta.dataSkippingStatsColumns": "_source_hash,_row_number,_ingested_at"}
    delta.set_properties(lake.spark, lake.path("bronze.trips"), old_setting)
    lake = Lake(lake.conf, lake.spark)
    second = run_ingest(lake, [str(tmp_path / "yellow_tripdata_2019-04.csv")])  # a fenced overwrite
    assert (first.counts["rows"], first.counts["corrupt_rows"], second.counts["rows"]) == (50, 2, 8)
    assert scanned == [[], []]  # rows and malformed rows came from the commits' file statistics: nothing read
    stats_columns = delta.table_properties(lake.spark, lake.path("bronze.trips"))["delta.dataSkippingStatsColumns"]
    assert stats_columns.split(",") == lake.spec("bronze.trips").stats_columns

    added_file_stats = changes.added_file_stats

    def one_row_short(spark, path, version):  # a file's statistics that disagree with the counted data rows
        stats = added_file_stats(spark, path, version)
        return [{**stats[0], "numRecords": stats[0]["numRecords"] - 1}, *stats[1:]]

    monkeypatch.setattr(changes, "added_file_stats", one_row_short)
    third = run_ingest(lake, [str(tmp_path / "yellow_tripdata_2019-05.csv")])
    assert (third.counts["rows"], third.counts["corrupt_rows"]) == (5, 0)
    assert len(scanned) == 4 and len(scanned[3]) == 1  # 4 rows in the statistics against 5 counted: read back


def test_row_numbers_follow_file_order_across_splits(ingested, landing):
    lake, _ = ingested
    source = landing / Path(YELLOW_RENAMED).name
    with source.open(newline="") as handle:
        lines = list(csv.reader(handle))[1:]
    rows = lake.read("bronze.trips").where(F.col("_source_file") == str(source))
    got = {r["_row_number"]: r["pickup_datetime"] for r in rows.select("_row_number", "pickup_datetime").collect()}
    assert got == {i + 1: line[1] for i, line in enumerate(lines)}


def test_metadata_naming_variants_and_rescued_columns(ingested, landing):
    lake, _ = ingested
    bronze = lake.read("bronze.trips")
    green = bronze.where(F.col("taxi_type") == "green")
    assert green.count() == 30
    assert green.where(F.col("_rescued").getItem("_c0").isNull()).count() == 0
    original = bronze.where(F.col("_source_file").endswith("sample_2021.csv"))
    assert original.where(F.col("_rescued").getItem("test_bool").isNull()).count() == 0
    assert original.where(F.col("pickup_datetime").isNull() | F.col("pickup_location_id").isNull()).count() == 0
    # The month comes from the file name only: nested_directories_time/2018/10/green_tripdata.csv has none.
    months = {r[0] for r in bronze.where(F.col("_source_file").contains("2018/10")).select("_source_month").collect()}
    assert months == {None}
    named = bronze.where(F.col("_source_file").endswith("green_tripdata_2019-02.csv")).select("_source_month")
    assert {r[0] for r in named.collect()} == {"2019-02"}
    nulls = bronze.where(F.col("_source_hash").isNull() | F.col("_run_id").isNull() | F.col("_ingested_at").isNull())
    assert nulls.count() == 0


def test_reingesting_adds_nothing_and_a_changed_file_is_a_new_version(ingested, landing, tmp_path):
    lake, _ = ingested
    before = lake.version("bronze.trips")
    again = run_ingest(lake, [str(landing)])
    assert again.counts["rows"] == 0 and again.counts["ingested_files"] == 0
    assert again.counts["duplicate_files"] == again.counts["files"] - again.counts["failed_files"]
    assert lake.version("bronze.trips") == before

    changed = landing / Path(YELLOW_ORIGINAL).name
    changed.write_text(
        changed.read_text()
        + "2,2021-10-09 10:00:00,2021-10-09 10:20:00,1,3.1,1,N,48,68,1,14,0,0.5,2,0,0.3,19.3,2.5,t\r\n"
    )
    renewed = run_ingest(lake, [str(changed)])
    assert renewed.counts["new_versions"] == 1 and renewed.counts["rows"] == 1001
    assert "new version" in renewed.details["files"][0]["reason"]


def test_missing_path_is_a_clear_error(lake, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        run_ingest(lake, [str(tmp_path / "nope.csv")])


def _trip_files(folder: Path) -> dict[str, list[str]]:
    """Three small CSV files: two with one column mapping (one with blank lines), one green; their pickup times."""
    columns = "VendorID,{0}_pickup_datetime,{0}_dropoff_datetime,passenger_count,trip_distance,PULocationID"
    # Brackets: spark.read takes a path as a glob pattern, in which `0[2]` would name a file `02` that is not there.
    files = {"yellow_tripdata_2019-01-01.csv": ("tpep", 40), "yellow_tripdata_2019-01-0[2].csv": ("tpep", 25)}
    files["green_tripdata_2019-01-03.csv"] = ("lpep", 30)
    pickups_by_file = {}
    for day, (name, (prefix, n)) in enumerate(files.items(), start=1):
        pickups = [f"2019-01-0{day} 00:{i // 60:02d}:{i % 60:02d}" for i in range(n)]
        rows = [f"1,{pickup},2019-01-0{day} 01:00:00,1,1.5,4" for pickup in pickups]
        lines = (
            [columns.format(prefix), *rows[:10], "", "   ", *rows[10:]] if day == 1 else [columns.format(prefix), *rows]
        )
        (folder / name).write_text("\r\n".join(lines) + "\r\n")
        pickups_by_file[str(folder / name)] = pickups
    return pickups_by_file


def test_files_that_map_alike_are_parsed_in_one_scan_and_numbered_per_file(spark, tmp_path, monkeypatch):
    from lake.session import session_conf
    from pipelines.bronze import ingest

    folder = tmp_path / "landing zone"  # a path the scan reports URL-encoded
    folder.mkdir()
    expected = _trip_files(folder)
    planned = [ingest.plan_file(location)[1] for location in sorted(expected)]

    def landed() -> tuple[dict, int]:
        with session_conf(spark, {"spark.sql.files.maxPartitionBytes": "700b"}):  # several splits a file
            with session_conf(spark, ingest.one_split_per_task(spark, [p.source.size_bytes for p in planned])):
                rows, landing = ingest.bronze_rows(spark, planned, "run-1")
                got = rows.select("_source_file", "_row_number", "pickup_datetime", "taxi_type").collect()
                scans = rows._jdf.queryExecution().executedPlan().toString().count("FileScan csv")
        assert len(landing) == 3
        by_file: dict[str, dict] = {}
        for r in got:
            by_file.setdefault(r["_source_file"], {})[r["_row_number"]] = (r["pickup_datetime"], r["taxi_type"])
        return by_file, scans

    by_file, scans = landed()
    assert scans == 2  # the two yellow files in one scan, the green file in another
    for location, pickups in expected.items():
        kind = "green" if "green" in location else "yellow"
        assert by_file[location] == {i + 1: (pickup, kind) for i, pickup in enumerate(pickups)}

    # When the paths the scan reports are not the ones expected, files are read one by one, with the same rows.
    monkeypatch.setattr(ingest, "scan_paths", lambda spark_, files: {f"elsewhere/{i}": "x" for i in range(len(files))})
    assert landed() == (by_file, 3)

    # A split holding more rows than the text pass counted (splits packed into one task, a file changed in between)
    # fails the read, naming the file, rather than give rows the numbers of others.
    counted = ingest.csv_line_counts

    def one_line_short(*args):  # noqa: ANN002, ANN202
        counts = counted(*args)  # None first: scan_paths still gives paths no scan reports
        return counts and {key: lines - (key == min(counts)) for key, lines in counts.items()}

    monkeypatch.setattr(ingest, "csv_line_counts", one_line_short)
    with pytest.raises(Exception, match="holds more rows than counted"):
        landed()


def test_a_batch_is_cut_into_splits_as_spark_would_cut_it_and_no_two_share_a_task(spark, tmp_path):
    from lake.session import session_conf
    from pipelines.bronze import ingest

    lone = tmp_path / "lone.csv"
    lone.write_text("".join(f"{i:09d},some text\n" for i in range(30_000)))  # 600 KB: under a split, over two costs
    small = {"spark.sql.files.maxPartitionBytes": "1m", "spark.sql.files.openCostInBytes": "64k"}
    with session_conf(spark, small):
        spark_tasks = spark.read.text(str(lone)).rdd.getNumPartitions()  # Spark's own choice, which fills the cores
        assert spark_tasks == spark.sparkContext.defaultParallelism > 1
        with session_conf(spark, ingest.one_split_per_task(spark, [lone.stat().st_size])):
            assert spark.read.text(str(lone)).rdd.getNumPartitions() == spark_tasks
        # Many small files: Spark packs them into few tasks; here each is a task (its split) of its own.
        many = [tmp_path / f"f{i}.csv" for i in range(5)]
        for path in many:
            path.write_text("a,b\n1,2\n")
        paths = [str(p) for p in many]
        assert spark.read.text(paths).rdd.getNumPartitions() < 5
        with session_conf(spark, ingest.one_split_per_task(spark, [p.stat().st_size for p in many])):
            assert spark.read.text(paths).rdd.getNumPartitions() == 5
