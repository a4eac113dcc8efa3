"""The trip generator: deterministic, real TLC headers, and defects that silver quarantines exactly as announced."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from lake import Lake, load_conf
from lake.errors import InputError
from pipelines.bronze import run_ingest
from pipelines.common import StageResult
from pipelines.generate import EXPECTED, generate
from pipelines.generate.defects import KINDS
from pipelines.generate.output import GREEN_HEADER
from pipelines.gold import features as gold_features
from pipelines.gold import run_gold, sketch
from pipelines.silver import run_silver, transform

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import bench_scale  # noqa: E402  (bench/ holds the reference and the comparison the benchmark reports)
import duckdb_gold  # noqa: E402
import duckdb_reference  # noqa: E402

WINDOW_DAYS = 3

REAL_YELLOW = "yellow/yellow_tripdata_sample_2021.csv"  # the current TLC yellow header, plus a test column
EXTRA_SAMPLE_COLUMN = "test_bool"


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_same_files_other_seed_other_trips(tmp_path):
    one = generate(tmp_path / "one", 600, date(2019, 3, 30), days=3, seed=11, defect_rate=0.05)
    two = generate(tmp_path / "two", 600, date(2019, 3, 30), days=3, seed=11, defect_rate=0.05)
    other = generate(tmp_path / "other", 600, date(2019, 3, 30), days=3, seed=12, defect_rate=0.05)
    assert _files(tmp_path / "one") == _files(tmp_path / "two")
    assert one == two
    assert [f["name"] for f in one["files"]] == [
        "yellow_tripdata_2019-03-30.csv",
        "yellow_tripdata_2019-03-31.csv",
        "yellow_tripdata_2019-04-01.csv",
    ]
    assert sum(f["rows"] for f in one["files"]) == 600
    different = [
        n for n, data in _files(tmp_path / "other").items() if n != EXPECTED and data != _files(tmp_path / "one")[n]
    ]
    assert different and other["files"] != [] and other["rows"] == 600


def test_header_is_the_real_tlc_yellow_header(tmp_path, samples):
    with open(samples / REAL_YELLOW, newline="") as handle:
        real = [c for c in next(csv.reader(handle)) if c != EXTRA_SAMPLE_COLUMN]
    generate(tmp_path, 50, date(2019, 5, 1), seed=1)
    with open(tmp_path / "yellow_tripdata_2019-05-01.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == real
    assert len(rows) == 51 and all(len(row) == len(real) for row in rows[1:])


def test_green_and_parquet_files_carry_the_tlc_columns_and_no_text_defects(tmp_path):
    summary = generate(
        tmp_path, 400, date(2019, 1, 1), days=2, file_format="parquet", taxi="green", layout="month", defect_rate=0.5
    )
    assert [f["name"] for f in summary["files"]] == ["green_tripdata_2019-01.parquet"]
    assert pq.read_schema(tmp_path / "green_tripdata_2019-01.parquet").names == GREEN_HEADER
    assert pq.read_table(tmp_path / "green_tripdata_2019-01.parquet").num_rows == 400
    assert "extra_csv_field" not in summary["defects_by_kind"] and "values_parse" not in summary["quarantined_by_rule"]
    assert sum(summary["defects_by_kind"].values()) == 200


def test_arguments_outside_the_rules_are_refused(tmp_path):
    with pytest.raises(InputError, match="2030-12-31"):
        generate(tmp_path, 10, date(2031, 1, 1))
    with pytest.raises(InputError, match="unknown defect kind"):
        generate(tmp_path, 10, date(2019, 1, 1), defect_kinds=["not_a_kind"])


@pytest.fixture(scope="module")
def generated(spark, tmp_path_factory) -> tuple[Path, dict, Lake, StageResult]:
    """Six generated days (a federal holiday among them) with every kind of defect at a known count, ingested and
    through silver (the lake's pair window: WINDOW_DAYS): the landing folder, the generator's announcement, the lake
    and silver's result."""
    root = tmp_path_factory.mktemp("generated")
    folder = root / "landing"
    expected = generate(folder, 2400, date(2019, 1, 17), days=6, seed=5, defect_rate=0.25)
    # a pair window shorter than the six days, so both of its ends matter in the reference comparison below
    overrides = {"lake.root": str(root / "lake"), "gold.pair_window_days": WINDOW_DAYS}
    lake = Lake(load_conf("test", overrides=overrides), spark)
    assert run_ingest(lake, [str(folder)]).counts["rows"] == 2400
    return folder, expected, lake, run_silver(lake)


def test_injected_defects_are_what_silver_quarantines_per_rule(generated):
    """Every kind of defect at a known count: silver's quarantine and warnings match the announcement rule by rule."""
    folder, expected, lake, result = generated
    assert set(expected["defects_by_kind"]) == {k.name for k in KINDS}
    assert json.loads((folder / EXPECTED).read_text()) == expected

    quarantine = lake.read("silver.quarantine")
    by_rule = quarantine.select(F.explode("_rules_failed").alias("rule")).groupBy("rule").count().collect()
    assert {row["rule"]: row["count"] for row in by_rule} == expected["quarantined_by_rule"]
    assert quarantine.count() == expected["quarantined_rows"]
    assert result.details["quarantined_by_rule"] == expected["quarantined_by_rule"]
    assert result.details["warned_by_rule"] == expected["warned_by_rule"]
    assert lake.read("silver.trips").count() == expected["silver_rows"]
    per_file = Counter(row["_source_file"].rsplit("/", 1)[-1] for row in quarantine.select("_source_file").collect())
    assert sum(per_file.values()) == expected["quarantined_rows"] and len(per_file) == 6


def test_the_duckdb_reference_computes_what_the_pipeline_computes(generated):
    """bench/'s single-node reference does the pipeline's work, so the benchmark's Spark / DuckDB ratio compares
    equal work: the same silver counts per rule, and gold's four tables with the same row counts, sums, medians,
    window counts and trip keys (one run's sums, compared as bench_scale compares them)."""
    folder, _, lake, silver = generated
    run_gold(lake)
    spark = bench_scale.spark_result(lake, silver)
    reference = duckdb_reference.run_reference([str(folder)], threads=2, gold=bench_scale.gold_settings(lake))
    assert bench_scale.same({key: reference[key] for key in spark}, spark), (spark, reference)
    features = spark["trip_features"]
    # what the comparison must cover to mean something: trips with pair history, hour medians, a holiday, airports
    assert spark["pair_stats"]["rows"] > 0 and features["with_hour_median"] > 0 and features["prev_hour"] > 0
    assert features["holidays"] > 0 and features["pickup_airports"] > 0 and features["keys"] == spark["silver_rows"]
    assert features["with_median_distance"] < features["rows"]  # trips without pair history: nulls compared too
    # and it tells windows apart: a day shorter or longer than the lake's window moves the pair statistics
    for days in (WINDOW_DAYS - 1, WINDOW_DAYS + 1):
        other_window = dataclasses.replace(bench_scale.gold_settings(lake), window_days=days)
        other = duckdb_reference.run_reference([str(folder)], threads=2, gold=other_window)
        assert not bench_scale.same(other["pair_stats"], spark["pair_stats"]), days
        assert bench_scale.same(other["zone_daily"], spark["zone_daily"])


def test_the_reference_s_copies_of_the_pipeline_s_constants_are_the_pipeline_s():
    """bench/ mirrors these in SQL; a change on one side only would make the comparison above compare other work."""
    assert duckdb_gold.ZERO_BIN == sketch.ZERO_BIN and duckdb_gold.AIRPORT_ZONE_IDS == gold_features.AIRPORT_ZONE_IDS
    kinds = (gold_features.TRIP, gold_features.DISTANCE, gold_features.DURATION)
    assert (duckdb_gold.TRIP, duckdb_gold.DISTANCE, duckdb_gold.DURATION) == kinds
    assert duckdb_reference.KEY_COLUMNS == transform.TRIP_KEY_COLUMNS
    assert duckdb_reference.KEY_SEPARATOR == transform.KEY_SEPARATOR
    assert duckdb_reference.NULL_MARK == transform.NULL_MARK
