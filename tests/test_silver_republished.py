"""A republished file (same base name, new content, often in another dated folder) supersedes its older version in
silver: its trips and quarantine rows are retired, stepwise or within one batch alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from lake import Lake, load_conf
from pipelines.silver import run_silver

HEADER = (
    "vendor_id,pickup_datetime,dropoff_datetime,passenger_count,trip_distance,rate_code_id,store_and_fwd_flag,"
    "pickup_location_id,dropoff_location_id,payment_type,fare_amount,extra,mta_tax,tip_amount,tolls_amount,"
    "improvement_surcharge,total_amount,congestion_surcharge"
)
UNCHANGED = "1,2019-03-01 18:43:31,2019-03-01 18:48:42,2,1.1,1,N,143,238,1,6.0,3.5,0.5,1.55,0.0,0.3,11.85,2.5"
CORRECTED_OLD = "2,2019-03-20 16:30:11,2019-03-20 16:44:49,1,2.63,1,N,231,88,1,12.5,1.0,0.5,3.36,0.0,0.3,20.16,2.5"
CORRECTED_NEW = "2,2019-03-20 16:30:11,2019-03-20 16:44:49,1,2.63,1,N,231,88,1,12.5,1.0,0.5,3.36,0.0,0.3,18.16,2.5"
REMOVED = "1,2019-03-05 09:00:00,2019-03-05 09:10:00,1,1.5,1,N,236,237,2,8.0,0.0,0.5,0.0,0.0,0.3,8.8,0.0"
BAD_OLD = "1,2019-03-06 09:00:00,2019-03-06 09:10:00,1,1.5,1,N,236,237,2,-8.0,0.0,0.5,0.0,0.0,0.3,8.8,0.0"
ADDED = "2,2019-03-07 10:00:00,2019-03-07 10:30:00,1,5.0,1,N,132,236,1,20.0,0.0,0.5,0.0,0.0,0.3,20.8,0.0"
NAME = "yellow_tripdata_2019-03.csv"


def landed(tmp: Path, folder: str, lines: list[str]) -> str:
    path = tmp / folder / NAME  # same base name in another folder: the same file, republished
    path.parent.mkdir(parents=True)
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def republished(spark, tmp_path_factory):
    from pipelines.bronze import run_ingest

    tmp = tmp_path_factory.mktemp("republished")
    old = landed(tmp, "2019-04-01", [UNCHANGED, CORRECTED_OLD, REMOVED, BAD_OLD])
    new = landed(tmp, "2019-04-15", [UNCHANGED, CORRECTED_NEW, ADDED])
    out = {}
    stepwise = Lake(load_conf("test", overrides={"lake.root": str(tmp / "stepwise")}), spark)
    run_ingest(stepwise, [old])
    out["first"] = run_silver(stepwise)
    run_ingest(stepwise, [new])
    out["second"] = run_silver(stepwise)
    together = Lake(load_conf("test", overrides={"lake.root": str(tmp / "together")}), spark)
    run_ingest(together, [old])
    run_ingest(together, [new])
    out["together"] = run_silver(together)
    out |= {"stepwise": stepwise, "together_lake": together}
    return out


def trip_values(lake: Lake):
    return lake.read("silver.trips").select("pickup_ts", "total_amount", "_source_file")


def test_the_newer_version_of_a_republished_file_replaces_the_older_one(republished):
    lake = republished["stepwise"]
    rows = sorted((r.pickup_ts.day, r.total_amount, r._source_file.split("/")[-2]) for r in trip_values(lake).collect())
    assert rows == [(1, 11.85, "2019-04-15"), (7, 20.8, "2019-04-15"), (20, 18.16, "2019-04-15")]
    assert lake.read("silver.quarantine").where(F.col("_released_run_id").isNull()).count() == 0
    assert republished["first"].counts["quarantined"] == 1


def test_superseding_is_counted_and_uses_deletes_the_change_feed_shows(republished):
    lake, counts = republished["stepwise"], republished["second"].counts
    assert counts | {"retired_trips": 3, "retired_quarantine": 1, "silver_written": 3} == counts
    feed = (
        lake.spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", republished["first"].versions["silver.trips"] + 1)
        .load(lake.path("silver.trips"))
    )
    assert {r._change_type: r["count"] for r in feed.groupBy("_change_type").count().collect()} == {
        "delete": 3,
        "insert": 3,
    }


def test_both_versions_in_one_batch_give_the_same_silver(republished):
    counts = republished["together"].counts
    assert counts["superseded"] == 4 and counts["bronze_read"] == 7
    assert counts["bronze_read"] == counts["silver_written"] + counts["quarantined"] + counts["duplicates"] + 4
    assertDataFrameEqual(trip_values(republished["together_lake"]), trip_values(republished["stepwise"]))
