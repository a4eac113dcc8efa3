"""run_silver: new bronze rows -> typed, validated (Spark flags + GE suite), quarantined or merged into silver."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake import Lake
from lake.errors import MissingInputError
from pipelines import quality
from pipelines.common import ExpectationFailed, StageError, StageResult, new_run_id
from pipelines.rules import Rule, load_rules, violations
from pipelines.schemas import SILVER_TRIPS
from pipelines.silver import quarantine as q
from pipelines.silver.transform import batch_columns, dedupe, prepare_batch, read_zone_csv, to_silver

STAGE = "silver"
SOURCE, TARGET, QUARANTINE, ZONES = "bronze.trips", "silver.trips", "silver.quarantine", "silver.zones"
SUITE = "silver_trips"
ZONE_REFERENCE = "zones"  # the name rules use in `value_set_from`


def rules_for(lake: Lake) -> list[Rule]:
    """The silver rules from conf (`silver.rules`), checked against the typed batch's columns."""
    return load_rules(lake.conf.conf_file("silver.rules"), batch_columns(lake.spark), [ZONE_REFERENCE])


def load_zones(lake: Lake) -> DataFrame:
    """silver.zones, loaded from the lookup CSV (conf `bronze.zone_lookup`) the first time it is needed."""
    if not lake.exists(ZONES):
        lake.overwrite(ZONES, read_zone_csv(lake.spark, lake.conf.path("bronze.zone_lookup")))
    return lake.read(ZONES)


def ensure_table(lake: Lake, table: str, schema: T.StructType) -> None:
    """Creates an empty table so every write is a MERGE with comparable operation metrics."""
    if not lake.exists(table):
        lake.append(table, lake.spark.createDataFrame([], schema))


@dataclass
class Source:
    """What a run reads: bronze changes since the watermark, or the open quarantine rows."""

    rows: DataFrame | None
    versions: dict[str, int | None]
    quarantine_snapshot: DataFrame | None = None


def bronze_changes(lake: Lake) -> Source:
    """bronze.trips rows added after the silver watermark (change data feed), None when there are none."""
    latest = lake.version(SOURCE)
    if latest is None:
        raise MissingInputError(f"{SOURCE} does not exist yet at {lake.path(SOURCE)}; run `lake ingest` first")
    after = lake.watermark(STAGE, SOURCE)
    rows = None if after is not None and after >= latest else lake.read_changes(SOURCE, after, latest)
    return Source(rows, {f"{SOURCE}@from": after, SOURCE: latest})


def open_quarantine(lake: Lake) -> Source:
    """The quarantined rows not yet released, as of the quarantine's current version."""
    version = lake.version(QUARANTINE)
    if version is None:
        return Source(None, {QUARANTINE: None})
    snapshot = lake.read(QUARANTINE, version=version)
    return Source(q.open_rows(snapshot), {f"{QUARANTINE}@read": version}, snapshot)


def rule_stats(flagged: DataFrame, rules: list[Rule], drop_rules: list[str]) -> tuple[dict, dict[str, int]]:
    """Per-rule evaluated/failed counts and the batch totals, in one aggregation over the flagged batch."""
    is_rejected = q.rejected(drop_rules)
    aggregates = [F.count(F.lit(1)).alias("rows"), F.sum(is_rejected.cast("long")).alias("rejected")]
    aggregates.append(F.count_distinct(F.when(~is_rejected, F.col("trip_key"))).alias("unique_passed"))
    for i, rule in enumerate(rules):
        aggregates.append(F.sum(rule.evaluated().cast("long")).alias(f"e{i}"))
        aggregates.append(F.sum(F.array_contains(q.VIOLATIONS, rule.name).cast("long")).alias(f"f{i}"))
    row = flagged.agg(*aggregates).first().asDict()
    totals = {k: int(row[k] or 0) for k in ("rows", "rejected", "unique_passed")}
    stats = {
        rule.name: {"rows": totals["rows"], "evaluated": int(row[f"e{i}"] or 0), "failed": int(row[f"f{i}"] or 0)}
        for i, rule in enumerate(rules)
    }
    return stats, totals


