"""Column mapping of every TLC naming variant onto the canonical raw schema, on tiny DataFrames."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from pipelines.bronze.files import source_month
from pipelines.bronze.ingest import to_raw_columns
from pipelines.bronze.schema_map import SchemaMismatch, map_columns
from pipelines.schemas import RAW_TRIP_COLUMNS
from pipelines.timestamps import parse_tlc_timestamp, tlc_month


@pytest.fixture(scope="session")
def tlc(request) -> Path:
    """The real samples: $TLC_SAMPLES when set (a worktree away from ../shared), else conftest's `samples`."""
    override = os.environ.get("TLC_SAMPLES")
    return Path(override) if override else request.getfixturevalue("samples")


RENAMED = ["vendor_id", "pickup_datetime", "dropoff_datetime", "pickup_location_id", "dropoff_location_id"]
ORIGINAL_YELLOW = ["VendorID", "tpep_pickup_datetime", "tpep_dropoff_datetime", "PULocationID", "DOLocationID"]
MIXED = ["VendorID", "pickup_datetime", "dropoff_datetime", "PULocationID", "DOLocationID"]
GREEN_WITH_INDEX = ["", "VendorID", "lpep_pickup_datetime", "lpep_dropoff_datetime", "PULocationID", "trip_type"]
LEGACY_2009 = ["vendor_name", "Trip_Pickup_DateTime", "Trip_Dropoff_DateTime", "Start_Lon", "Fare_Amt"]


@pytest.mark.parametrize(
    ("header", "taxi_type", "expected"),
    [
        (RENAMED, "yellow", dict(zip(range(5), RENAMED))),
        (ORIGINAL_YELLOW, "yellow", dict(zip(range(5), RENAMED))),
        (MIXED, "yellow", dict(zip(range(5), RENAMED))),
        (
            GREEN_WITH_INDEX,
            "green",
            {1: "vendor_id", 2: "pickup_datetime", 3: "dropoff_datetime", 4: "pickup_location_id", 5: "trip_type"},
        ),
        (LEGACY_2009, "yellow", {0: "vendor_id", 1: "pickup_datetime", 2: "dropoff_datetime", 4: "fare_amount"}),
    ],
)
def test_every_naming_maps_onto_canonical_names(header, taxi_type, expected):
    mapping = map_columns(header, "/landing/trips.csv")
    assert mapping.taxi_type == taxi_type
    assert mapping.canonical == expected
    assert set(mapping.rescued) == set(range(len(header))) - set(expected)


def test_unnamed_and_unknown_columns_are_rescued_with_a_key():
    mapping = map_columns(["", "tpep_pickup_datetime", "tpep_dropoff_datetime", "test_bool"], "x.csv")
    assert mapping.rescued == {0: "_c0", 3: "test_bool"}


def test_a_repeated_canonical_column_is_rescued_not_overwritten():
    mapping = map_columns(["pickup_datetime", "dropoff_datetime", "extra", "surcharge"], "x.csv")
    assert mapping.canonical[2] == "extra"
    assert mapping.rescued == {3: "surcharge"}


def test_taxi_type_falls_back_to_the_file_name():
    assert map_columns(RENAMED, "/x/green_tripdata_2019-01.csv").taxi_type == "green"


@pytest.mark.parametrize(
    ("header", "file_name", "message"),
    [
        (["LocationID", "Borough", "Zone"], "zones.csv", "match no known taxi schema"),
        (["pickup_datetime", "fare"], "x.csv", "no dropoff_datetime column"),
        (RENAMED, "fhv_tripdata_2019-01.csv", "fhv"),
    ],
)
def test_files_of_no_known_schema_are_refused_with_the_file_name(header, file_name, message):
    with pytest.raises(SchemaMismatch, match=message) as error:
        map_columns(header, file_name)
    assert file_name in str(error.value)


def test_to_raw_columns_renames_fills_and_rescues(spark):
    header = ["", "VendorID", "lpep_pickup_datetime", "lpep_dropoff_datetime", "test_bool"]
    mapping = map_columns(header, "green.csv")
    names = mapping.positional_names(len(header))
    source = spark.createDataFrame(
        [("7", "2", "2019-01-01 00:00:00", "2019-01-01 00:10:00", "f"), ("8", None, None, None, None)], names
    )
    expected_columns = ["taxi_type", *RAW_TRIP_COLUMNS, "_rescued", "_corrupt_record"]
    blanks = {c: None for c in RAW_TRIP_COLUMNS}
    expected = spark.createDataFrame(
        [
            {
                "taxi_type": "green",
                **blanks,
                "vendor_id": "2",
                "pickup_datetime": "2019-01-01 00:00:00",
                "dropoff_datetime": "2019-01-01 00:10:00",
                "_rescued": {"_c0": "7", "test_bool": "f"},
                "_corrupt_record": None,
            },
            {"taxi_type": "green", **blanks, "_rescued": {"_c0": "8", "test_bool": None}, "_corrupt_record": None},
        ],
        "taxi_type string, "
        + ", ".join(f"{c} string" for c in RAW_TRIP_COLUMNS)
        + ", _rescued map<string,string>, _corrupt_record string",
    )
    assertDataFrameEqual(to_raw_columns(source, mapping, names), expected.select(*expected_columns))


NESTED = "green/nested_directories_time"


@pytest.mark.parametrize(
    ("location", "month"),
    [
        ("/landing/yellow_tripdata_2019-03.csv", "2019-03"),
        ("/landing/yellow_tripdata_2019-03-05.csv", "2019-03"),
        ("/landing/yellow_tripdata_2019_11.csv.gz", "2019-11"),
        ("s3://bucket/raw/green_tripdata_2020-12.parquet", "2020-12"),
        ("/landing/2019-05-01/green_tripdata.csv", None),  # a dated landing folder is not the file's month
        ("/landing/2018/10/green_tripdata.csv", None),
        ("/landing/2019-05/trips_120190312.csv", None),  # digits inside a longer number are no month
        ("/landing/yellow_tripdata_2019-13.csv", None),
    ],
)
def test_source_month_comes_from_the_file_name_only(location, month):
    assert source_month(location) == month


def test_source_month_of_the_real_nested_sample_folders_is_null(tlc):
    nested = sorted((tlc / NESTED).rglob("*.csv"))
    assert len(nested) == 3 and all("/2018/" in str(p) for p in nested)
    assert {source_month(str(p)) for p in nested} == {None}
    named = sorted((tlc / "green").glob("green_tripdata_2019-*.csv"))
    assert [source_month(str(p)) for p in named] == ["2019-01", "2019-02", "2019-03"]


def test_tlc_timestamps_parse_iso_and_us_formats_the_same(spark):
    texts = [
        ("2019-01-15 03:36:12", "2019-01-15 03:36:12", "2019-01"),
        ("2019-01-15T03:36:12", "2019-01-15 03:36:12", "2019-01"),
        (" 01/15/2019 03:36:12 PM ", "2019-01-15 15:36:12", "2019-01"),
        ("12/31/2018 12:05:00 AM", "2018-12-31 00:05:00", "2018-12"),
        ("1900-01-01 00:00:00", "1900-01-01 00:00:00", "1900-01"),
        ("not a time", None, None),
        ("", None, None),
        (None, None, None),
    ]
    frame = spark.createDataFrame([(t,) for t, _, _ in texts], "text string")
    got = frame.select(
        "text", F.date_format(parse_tlc_timestamp("text"), "yyyy-MM-dd HH:mm:ss").alias("ts"), tlc_month("text")
    ).collect()
    assert [(r[0], r[1], r[2]) for r in got] == texts
