"""Which landed files are versions of one another: a TLC-named month is one file in any folder; any other name is
one file at one place; a crash that loses a log entry, or content also published under another name, retires
nothing it should not and keeps nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from lake_copies import copy_of
from pyspark.sql import functions as F

from lake import Lake, load_conf
from pipelines.bronze import ingest_log, run_ingest
from pipelines.bronze.files import file_identity
from pipelines.silver import run_silver

HEADER = (
    "vendor_id,pickup_datetime,dropoff_datetime,passenger_count,trip_distance,rate_code_id,store_and_fwd_flag,"
    "pickup_location_id,dropoff_location_id,payment_type,fare_amount,extra,mta_tax,tip_amount,tolls_amount,"
    "improvement_surcharge,total_amount,congestion_surcharge"
)
KEPT = "1,2019-03-01 18:43:31,2019-03-01 18:48:42,2,1.1,1,N,143,238,1,6.0,3.5,0.5,1.55,0.0,0.3,11.85,2.5"
DROPPED = "1,2019-03-05 09:00:00,2019-03-05 09:10:00,1,1.5,1,N,236,237,2,8.0,0.0,0.5,0.0,0.0,0.3,8.8,0.0"
BAD = "1,2019-03-03 10:00:00,2019-03-03 10:10:00,12,1.5,1,N,236,237,2,8.0,0.0,0.5,0.0,0.0,0.3,8.8,0.0"  # 12 riders
ADDED = "2,2019-03-07 10:00:00,2019-03-07 10:30:00,1,5.0,1,N,132,236,1,20.0,0.0,0.5,0.0,0.0,0.3,20.8,0.0"


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("/l/2019-04-01/yellow_tripdata_2019-03.csv", "/l/2019-04-15/yellow_tripdata_2019-03.csv", True),
        ("/l/yellow_tripdata_2019-03.csv", "s3a://b/x/yellow_tripdata_2019-03.parquet", True),
        ("/l/green_tripdata_2019-03.csv.gz", "/m/GREEN_tripdata_2019-03.csv", True),
        ("/l/yellow_tripdata_2019-03-05.csv", "/m/yellow_tripdata_2019-03-05.csv", True),
        ("/l/yellow_tripdata_2019-03.csv", "/l/green_tripdata_2019-03.csv", False),
        ("/l/yellow_tripdata_2019-03.csv", "/l/yellow_tripdata_2019-04.csv", False),
        ("/l/yellow_tripdata_sample_2019-01.csv", "/l/r/yellow_tripdata_7500_lines_sample_2019-01.csv", False),
        ("/n/2018/10/green_tripdata.csv", "/n/2018/11/green_tripdata.csv", False),
        ("/l/yellow/2019-01.csv", "/l/green/2019-01.csv", False),
        ("/l/trips.csv", "/m/trips.csv", False),
        ("/l/trips.csv", "/l/trips.csv.gz", True),
    ],
)
def test_file_identity_is_the_tlc_name_or_else_the_place(first, second, same):
    assert (file_identity(first) == file_identity(second)) is same


def lake_at(spark, root: Path) -> Lake:
    return Lake(load_conf("test", overrides={"lake.root": str(root)}), spark)


def write(path: Path, lines: list[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return str(path)


def test_same_named_files_in_dated_folders_without_a_period_in_the_name_are_all_kept(spark, samples, tmp_path):
    """The real nested sample: 2018/10, 2018/11 and 2018/12 each hold a green_tripdata.csv of their own month."""
    lake = lake_at(spark, tmp_path / "lake")
    run_ingest(lake, [str(samples / "green" / "nested_directories_time")])
    result = run_silver(lake)
    counts = result.counts
    assert counts["bronze_read"] == 15 and counts["superseded"] == 0 and result.details["retired_hashes"] == []
    assert counts["silver_written"] + counts["quarantined"] + counts["duplicates"] == 15
    months = {r[0] for r in lake.read("silver.trips").select(F.date_format("pickup_ts", "yyyy-MM")).collect()}
    assert {"2018-10", "2018-11", "2018-12"} <= months


def test_a_republished_file_retires_a_version_whose_log_entry_a_crash_lost(spark, tmp_path, monkeypatch):
    lake = lake_at(spark, tmp_path / "lake")
    old = write(tmp_path / "2019-04-01" / "yellow_tripdata_2019-03.csv", [KEPT, DROPPED])
    monkeypatch.setattr(ingest_log, "write", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("killed")))
    with pytest.raises(ConnectionError):
        run_ingest(lake, [old])
    monkeypatch.undo()
    assert not lake.exists("bronze.ingest_log")
    run_silver(lake)

    new = write(tmp_path / "2019-04-15" / "yellow_tripdata_2019-03.csv", [KEPT, ADDED])
    landed = run_ingest(lake, [new])  # the old file is not passed again
    entries = {e["source_file"]: e for e in landed.details["files"]}
    assert "recovered" in entries[old]["reason"] and entries[old]["status"] == "ingested"
    assert entries[new]["replaces_hash"] == entries[old]["content_hash"]
    second = run_silver(lake)
    assert second.details["retired_hashes"] == [entries[old]["content_hash"]]
    trips = sorted(r[0].day for r in lake.read("silver.trips").select("pickup_ts").collect())
    assert trips == [1, 7]  # the trip the new version dropped is gone, none twice


def test_content_still_published_under_another_name_is_not_retired(spark, tmp_path):
    lake = lake_at(spark, tmp_path / "lake")
    original = write(tmp_path / "x" / "trips.csv", [KEPT, DROPPED])
    copy = tmp_path / "y" / "trips.csv"
    copy.parent.mkdir()
    copy.write_bytes(Path(original).read_bytes())
    first = run_ingest(lake, [original, str(copy)])
    assert first.counts["ingested_files"] == 1 and first.counts["duplicate_files"] == 1
    run_silver(lake)

    write(tmp_path / "x" / "trips.csv", [KEPT, ADDED])  # x/trips.csv republished; y/trips.csv still holds DROPPED
    run_ingest(lake, [original])
    second = run_silver(lake)
    assert second.details["retired_hashes"] == [] and second.counts["superseded"] == 0
    trips = sorted(r[0].day for r in lake.read("silver.trips").select("pickup_ts").collect())
    assert trips == [1, 5, 7]

    Path(original).write_bytes(copy.read_bytes())  # x/trips.csv goes back to its first content, landed as y's
    assert run_ingest(lake, [original]).counts["reinstated_files"] == 1
    third = run_silver(lake)
    trips = sorted(r[0].day for r in lake.read("silver.trips").select("pickup_ts").collect())
    assert trips == [1, 5] and len(third.details["retired_hashes"]) == 1


def test_an_earlier_version_published_again_replaces_the_latest(spark, tmp_path):
    from lake.doctor import OK, check_accounting

    name = "yellow_tripdata_2019-03.csv"
    a = write(tmp_path / "2019-04-01" / name, [KEPT, DROPPED])
    b = write(tmp_path / "2019-04-15" / name, [KEPT, ADDED])
    a_again = tmp_path / "2019-05-01" / name
    a_again.parent.mkdir()
    a_again.write_bytes(Path(a).read_bytes())

    def days(lake: Lake) -> list[int]:
        return sorted(r[0].day for r in lake.read("silver.trips").select("pickup_ts").collect())

    stepwise = lake_at(spark, tmp_path / "stepwise")  # silver runs after each publication
    run_ingest(stepwise, [a])
    together = copy_of(stepwise, tmp_path / "together")  # silver runs once, after all three
    run_silver(stepwise)
    run_ingest(stepwise, [b])
    late = copy_of(stepwise, tmp_path / "late")  # silver runs after A, then only after B and A again
    run_silver(stepwise)
    run_ingest(stepwise, [str(a_again)])
    run_silver(stepwise)
    run_ingest(together, [b])
    run_ingest(together, [str(a_again)])
    run_ingest(late, [str(a_again)])
    assert days(stepwise) == [1, 5]  # A's trips, not B's
    third = stepwise.read("quality.stage_runs").where(F.col("stage") == "silver").orderBy("finished_at").collect()[-1]
    assert third.counts["reinstated"] == 2 and third.counts["retired_trips"] == 2
    assert check_accounting(stepwise).status == OK, check_accounting(stepwise).detail
    again = run_ingest(stepwise, [str(a_again)])
    assert again.counts["duplicate_files"] == 1 and again.counts["reinstated_files"] == 0
    assert run_silver(stepwise).counts.get("reinstated", 0) == 0 and days(stepwise) == [1, 5]

    logged = together.read("bronze.ingest_log").where(F.col("status") == "reinstated").collect()
    assert len(logged) == 1 and logged[0].rows == 2
    run_silver(together)  # all three publications in one batch
    assert days(together) == [1, 5]
    assert check_accounting(together).status == OK, check_accounting(together).detail
    run_silver(late)
    assert days(late) == [1, 5]
    assert check_accounting(late).status == OK, check_accounting(late).detail


def test_passing_the_landing_folder_again_publishes_no_earlier_version_again(spark, tmp_path):
    """Routine: every day's ingestion is given the whole landing folder, which still holds the first version."""
    landing, name = tmp_path / "landing", "yellow_tripdata_2019-03.csv"
    write(landing / "2019-04-01" / name, [KEPT, DROPPED])
    lake = lake_at(spark, tmp_path / "lake")
    run_ingest(lake, [str(landing)])
    run_silver(lake)
    write(landing / "2019-04-15" / name, [KEPT, ADDED])
    for _ in range(2):
        again = run_ingest(lake, [str(landing)])
        assert again.counts["reinstated_files"] == 0
        run_silver(lake)
        assert sorted(r[0].day for r in lake.read("silver.trips").select("pickup_ts").collect()) == [1, 7]
    # A's bytes published once more in a later dated folder, the whole landing folder given: the later place wins
    (landing / "2019-05-01").mkdir()
    (landing / "2019-05-01" / name).write_bytes((landing / "2019-04-01" / name).read_bytes())
    assert run_ingest(lake, [str(landing)]).counts["reinstated_files"] == 1
    run_silver(lake)
    assert sorted(r[0].day for r in lake.read("silver.trips").select("pickup_ts").collect()) == [1, 5]
    fresh = lake_at(spark, tmp_path / "fresh")  # the same folder into a new lake in one run
    run_ingest(fresh, [str(landing)])
    run_silver(fresh)
    assert sorted(r[0].day for r in fresh.read("silver.trips").select("pickup_ts").collect()) == [1, 5]