def check_agreement(stats: dict, verdict: quality.SuiteResult) -> None:
    """Spark's row flags and GE's unexpected counts come from one rule definition: a difference is a bug."""
    differ = {
        name: (verdict.unexpected.get(name), s["failed"])
        for name, s in stats.items()
        if verdict.unexpected.get(name) != s["failed"]
    }
    if differ:
        raise StageError(f"Great Expectations and the Spark rule flags disagree (rule: (GE, Spark)): {differ}")


def run_silver(lake: Lake, reprocess_quarantine: bool = False, run_id: str | None = None) -> StageResult:
    """One silver run: incremental from bronze, or `reprocess_quarantine` to re-check quarantined rows."""
    run_id = run_id or new_run_id(STAGE)
    started_at, clock = datetime.now(timezone.utc), time.perf_counter()
    rules = rules_for(lake)  # a broken rule file stops the run before anything is read
    zones = load_zones(lake)
    zone_ids = [row.zone_id for row in zones.select("zone_id").collect()]
    rules = [rule.bound({ZONE_REFERENCE: zone_ids}) for rule in rules]
    source = open_quarantine(lake) if reprocess_quarantine else bronze_changes(lake)
    mode = "reprocess_quarantine" if reprocess_quarantine else "incremental"
    result = StageResult(STAGE, run_id, versions=dict(source.versions), details={"mode": mode})
    counts = dict.fromkeys(["bronze_read", "silver_written", "quarantined", "duplicates"], 0)
    if source.rows is None:
        result.counts = counts
        result.details |= {"quarantined_by_rule": {}, "rules": [], "message": "no new rows"}
        quality.record_stage_run(lake, result, started_at, "0 = 0 + 0 + 0", True, "no new rows")
        return result
    ensure_table(lake, TARGET, SILVER_TRIPS)
    ensure_table(lake, QUARANTINE, q.QUARANTINE)
    drop_rules = [r.name for r in rules if r.action == "drop"]
    warn_rules = [r.name for r in rules if r.action == "warn"]
    batch = prepare_batch(source.rows, zones).withColumn(q.VIOLATIONS, violations(rules))
    batch = batch.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        stats, totals = rule_stats(batch, rules, drop_rules)
        docs = quality.data_docs_dir(lake) if lake.conf.get("silver.data_docs", False) else None
        examples = int(lake.conf.get("silver.ge_unexpected_examples", quality.DEFAULT_UNEXPECTED_EXAMPLES))
        verdict = quality.validate(batch, rules, SUITE, docs, examples)
        check_agreement(stats, verdict)
        failed = {r.name: stats[r.name]["failed"] for r in rules if r.action == "fail" and stats[r.name]["failed"]}
        result.details |= {
            "rules": [{"rule": r.name, "action": r.action, **stats[r.name]} for r in rules],
            "quarantined_by_rule": {name: stats[name]["failed"] for name in drop_rules if stats[name]["failed"]},
            "warned_by_rule": {name: stats[name]["failed"] for name in warn_rules if stats[name]["failed"]},
            "ge_success": verdict.success,
            "ge_seconds": round(verdict.seconds, 3),
            "data_docs": verdict.data_docs,
        }
        if failed:
            result.status = "failed"
            result.counts = counts | {"bronze_read": totals["rows"]}
            result.versions["quality.runs"] = quality.record_rules(
                lake, run_id, STAGE, SUITE, rules, stats, verdict, "failed"
            )
            message = f"fail rule(s) broken: {failed}; silver not changed"
            quality.record_stage_run(lake, result, started_at, "", None, message)
            name = next(iter(failed))
            raise ExpectationFailed(name, failed[name], f"expectation(s) with action fail broken: {failed}")
        counts = write(lake, batch, source, drop_rules, warn_rules, totals, run_id, result)
    finally:
        batch.unpersist()
    equation = (
        f"{counts['bronze_read']} = {counts['silver_written']} + {counts['quarantined']} + "
        f"{counts['duplicates_in_batch']} + {counts['duplicates_in_silver']}"
    )
    holds = counts["bronze_read"] == (
        counts["silver_written"]
        + counts["quarantined"]
        + counts["duplicates_in_batch"]
        + counts["duplicates_in_silver"]
    )
    result.counts = counts
    result.versions["quality.runs"] = quality.record_rules(
        lake, run_id, STAGE, SUITE, rules, stats, verdict, "success" if holds else "failed"
    )
    result.details["stage_seconds"] = round(time.perf_counter() - clock, 3)
    if not holds:
        result.status = "failed"
        quality.record_stage_run(lake, result, started_at, equation, False, "accounting invariant broken")
        raise StageError(f"accounting invariant broken (read = written + quarantined + duplicates): {equation}")
    if not reprocess_quarantine:
        lake.set_watermark(STAGE, SOURCE, result.versions[SOURCE])
    quality.record_stage_run(lake, result, started_at, equation, True, "")
    return result


