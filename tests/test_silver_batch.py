"""Silver's persisted typed batch: what it keeps of the raw bronze rows, how it is stored, and the Columns it is built
from."""

from __future__ import annotations

from test_silver import GOOD, T2, bronze_rows  # tests/ is on sys.path under pytest

from lake import expressions
from pipelines.gold import run_gold
from pipelines.silver import run_silver, write
from pipelines.silver.build import batch_counts, build_silver, file_versions, summed
from pipelines.silver.run import ZONE_REFERENCE, load_zones, rules_for
from pipelines.silver.transform import to_silver


def test_the_persisted_batch_keeps_raw_text_only_on_rejected_rows_and_columns_are_built_once(lake):
    zones = load_zones(lake)
    ids = [row.zone_id for row in zones.select("zone_id").collect()]
    rules = [rule.bound({ZONE_REFERENCE: ids}) for rule in rules_for(lake)]
    bronze = bronze_rows(
        lake.spark, [GOOD, GOOD | {"fare_amount": "-6.5"}, GOOD | T2 | {"passenger_count": "0"}], "r.csv"
    )
    expressions.clear()
    _, quarantine, stats = build_silver(bronze, zones, rules, "silver-raw")
    built = dict(expressions._cache)
    try:
        raw = {r._row_number: r._raw for r in stats.flagged.select("_row_number", "_raw").collect()}
        assert raw[1] is None and raw[3] is None  # passed (row 3 only breaks a warn rule): no raw copy kept
        assert raw[2]["fare_amount"] == "-6.5" and raw[2]["_source_file"] == "r.csv"
        # stored serialized, spilling to disk: one Java object per row took 1.8x the memory at 5M rows and spilled
        level = stats._cached[0]._jdf.queryExecution().logical().rdd().getStorageLevel()
        assert (level.useMemory(), level.useDisk(), level.deserialized()) == (True, True, False)
        assert [(r._row_number, r.fare_amount) for r in quarantine.collect()] == [(2, "-6.5")]
        build_silver(bronze, zones, rules, "silver-raw-again")[2].release()
        assert len(built) > 5 and set(expressions._cache) == set(built)  # the second batch reused every Column
        assert all(expressions._cache[key] is value for key, value in built.items())
    finally:
        stats.release()


def test_one_aggregation_counts_rows_and_rules_per_file_version_and_pickup_day(lake):
    """File versions, the kept rows' days and the per-rule counts come from one grouped aggregation: a file's rows
    are summed over its days, rows without a pickup day are a day of None, and a superseded file's groups are left
    out of the rule counts by the caller."""
    zones = load_zones(lake)
    ids = [row.zone_id for row in zones.select("zone_id").collect()]
    rules = [rule.bound({ZONE_REFERENCE: ids}) for rule in rules_for(lake)]
    bronze = bronze_rows(
        lake.spark, [GOOD, GOOD | T2, GOOD | {"fare_amount": "-6.5"}, GOOD | {"pickup_datetime": "x"}], "a.csv"
    ).unionByName(bronze_rows(lake.spark, [GOOD | T2, GOOD | T2 | {"fare_amount": "-1"}], "b.csv"))
    drop = [r.name for r in rules if r.action == "drop"]
    _, _, stats = build_silver(bronze, zones, rules, "silver-counts", supersede=False)
    try:
        groups = batch_counts(stats.flagged, rules, drop)
        assert sorted((g.version.source_file, str(g.day), g.counts["rows"]) for g in groups) == [
            ("a.csv", "2019-01-15", 2),
            ("a.csv", "2019-01-16", 1),
            ("a.csv", "None", 1),
            ("b.csv", "2019-01-16", 2),
        ]
        assert sorted((v.source_file, v.rows) for v in file_versions(groups)) == [("a.csv", 4), ("b.csv", 2)]
        per_rule, totals = summed([g for g in groups if g.version.source_file == "a.csv"], rules)
        assert (totals["rows"], totals["days"][-1], len(totals["days"])) == (4, None, 3)
        assert per_rule["fare_non_negative"]["failed"] == 1 and totals["rejected"] == 2  # -6.5 and the bad time
        assert summed(groups, rules)[0]["fare_non_negative"] == {"rows": 6, "evaluated": 6, "failed": 2}
        assert (stats.rows, stats.kept, stats.rejected) == (6, 6, 3)
    finally:
        stats.release()


def test_the_write_plan_counts_duplicates_by_key_and_never_shuffles_the_batch(lake):
    """Two copies of a trip (two files) and a trip silver already has: the plan counts them from keys, and the rows
    appended are the materialized batch minus both key sets by broadcast joins (no hash-partitioned exchange)."""
    zones = load_zones(lake)
    ids = [row.zone_id for row in zones.select("zone_id").collect()]
    rules = [rule.bound({ZONE_REFERENCE: ids}) for rule in rules_for(lake)]
    lake.create("silver.trips")
    lake.create("silver.quarantine")
    old, _, old_stats = build_silver(bronze_rows(lake.spark, [GOOD | T2], "old.csv"), zones, rules, "silver-old")
    lake.append("silver.trips", to_silver(old, "silver-old"))  # T2's trip is in silver
    old_stats.release()
    bronze = bronze_rows(lake.spark, [GOOD, GOOD | T2, GOOD | {"fare_amount": "7.0"}], "b.csv").unionByName(
        bronze_rows(lake.spark, [GOOD], "a.csv")
    )
    passing, quarantine, stats = build_silver(bronze, zones, rules, "silver-plan")
    plan = None
    try:
        plan = write.plan(lake, passing, quarantine, stats, [], False, "silver-plan")
        assert plan.expected["unique_passed"] == 3 and plan.expected["in_silver"] == 1
        assert plan.expected["new_trips"] == 2
        appended = plan.new_trips.collect()
        assert sorted((r._source_file, r._row_number) for r in appended) == [("a.csv", 1), ("b.csv", 3)]
        executed = plan.new_trips._jdf.queryExecution().executedPlan().toString()
        assert "BroadcastHashJoin" in executed and "hashpartitioning" not in executed, executed
    finally:
        stats.release()
        if plan is not None:
            plan.release()


def stored_rdds(spark) -> set[tuple[int, str]]:
    """The RDDs whose blocks Spark's block manager holds (persisted or checkpointed), but Delta's cache of a table's
    state, which Delta keeps and frees with the table's snapshot."""
    infos = spark.sparkContext._jsc.sc().getRDDStorageInfo()
    return {(i.id(), i.name()) for i in infos if not i.name().startswith("Delta Table State")}


def test_silver_and_gold_runs_free_every_block_they_materialized(lake):
    """A run's materialized frames stay stored until the JVM collects them, which a finished run's were not (2.5 GB
    after a 5M-row silver run): each stage frees them when it is done."""
    lake.append(
        "bronze.trips", bronze_rows(lake.spark, [GOOD, GOOD, GOOD | T2, GOOD | {"fare_amount": "-6.5"}], "f.csv")
    )
    before = stored_rdds(lake.spark)
    assert run_silver(lake, run_id="silver-free").counts["duplicates_in_batch"] == 1
    assert stored_rdds(lake.spark) <= before
    assert run_gold(lake, run_id="gold-free").counts["gold.trip_features"] == 2
    assert stored_rdds(lake.spark) <= before