def test_restoring_bronze_to_before_a_version_landed_rebuilds_silver_on_the_version_before(spark, tmp_path):
    from lake.doctor import OK, check_accounting
    from lake.maintenance import restore

    lake, name = lake_at(spark, tmp_path / "lake"), "yellow_tripdata_2019-03.csv"
    run_ingest(lake, [write(tmp_path / "2019-04-01" / name, [KEPT, DROPPED])])
    run_silver(lake)
    before = lake.version("bronze.trips")
    run_ingest(lake, [write(tmp_path / "2019-04-15" / name, [KEPT, ADDED])])
    run_silver(lake)
    restore(lake, "bronze.trips", before)  # B undone: the log still names it the latest version
    rebuilt = run_silver(lake)
    assert rebuilt.counts["superseded"] == 0
    assert sorted(r[0].day for r in lake.read("silver.trips").select("pickup_ts").collect()) == [1, 5]
    assert check_accounting(lake).status == OK, check_accounting(lake).detail


def test_an_earlier_version_read_again_with_a_quarantined_row_keeps_the_doctor_right(spark, tmp_path):
    from lake.doctor import OK, check_accounting

    lake, name = lake_at(spark, tmp_path / "lake"), "yellow_tripdata_2019-03.csv"
    a = write(tmp_path / "2019-04-01" / name, [KEPT, BAD])
    run_ingest(lake, [a])
    run_silver(lake)
    run_ingest(lake, [write(tmp_path / "2019-04-15" / name, [KEPT, ADDED])])  # silver does not run in between
    a_again = tmp_path / "2019-05-01" / name
    a_again.parent.mkdir()
    a_again.write_bytes(Path(a).read_bytes())
    assert run_ingest(lake, [str(a_again)]).counts["reinstated_files"] == 1
    result = run_silver(lake)
    assert result.counts["reinstated"] == 1  # BAD was read again but is the quarantine row already there
    assert sorted(r[0].day for r in lake.read("silver.trips").select("pickup_ts").collect()) == [1]
    assert lake.read("silver.quarantine").where(F.col("_released_run_id").isNull()).count() == 1
    assert check_accounting(lake).status == OK, check_accounting(lake).detail


def test_a_new_version_and_the_earlier_one_again_arriving_between_two_runs_leave_the_later_place(spark, tmp_path):
    landing, name = tmp_path / "landing", "yellow_tripdata_2019-03.csv"
    first = write(landing / "2019-04-01" / name, [KEPT, DROPPED])
    lake = lake_at(spark, tmp_path / "lake")
    run_ingest(lake, [str(landing)])
    run_silver(lake)
    write(landing / "2019-04-15" / name, [KEPT, ADDED])
    (landing / "2019-05-01").mkdir()
    (landing / "2019-05-01" / name).write_bytes(Path(first).read_bytes())
    statuses = {e["source_file"].split("/")[-2]: e["status"] for e in run_ingest(lake, [str(landing)]).details["files"]}
    assert statuses == {"2019-04-01": "duplicate", "2019-04-15": "ingested", "2019-05-01": "reinstated"}
    run_silver(lake)
    assert sorted(r[0].day for r in lake.read("silver.trips").select("pickup_ts").collect()) == [1, 5]