def batch_days_filter(trips: DataFrame) -> str | None:
    """The target partitions a batch can match (the pickup day is part of the trip key), so MERGE reads only
    those days of silver.trips and a daily run costs in proportion to its batch, not to the table."""
    found = [row[0] for row in trips.select("pickup_date").distinct().collect()]
    days = sorted(day for day in found if day is not None)
    clauses = ["t.pickup_date IS NULL"] if len(days) < len(found) else []
    if days:
        clauses.append("t.pickup_date IN (" + ", ".join(f"DATE'{day.isoformat()}'" for day in days) + ")")
    return " OR ".join(clauses) or None


def write(
    lake: Lake,
    batch: DataFrame,
    source: Source,
    drop_rules: list[str],
    warn_rules: list[str],
    totals: dict[str, int],
    run_id: str,
    result: StageResult,
) -> dict[str, int]:
    """Merges passing trips into silver.trips (insert if absent) and rejected rows into silver.quarantine."""
    passed = batch.where(~q.rejected(drop_rules))
    trips = to_silver(dedupe(passed), run_id)
    merged = lake.merge(TARGET, trips, ["trip_key"], update_matched=False, target_filter=batch_days_filter(trips))
    if merged["operation"] == "NONE":  # Delta commits nothing when every trip is already there
        source_rows, inserted = totals["unique_passed"], 0
    else:
        source_rows = int(merged["metrics"]["numSourceRows"])
        inserted = int(merged["metrics"]["numTargetRowsInserted"])
    result.versions[TARGET] = merged["version"]
    if source.quarantine_snapshot is not None:
        released = q.released_rows(source.quarantine_snapshot, batch, drop_rules, run_id)
        result.versions[QUARANTINE] = lake.merge(QUARANTINE, released, q.QUARANTINE_KEYS)["version"]
    rejected = q.quarantine_rows(batch, drop_rules, warn_rules, run_id)
    if totals["rejected"]:
        rewritten = lake.merge(QUARANTINE, rejected, q.QUARANTINE_KEYS)
        metrics = rewritten["metrics"]
        quarantined = int(metrics.get("numTargetRowsInserted", 0)) + int(metrics.get("numTargetRowsUpdated", 0))
        result.versions[QUARANTINE] = rewritten["version"]
    else:
        quarantined = 0
    passed_rows = totals["rows"] - totals["rejected"]
    counts = {
        "bronze_read": totals["rows"],
        "silver_written": inserted,
        "quarantined": quarantined,
        "duplicates_in_batch": passed_rows - totals["unique_passed"],
        "duplicates_in_silver": source_rows - inserted,
    }
    counts["duplicates"] = counts["duplicates_in_batch"] + counts["duplicates_in_silver"]
    return counts
