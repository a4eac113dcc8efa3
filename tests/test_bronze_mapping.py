"""Column mapping of every TLC naming variant onto the canonical raw schema, on tiny DataFrames."""

from __future__ import annotations

import pytest
from pyspark.testing import assertDataFrameEqual

from pipelines.bronze.ingest import to_raw_columns
from pipelines.bronze.schema_map import SchemaMismatch, map_columns
from pipelines.schemas import RAW_TRIP_COLUMNS

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
