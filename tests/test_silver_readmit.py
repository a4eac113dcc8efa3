"""A trip two daily files hold (it crossed midnight: the second day's copy counted as a duplicate of the first's)
stays in silver when the first day is republished without it: the live file's copy replaces the retired one in the
same run. A run stopped between its commits, then run again, ends with the same tables and an accounting lake doctor
agrees with: the rerun counts what the stopped attempt retired and appended."""

from __future__ import annotations

from pathlib import Path

import pytest
from lake_copies import copy_of

from lake import Lake, load_conf
from lake.doctor import OK, check_accounting
from pipelines.bronze import run_ingest
from pipelines.silver import run as silver_run
from pipelines.silver import run_silver
from pipelines.silver import write as silver_write

HEADER = (
    "vendor_id,pickup_datetime,dropoff_datetime,passenger_count,trip_distance,rate_code_id,store_and_fwd_flag,"
    "pickup_location_id,dropoff_location_id,payment_type,fare_amount,extra,mta_tax,tip_amount,tolls_amount,"
    "improvement_surcharge,total_amount,congestion_surcharge"
)
KEPT = "1,2019-01-10 08:43:31,2019-01-10 08:48:42,2,1.1,1,N,143,238,1,6.0,3.5,0.5,1.55,0.0,0.3,11.85,2.5"
SHARED = "1,2019-01-10 23:50:00,2019-01-11 00:10:00,1,4.5,1,N,236,132,2,18.0,0.5,0.5,0.0,0.0,0.3,19.3,0.0"
CORRECTED = "2,2019-01-10 16:30:11,2019-01-10 16:44:49,1,2.63,1,N,231,88,1,12.5,1.0,0.5,3.36,0.0,0.3,18.16,2.5"
TWELFTH = "2,2019-01-12 09:00:00,2019-01-12 09:20:00,1,3.0,1,N,132,236,1,15.0,0.0,0.5,0.0,0.0,0.3,15.8,0.0"
BAD = "1,2019-01-10 12:00:00,2019-01-10 12:10:00,12,1.5,1,N,236,237,2,8.0,0.0,0.5,0.0,0.0,0.3,8.8,0.0"  # 12 riders
ELEVENTH = "2,2019-01-11 10:00:00,2019-01-11 10:30:00,1,5.0,1,N,132,236,1,20.0,0.0,0.5,0.0,0.0,0.3,20.8,0.0"

TENTH, ELEVENTH_FILE = "yellow_tripdata_2019-01-10.csv", "yellow_tripdata_2019-01-11.csv"
TWELFTH_FILE = "yellow_tripdata_2019-01-12.csv"


def write(path: Path, lines: list[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return str(path)


def trips(lake: Lake) -> list[tuple[int, int, str]]:
    rows = lake.read("silver.trips").select("pickup_ts", "_source_file").collect()
    return sorted((r.pickup_ts.day, r.pickup_ts.hour, Path(r._source_file).name) for r in rows)


def lake_with_a_shared_trip(spark, root: Path) -> tuple[Lake, str]:
    """January 10 (KEPT, SHARED) and 11 (SHARED, ELEVENTH) through silver: SHARED is the 10th's, the 11th's copy a
    duplicate. Returns the lake and the 10th's path, ready to be republished (KEPT, CORRECTED and BAD, no SHARED)."""
    lake = Lake(load_conf("test", overrides={"lake.root": str(root / "lake")}), spark)
    tenth = write(root / "2019-01-11" / TENTH, [KEPT, SHARED])
    eleventh = write(root / "2019-01-12" / ELEVENTH_FILE, [SHARED, ELEVENTH])
    run_ingest(lake, [tenth, eleventh])
    first = run_silver(lake)
    assert first.counts["silver_written"] == 3 and first.counts["duplicates"] == 1
    assert (10, 23, TENTH) in trips(lake)
    return lake, write(root / "2019-01-15" / TENTH, [KEPT, CORRECTED, BAD])


@pytest.fixture(scope="module")
def republished_once(spark, tmp_path_factory) -> Lake:
    """lake_with_a_shared_trip with the republished 10th ingested, built once: each test gets a copy."""
    lake, republished = lake_with_a_shared_trip(spark, tmp_path_factory.mktemp("readmit"))
    run_ingest(lake, [republished])
    return lake


@pytest.fixture
def republished(republished_once, tmp_path) -> Lake:
    """A copy of the module's lake, the republished 10th ingested and silver not run on it yet."""
    return copy_of(republished_once, tmp_path / "lake")


EXPECTED = [
    (10, 8, TENTH),
    (10, 16, TENTH),
    (10, 23, ELEVENTH_FILE),  # the 11th's copy, read again
    (11, 10, ELEVENTH_FILE),
]


def test_a_trip_the_republished_file_dropped_comes_back_from_the_live_file_that_holds_it(republished):
    lake = republished
    second = run_silver(lake)
    assert trips(lake) == EXPECTED
    counts = second.counts
    assert counts["retired_trips"] == 2 and counts["readmitted"] == 1 and counts["reinstated"] == 1
    assert counts["bronze_read"] == 4 and counts["silver_written"] == 3 and counts["quarantined"] == 1
    accounting = check_accounting(lake)
    assert accounting.status == OK, accounting.detail


@pytest.mark.parametrize("seam", ["append_trips", "append_quarantine"])
def test_a_run_stopped_between_its_commits_reruns_to_the_same_silver_and_accounting(
    republished, tmp_path, monkeypatch, seam
):
    lake = republished

    def crash(*args, **kwargs):
        raise RuntimeError(f"stopped at {seam}")

    with monkeypatch.context() as patch:
        patch.setattr(silver_write, seam, crash)
        with pytest.raises(RuntimeError, match="stopped"):
            run_silver(lake)
    held = trips(lake)
    assert (10, 23, TENTH) not in held  # retired
    assert ((10, 23, ELEVENTH_FILE) in held) is (seam == "append_quarantine")  # replaced before the stop
    rerun = run_silver(lake)
    assert trips(lake) == EXPECTED and rerun.counts["readmitted"] == 1
    assert rerun.counts["retired_earlier"] == 2 and rerun.counts["retired_trips"] == 0
    assert rerun.counts["resumed_trips"] == (3 if seam == "append_quarantine" else 0)
    assert lake.read("silver.quarantine").count() == 1
    accounting = check_accounting(lake)
    assert accounting.status == OK, accounting.detail
    assert run_silver(lake).counts["bronze_read"] == 0  # read once
    # the next day: one new trip and a copy of one silver holds; the stopped attempt's deletes are not counted again
    run_ingest(lake, [write(tmp_path / "2019-01-13" / TWELFTH_FILE, [TWELFTH, ELEVENTH])])
    later = run_silver(lake)
    assert (
        later.counts | {"silver_written": 1, "duplicates": 1, "retired_earlier": 0, "resumed_trips": 0} == later.counts
    )
    accounting = check_accounting(lake)
    assert accounting.status == OK, accounting.detail


def test_a_run_stopped_after_its_record_and_before_its_watermarks_is_not_read_again(republished, monkeypatch):
    lake = republished

    def stop(*args, **kwargs):
        raise RuntimeError("stopped before the watermarks")

    with monkeypatch.context() as patch:
        patch.setattr(silver_run, "move_watermarks", stop)
        with pytest.raises(RuntimeError, match="stopped"):
            run_silver(lake)
    assert trips(lake) == EXPECTED
    assert run_silver(lake).counts["bronze_read"] == 0  # its record moved the watermarks
    accounting = check_accounting(lake)
    assert accounting.status == OK, accounting.detail
