"""On a real TLC month: GE's unexpected counts equal the Spark flags and the quarantine, and no row is lost."""

from __future__ import annotations

import pytest
from pyspark import StorageLevel
from pyspark.sql import functions as F

from lake import Lake, load_conf
from pipelines import quality
from pipelines.bronze import run_ingest
from pipelines.rules import violations
from pipelines.silver import run_silver
from pipelines.silver.run import ZONE_REFERENCE, load_zones, rule_stats, rules_for
from pipelines.silver.transform import prepare_batch

pytestmark = pytest.mark.integration
# 2019-02 is the month with many zero-passenger rows, so a warn rule fires too.
MONTH = "yellow/yellow_tripdata_sample_2019-02.csv"


@pytest.fixture(scope="module")
def ingested(spark, samples, tmp_path_factory):
    lake = Lake(load_conf("test", overrides={"lake.root": str(tmp_path_factory.mktemp("real") / "lake")}), spark)
    run_ingest(lake, [str(samples / MONTH)])
    return lake, run_silver(lake)


@pytest.fixture(scope="module")
def independent(ingested):
    """GE and the Spark flags recomputed on the whole bronze month, apart from the run."""
    lake, _ = ingested
    zones = load_zones(lake)
    ids = [r.zone_id for r in zones.select("zone_id").collect()]
    rules = [rule.bound({ZONE_REFERENCE: ids}) for rule in rules_for(lake)]
    batch = prepare_batch(lake.read("bronze.trips"), zones).withColumn("_violations", violations(rules))
    batch = batch.persist(StorageLevel.MEMORY_AND_DISK)
    stats, totals = rule_stats(batch, rules, [r.name for r in rules if r.action == "drop"])
    verdict = quality.validate(batch, rules, "agreement_test")
    on_driver = quality.validate(batch, rules, "agreement_test_pandas", engine="pandas")
    batch.unpersist()
    return rules, stats, totals, verdict, on_driver


def test_ge_unexpected_counts_equal_spark_flags_per_rule(independent):
    rules, stats, _, verdict, on_driver = independent
    assert verdict.unexpected == {rule.name: stats[rule.name]["failed"] for rule in rules}
    assert any(verdict.unexpected.values())  # the real month does break rules: the comparison is not vacuous
    assert (on_driver.engine, verdict.engine) == ("pandas", "spark")
    assert on_driver.unexpected == verdict.unexpected  # GE's pandas engine (small batches) counts as its Spark one


def test_ge_unexpected_counts_equal_quarantine_counts_per_drop_rule(ingested, independent):
    lake, _ = ingested
    rules, _, _, verdict, _ = independent
    reasons = lake.read("silver.quarantine").select(F.explode("_rules_failed").alias("rule")).groupBy("rule").count()
    quarantined = {r.rule: r["count"] for r in reasons.collect()}
    expected = {r.name: verdict.unexpected[r.name] for r in rules if r.action == "drop" and verdict.unexpected[r.name]}
    assert quarantined == expected


def test_every_bronze_row_is_in_silver_quarantine_or_counted_as_duplicate(ingested):
    lake, result = ingested
    bronze = lake.read("bronze.trips").count()
    silver, quarantine = lake.read("silver.trips").count(), lake.read("silver.quarantine").count()
    assert result.counts["bronze_read"] == bronze
    assert bronze == silver + quarantine + result.counts["duplicates"]
    assert quarantine == result.counts["quarantined"] > 0
