"""The silver stage on tiny bronze batches: typing, keys, dedup, quarantine, accounting, re-runs, fail, reprocess."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from lake import Lake, load_conf
from pipelines.common import ExpectationFailed, StageError, materialize
from pipelines.schemas import BRONZE_TRIPS, SILVER_TRIPS
from pipelines.silver import run_silver
from pipelines.silver.dedupe import BROADCAST_ROWS, later_copies
from pipelines.silver.transform import ROW_ID, add_trip_key, type_trips, with_row_ids

GOOD = {
    "taxi_type": "yellow",
    "vendor_id": "1",
    "pickup_datetime": "2019-01-15 03:36:12",
    "dropoff_datetime": "2019-01-15 03:42:19",
    "passenger_count": "1",
    "trip_distance": "1.0",
    "rate_code_id": "1",
    "store_and_fwd_flag": "N",
    "pickup_location_id": "230",
    "dropoff_location_id": "48",
    "payment_type": "1",
    "fare_amount": "6.5",
    "total_amount": "9.75",
    "_source_month": "2019-01",
}
T2 = {"pickup_datetime": "2019-01-16 10:00:00", "dropoff_datetime": "2019-01-16 10:20:00", "fare_amount": "15.0"}
T3 = {"pickup_datetime": "2019-01-17 08:00:00", "dropoff_datetime": "2019-01-17 08:30:00"}
# Batch A, file a.csv: (overrides of GOOD, the drop rules the row breaks).
BATCH_A = [
    ({}, []),  # T1
    ({}, []),  # T1 again, same file: a duplicate within the batch
    (T2, []),
    ({"fare_amount": "-6.5"}, ["fare_non_negative"]),
    ({"dropoff_datetime": "2019-01-15 03:30:00"}, ["dropoff_after_pickup", "duration_within_bounds"]),
    ({"passenger_count": "two"}, ["values_parse"]),
    ({"passenger_count": "0", "pickup_datetime": "2019-01-15 03:36:13"}, []),  # warned, kept
    ({"pickup_datetime": "2019-02-01 00:10:00", "dropoff_datetime": "2019-02-01 00:20:00"}, ["pickup_in_source_month"]),
]
CORRUPT = "1,2019-01-15,oops"
BATCH_B = [(T2, []), (T3, [])]  # file b.csv: T2 again (duplicate across files) and a new trip


def bronze_rows(spark, rows: list[dict], source_file: str, run_id: str = "ingest-test"):
    """bronze.trips rows (all text) from value overrides; metadata as the ingestion would set it."""
    records = []
    for number, values in enumerate(rows, start=1):
        record = dict.fromkeys(BRONZE_TRIPS.fieldNames())
        record |= {"_source_file": source_file, "_source_hash": f"hash-{source_file}", "_row_number": number}
        record |= {"_ingested_at": dt.datetime(2019, 2, 1), "_run_id": run_id, "pickup_month": "2019-01"}
        record |= values
        records.append(tuple(record[name] for name in BRONZE_TRIPS.fieldNames()))
    return spark.createDataFrame(records, BRONZE_TRIPS)


def append_bronze(lake: Lake, batch: list[tuple[dict, list[str]]], source_file: str, corrupt: bool = False) -> None:
    rows = [GOOD | overrides for overrides, _ in batch]
    if corrupt:
        rows.append({"_corrupt_record": CORRUPT, "_source_month": "2019-01"})
    lake.append("bronze.trips", bronze_rows(lake.spark, rows, source_file))


def rules_file(tmp: Path, name: str, change) -> str:
    """A copy of the shipped rule file with `change(rules)` applied; returns its path."""
    rules = yaml.safe_load(load_conf("test").conf_file("silver.rules").read_text())
    rules["rules"] = change(rules["rules"])
    path = tmp / name
    path.write_text(yaml.safe_dump(rules))
    return str(path)


def silver_rows(lake: Lake, version: int | None = None):
    return lake.read("silver.trips", version=version).drop("_silver_run_id")


@pytest.fixture(scope="module")
def scenario(spark, tmp_path_factory):
    """Runs the stage through a small history and keeps every result: tests below look at one aspect each."""
    tmp = tmp_path_factory.mktemp("silver")
    lake = Lake(load_conf("test", overrides={"lake.root": str(tmp / "lake")}), spark)
    out = {"lake": lake, "tmp": tmp}
    append_bronze(lake, BATCH_A, "a.csv", corrupt=True)
    out["first"] = run_silver(lake, run_id="silver-first")
    out["after_first"] = lake.version("silver.trips")
    append_bronze(lake, BATCH_B, "b.csv")
    out["second_progress"] = []
    out["second"] = run_silver(lake, run_id="silver-second", progress=out["second_progress"].append)
    out["silver_v2"] = lake.version("silver.trips")
    out["quarantine_v2"] = lake.read("silver.quarantine").drop("_quarantine_run_id", "_quarantined_at").collect()
    out["quarantine_ops"] = [row.operation for row in lake.history("silver.quarantine").collect()]
    out["idle"] = run_silver(lake, run_id="silver-idle")
    out["silver_after_idle"] = lake.version("silver.trips")
    lake.set_watermark("silver", "bronze.trips", -1)  # forget progress: the next run re-reads all of bronze
    out["rerun"] = run_silver(lake, run_id="silver-rerun")
    return out


def test_typing_parses_values_and_names_what_did_not_parse(spark):
    rows = [GOOD | {"passenger_count": "2.0", "trip_distance": " "}, GOOD | {"vendor_id": "1.5", "fare_amount": "x"}]
    typed = type_trips(bronze_rows(spark, rows, "t.csv")).orderBy("_row_number")
    got = typed.select("vendor_id", "passenger_count", "trip_distance", "fare_amount", "duration_min", "_unparsed")
    expected = spark.createDataFrame(
        [(1, 2, None, 6.5, 6.116666666666666, None), (None, 1, 1.0, None, 6.116666666666666, "vendor_id,fare_amount")],
        "vendor_id int, passenger_count int, trip_distance double, fare_amount double, duration_min double, "
        "_unparsed string",
    )
    assertDataFrameEqual(got, expected, checkRowOrder=True)
    assert typed.select("pickup_ts", "pickup_month").first() == (dt.datetime(2019, 1, 15, 3, 36, 12), "2019-01")


def test_trip_key_ignores_metadata_and_dedupe_keeps_the_first_row(spark):
    first = bronze_rows(spark, [GOOD, GOOD | {"fare_amount": "7.0"}, GOOD], "b.csv")
    second = bronze_rows(spark, [GOOD], "a.csv", run_id="another-run").withColumn("_row_number", F.lit(9).cast("long"))
    keyed = materialize(with_row_ids(add_trip_key(type_trips(first.unionByName(second)))))
    rows = keyed.collect()
    keys = {(r._source_file, r._row_number): r.trip_key for r in rows}
    assert keys[("a.csv", 9)] == keys[("b.csv", 1)] == keys[("b.csv", 3)] != keys[("b.csv", 2)]
    assert len({r[ROW_ID] for r in rows}) == 4
    for broadcast_rows in (BROADCAST_ROWS, 0):  # the repeated keys broadcast to the batch, or shuffled with it
        later = {r[ROW_ID] for r in later_copies(keyed, broadcast_rows).collect()}
        kept = {(r._source_file, r._row_number) for r in rows if r[ROW_ID] not in later}
        assert kept == {("a.csv", 9), ("b.csv", 2)}, broadcast_rows


def test_first_run_accounts_for_every_bronze_row(scenario):
    counts = scenario["first"].counts
    rejected = sum(1 for _, broken in BATCH_A if broken) + 1  # + the corrupt line
    assert counts["bronze_read"] == len(BATCH_A) + 1
    assert counts["quarantined"] == rejected
    assert counts["duplicates_in_batch"] == 1 and counts["duplicates_in_silver"] == 0
    assert counts["silver_written"] == len(BATCH_A) + 1 - rejected - 1
    assert counts["bronze_read"] == counts["silver_written"] + counts["quarantined"] + counts["duplicates"]
    assert scenario["first"].details["ge_engine"] == "pandas"  # a small batch: GE's pandas engine agreed


def test_a_run_reports_its_progress_with_the_elapsed_time(scenario):
    lines = scenario["second_progress"]
    read = scenario["second"].counts["bronze_read"]
    assert lines[0].startswith(f"silver: read {read:,} rows (incremental) [")
    assert [line.split(" [")[0] for line in lines[-2:]] == [
        f"silver: planned: {scenario['second'].counts['silver_written']:,} to silver, "
        f"{scenario['second'].counts['quarantined']:,} to quarantine",
        "silver: committed silver.trips and silver.quarantine",
    ]
    assert all(line.endswith(" s]") for line in lines)


def test_quarantine_keeps_raw_values_reasons_run_and_source(scenario):
    lake = scenario["lake"]
    rows = {r._row_number: r for r in lake.read("silver.quarantine").collect()}
    expected = {i + 1: sorted(broken) for i, (_, broken) in enumerate(BATCH_A) if broken}
    assert {n: sorted(rows[n]._rules_failed) for n in expected} == expected
    corrupt = rows[len(BATCH_A) + 1]
    assert corrupt._corrupt_record == CORRUPT and "well_formed_row" in corrupt._rules_failed
    assert rows[6].passenger_count == "two" and rows[4].fare_amount == "-6.5"
    assert {r._source_file for r in rows.values()} == {"a.csv"}
    assert set(lake.read("silver.quarantine").columns) >= set(BRONZE_TRIPS.fieldNames())
    assert scenario["first"].details["quarantined_by_rule"]["fare_non_negative"] == 1
    assert "MERGE" not in scenario["quarantine_ops"]  # new rows are appended: the plan's anti-join made them new


def test_silver_rows_follow_the_contract_with_zone_names(scenario):
    trips = scenario["lake"].read("silver.trips", version=scenario["after_first"])
    assert trips.schema.fieldNames() == SILVER_TRIPS.fieldNames()
    row = trips.where(F.col("fare_amount") == 6.5).where(F.col("passenger_count") == 1).first()
    assert (row.pickup_zone, row.pickup_borough, row.dropoff_borough) == (
        "Times Sq/Theatre District",
        "Manhattan",
        "Manhattan",
    )
    assert row.duration_min == pytest.approx(367 / 60)
    warned = scenario["first"].details["warned_by_rule"]
    assert warned == {"passenger_count_positive": 1}


def test_a_trip_seen_in_another_file_counts_as_a_duplicate(scenario):
    counts = scenario["second"].counts
    assert counts == counts | {"bronze_read": 2, "silver_written": 1, "duplicates_in_silver": 1, "quarantined": 0}


def test_a_run_without_new_bronze_rows_changes_nothing(scenario):
    assert scenario["idle"].counts["bronze_read"] == 0
    assert scenario["silver_after_idle"] == scenario["silver_v2"]


def test_rerunning_over_the_same_bronze_gives_the_same_silver(scenario):
    lake, counts = scenario["lake"], scenario["rerun"].counts
    assertDataFrameEqual(silver_rows(lake), silver_rows(lake, scenario["silver_v2"]))
    quarantine = lake.read("silver.quarantine").drop("_quarantine_run_id", "_quarantined_at")
    assertDataFrameEqual(quarantine, scenario["quarantine_v2"])
    assert counts["silver_written"] == 0
    assert counts["bronze_read"] == counts["quarantined"] + counts["duplicates"]


def test_every_run_is_recorded_in_quality_tables(scenario):
    lake = scenario["lake"]
    runs = lake.read("quality.stage_runs").where(F.col("stage") == "silver")
    assert {r.run_id for r in runs.collect()} >= {"silver-first", "silver-second", "silver-idle", "silver-rerun"}
    assert runs.where(~F.col("invariant_holds")).count() == 0
    per_rule = lake.read("quality.runs").where(F.col("run_id") == "silver-first")
    fare = per_rule.where(F.col("rule") == "fare_non_negative").first()
    assert (fare.evaluated, fare.failed, fare.passed, fare.action, fare.ge_success) == (
        len(BATCH_A),
        1,
        7,
        "drop",
        False,
    )


def test_a_fail_rule_stops_the_run_before_silver_changes(scenario, spark):
    lake, tmp = scenario["lake"], scenario["tmp"]
    strict = rules_file(
        tmp,
        "strict.yaml",
        lambda rules: [r | {"action": "fail"} if r["name"] == "passenger_count_positive" else r for r in rules],
    )
    strict_lake = Lake(lake.conf.with_overrides({"silver.rules": strict}), spark)
    append_bronze(lake, [({"passenger_count": "0", "pickup_datetime": "2019-01-20 10:00:00"}, [])], "c.csv")
    before, watermark = lake.version("silver.trips"), lake.watermark("silver", "bronze.trips")
    with pytest.raises(ExpectationFailed, match="passenger_count_positive") as failure:
        run_silver(strict_lake, run_id="silver-failed")
    assert failure.value.failed == 1
    assert lake.version("silver.trips") == before
    assert lake.watermark("silver", "bronze.trips") == watermark
    recorded = lake.read("quality.runs").where(F.col("run_id") == "silver-failed")
    assert {r.run_status for r in recorded.collect()} == {"failed"}


def test_reprocessing_the_quarantine_after_a_rule_change_releases_rows(scenario, spark):
    lake, tmp = scenario["lake"], scenario["tmp"]
    relaxed = rules_file(tmp, "relaxed.yaml", lambda rules: [r for r in rules if r["name"] != "fare_non_negative"])
    conf = lake.conf.with_overrides({"silver.rules": relaxed, "silver.data_docs": True})
    open_before = lake.read("silver.quarantine").where(F.col("_released_run_id").isNull()).count()
    result = run_silver(Lake(conf, spark), reprocess_quarantine=True, run_id="silver-reprocess")
    assert result.counts["bronze_read"] == open_before
    assert result.counts["silver_written"] == 1 and result.counts["quarantined"] == open_before - 1
    released = lake.read("silver.quarantine").where(F.col("_released_run_id") == "silver-reprocess").collect()
    assert [r.fare_amount for r in released] == ["-6.5"]
    assert lake.read("silver.trips").where(F.col("fare_amount") == -6.5).count() == 1
    docs = result.details["data_docs"]
    assert docs.endswith("index.html") and Path(docs.removeprefix("file://")).is_file()
    assert docs.startswith(f"file://{lake.root}/_quality/data_docs")


# --- Accounting: checked before the commit and against Delta's commit metrics after it -----------------------------


def test_a_commit_that_drops_a_row_fails_the_run_and_keeps_the_watermark(lake, monkeypatch):
    from pipelines.silver import write

    append_bronze(lake, [({}, []), (T2, []), (T3, [])], "a.csv")
    real_append = write.append_trips
    monkeypatch.setattr(write, "append_trips", lambda lk, rows: real_append(lk, rows.limit(rows.count() - 1)))
    with pytest.raises(StageError, match="silver.trips rows inserted: committed 2, planned 3"):
        run_silver(lake, run_id="silver-lossy")
    assert lake.watermark("silver", "bronze.trips") is None
    recorded = lake.read("quality.stage_runs").where(F.col("run_id") == "silver-lossy").first()
    assert (recorded.status, recorded.invariant_holds) == ("failed", False)
    assert "committed 2, planned 3" in recorded.message


def test_bronze_commits_without_new_rows_and_an_empty_quarantine_are_runs_with_nothing_to_do(lake):
    """OPTIMIZE adds a bronze version whose change feed holds no inserted rows; a reprocess with nothing open reads
    none either. Both are recorded as runs without new rows (they failed GE's agreement check before, 2026-12-02)."""
    from lake import maintenance

    append_bronze(lake, [({}, [])], "a.csv")
    append_bronze(lake, [(T2, [])], "b.csv")
    run_silver(lake)
    silver = lake.version("silver.trips")
    maintenance.optimize(lake, "bronze.trips")
    assert lake.watermark("silver", "bronze.trips") < lake.version("bronze.trips")
    result = run_silver(lake, run_id="silver-after-optimize")
    assert (result.counts["bronze_read"], result.details["message"]) == (0, "no new rows")
    assert lake.watermark("silver", "bronze.trips") == lake.version("bronze.trips")
    assert run_silver(lake, reprocess_quarantine=True).counts["bronze_read"] == 0
    assert lake.version("silver.trips") == silver
    recorded = lake.read("quality.stage_runs").where(F.col("run_id") == "silver-after-optimize").first()
    assert (recorded.status, recorded.invariant_holds) == ("success", True)


def test_a_batch_that_gains_rows_after_the_read_fails_before_any_commit(lake):
    append_bronze(lake, [({}, []), (T2, [])], "a.csv")
    run_silver(lake)  # creates silver.zones
    zone = lake.read("silver.zones").where(F.col("zone_id") == 230)
    lake.append("silver.zones", zone)  # a duplicated zone id multiplies the rows the zone join gives
    append_bronze(lake, [(T3, [])], "b.csv")
    before = lake.version("silver.trips"), lake.version("silver.quarantine")
    with pytest.raises(StageError, match="before commit.*typed 2 = read 1"):
        run_silver(lake, run_id="silver-doubled")
    assert (lake.version("silver.trips"), lake.version("silver.quarantine")) == before


# --- Ingest during a run: rows appended after silver's read belong to the next run ----------------------------------


def test_bronze_rows_appended_during_a_run_are_picked_up_by_the_next_run(lake, monkeypatch):
    from pipelines.silver import run as silver_run

    append_bronze(lake, [({}, []), (T2, [])], "a.csv")
    real_read = silver_run.read_source

    def read_then_ingest(lk, reprocess):
        source = real_read(lk, reprocess)
        append_bronze(lk, [(T3, [])], "b.csv")  # lands after the read, before the watermark is written
        return source

    monkeypatch.setattr(silver_run, "read_source", read_then_ingest)
    first = run_silver(lake)
    monkeypatch.setattr(silver_run, "read_source", real_read)
    assert first.counts["bronze_read"] == 2
    assert lake.watermark("silver", "bronze.trips") == first.versions["bronze.trips"] < lake.version("bronze.trips")
    second = run_silver(lake)
    assert second.counts["bronze_read"] == 1 and second.counts["silver_written"] == 1
    assert lake.read("silver.trips").count() == 3
