"""run_silver: read the new bronze rows (or the open quarantine) -> build_silver -> validate -> write -> watermark."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark.sql import DataFrame

from lake import Lake
from lake.errors import MissingInputError
from pipelines import quality
from pipelines.bronze import ingest_log
from pipelines.common import ExpectationFailed, Progress, StageError, StageResult, new_run_id
from pipelines.rules import ACTIONS, Rule, load_rules
from pipelines.silver import accounting, interrupted, readmit, reinstate, verdicts
from pipelines.silver import quarantine as q
from pipelines.silver import write as w
from pipelines.silver.build import BatchStats, build_silver, rule_counts
from pipelines.silver.transform import batch_columns, read_zone_csv

STAGE = "silver"
SOURCE, TARGET, QUARANTINE, ZONES = "bronze.trips", "silver.trips", "silver.quarantine", "silver.zones"
SUITE = "silver_trips"
ZONE_REFERENCE = "zones"  # the name rules use in `value_set_from`
rule_stats = rule_counts  # the name the sample tests use


def rules_for(lake: Lake) -> list[Rule]:
    """The silver rules from conf (`silver.rules`), checked against the typed batch's columns."""
    return load_rules(lake.conf.conf_file("silver.rules"), batch_columns(lake.spark), [ZONE_REFERENCE])


def load_zones(lake: Lake) -> DataFrame:
    """silver.zones, loaded from the lookup CSV (conf `bronze.zone_lookup`) the first time it is needed."""
    if not lake.exists(ZONES):  # 265 rows, written once as records (no Spark write on a local root)
        zones = read_zone_csv(lake.spark, lake.conf.path("bronze.zone_lookup")).collect()
        lake.create(ZONES, [row.asDict() for row in zones])
    return lake.read(ZONES)


@dataclass
class Source:
    """What a run reads: bronze changes up to a pinned version, or the open quarantine rows."""

    rows: DataFrame | None
    versions: dict[str, int | None]
    quarantine_snapshot: DataFrame | None = None
    read_again: int = 0  # rows of reinstated files read again (`pipelines.silver.reinstate`)
    again_hashes: list[str] = field(default_factory=list)
    log_version: int | None = None  # bronze.ingest_log version to move silver's watermark on it to, once done


def bronze_changes(lake: Lake) -> Source:
    """bronze.trips rows added after the watermark, up to the version current now (pinned: rows appended during
    the run belong to the next run)."""
    latest = lake.version(SOURCE)
    if latest is None:
        raise MissingInputError(f"{SOURCE} does not exist yet at {lake.path(SOURCE)}; run `lake ingest` first")
    after = lake.watermark(STAGE, SOURCE)
    if after is None:  # a first run, or a rebuild (`lake restore` cleared the watermark): bronze as it is now
        rows = lake.read(SOURCE, version=latest)
    else:
        rows = None if after >= latest else lake.read_changes(SOURCE, after, latest)
    hashes, log_version = reinstate.pending(lake, STAGE)
    rows, read_again, again = reinstate.with_reinstated(lake, rows, hashes, latest)
    versions = {f"{SOURCE}@from": after, SOURCE: latest}
    return Source(rows, versions, read_again=read_again, again_hashes=again, log_version=log_version)


def open_quarantine(lake: Lake) -> Source:
    """The quarantined rows not yet released, as of the quarantine's current version."""
    version = lake.version(QUARANTINE)
    if version is None:
        return Source(None, {QUARANTINE: None})
    snapshot = lake.read(QUARANTINE, version=version)
    return Source(q.open_rows(snapshot), {f"{QUARANTINE}@read": version}, snapshot)


def read_source(lake: Lake, reprocess_quarantine: bool) -> Source:
    return open_quarantine(lake) if reprocess_quarantine else bronze_changes(lake)


def validate(lake: Lake, stats: BatchStats, rules: list[Rule], result: StageResult, run_id: str, started_at):
    """GE's suite on the persisted batch, checked against the Spark counts; a broken `fail` rule stops the run."""
    docs = quality.data_docs_dir(lake) if lake.conf.require("silver.data_docs") else None
    examples = int(lake.conf.require("silver.ge_unexpected_examples"))
    if stats.kept:
        verdict = None  # a small batch: GE's pandas engine first (verdicts.on_driver)
        if stats.kept <= int(lake.conf.get("silver.ge_pandas_max_rows", 0)):
            verdict = verdicts.on_driver(stats, rules, SUITE, docs, examples)
        if verdict is None:
            verdict = quality.validate(stats.flagged, rules, SUITE, docs, examples)
    else:  # every row is an older version of a file (a reinstated version is newer): nothing to validate
        verdict = quality.SuiteResult(True, {r.name: True for r in rules}, {r.name: 0 for r in rules}, 0.0)
    verdicts.check_agreement(stats.rules, verdict)
    by_action = {a: [r.name for r in rules if r.action == a and stats.rules[r.name]["failed"]] for a in ACTIONS}
    result.details |= {
        "rules": [{"rule": r.name, "action": r.action, **stats.rules[r.name]} for r in rules],
        "quarantined_by_rule": {n: stats.rules[n]["failed"] for n in by_action["drop"]},
        "warned_by_rule": {n: stats.rules[n]["failed"] for n in by_action["warn"]},
        "ge_success": verdict.success,
        "ge_seconds": round(verdict.seconds, 3),
        "ge_engine": verdict.engine,
        "data_docs": verdict.data_docs,
    }
    failed = {n: stats.rules[n]["failed"] for n in by_action["fail"]}
    if failed:
        result.status = "failed"
        result.versions["quality.runs"] = quality.record_rules(
            lake, run_id, STAGE, SUITE, rules, stats.rules, verdict, "failed"
        )
        message = f"fail rule(s) broken: {failed}; silver not changed"
        quality.record_stage_run(lake, result, started_at, "", None, message)
        name = next(iter(failed))
        raise ExpectationFailed(name, failed[name], f"expectation(s) with action fail broken: {failed}")
    return verdict


def _fail_accounting(lake: Lake, result: StageResult, started_at, checks, when: str) -> None:
    bad = accounting.broken(checks)
    result.status = "failed"
    message = f"accounting broken {when}: " + accounting.summary(bad)
    quality.record_stage_run(lake, result, started_at, accounting.summary(checks), False, message)
    raise StageError(message)


def readmit_orphans(
    lake: Lake,
    source: Source,
    zones: DataFrame,
    retire: list[str],
    latest,
    stats: BatchStats,
    passing: DataFrame,
    runs: interrupted.Finished,
) -> readmit.Readmitted:
    """Adds to the source the live files' bronze rows holding trips of versions this run retires from silver (not
    the batch's own older versions), counted as read again (`pipelines.silver.readmit`)."""
    in_batch = set(stats.superseded_hashes)
    outside = [h for h in retire if h not in in_batch]
    if not outside or source.rows is None:
        return readmit.Readmitted()
    live = set((latest or {}).values()) - {v.source_hash for v in stats.files}
    back = readmit.orphaned(lake, source.versions[SOURCE], zones, outside, live, passing, runs)
    if back.count:
        source.rows = source.rows.unionByName(back.rows)
        source.read_again += back.count
        source.again_hashes = sorted(set(source.again_hashes) | set(back.hashes))
    return back


def move_watermarks(lake: Lake, source: Source) -> None:
    """After a run's commits: silver's watermark on bronze.trips (and on bronze.ingest_log, see reinstate)."""
    lake.set_watermark(STAGE, SOURCE, source.versions[SOURCE])
    if source.log_version is not None:
        lake.set_watermark(STAGE, reinstate.LOG, source.log_version)


def _no_rows(lake: Lake, result: StageResult, started_at, source: Source | None) -> StageResult:
    """A run that read no rows: recorded, the watermarks (when a source is given) moved past the empty range."""
    result.counts = dict.fromkeys(["bronze_read", "silver_written", "quarantined", "duplicates", "superseded"], 0)
    result.details |= {"quarantined_by_rule": {}, "rules": [], "message": "no new rows"}
    if source is not None and source.log_version is not None:
        result.versions[reinstate.LOG] = source.log_version
    quality.record_stage_run(lake, result, started_at, "0 = 0 + 0 + 0 + 0", True, "no new rows")
    if source is not None:
        move_watermarks(lake, source)
    return result


def run_silver(
    lake: Lake,
    reprocess_quarantine: bool = False,
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> StageResult:
    """One silver run: incremental from bronze, or `reprocess_quarantine` to re-check quarantined rows."""
    run_id = run_id or new_run_id(STAGE)
    say = Progress(STAGE, progress)
    started_at, clock = datetime.now(timezone.utc), time.perf_counter()
    rules = rules_for(lake)  # a broken rule file stops the run before anything is read
    zones = load_zones(lake)
    # once, not once per rule; read by delta-rs where it can (a Spark job was 0.15 s of a small run, 0.75 s of a
    # fresh lake's first: bench/results/suite.md)
    zone_ids = sorted(lake.distinct(ZONES, "zone_id"))
    rules = [rule.bound({ZONE_REFERENCE: zone_ids}) for rule in rules]
    runs = interrupted.finished(lake)  # what finished runs recorded, and a stopped attempt's traces
    if not reprocess_quarantine:
        interrupted.repair_watermarks(lake, STAGE, runs)
    source = read_source(lake, reprocess_quarantine)
    mode = "reprocess_quarantine" if reprocess_quarantine else "incremental"
    result = StageResult(STAGE, run_id, versions=dict(source.versions), details={"mode": mode})
    if source.rows is None:
        return _no_rows(lake, result, started_at, source if source.log_version is not None else None)
    if not reprocess_quarantine and source.versions[f"{SOURCE}@from"] is None:
        result.details["cleared"] = w.start_over(lake)
        runs = interrupted.Finished()  # a rebuild starts over: nothing a stopped attempt left stays
    lake.create(TARGET)  # empty: every later write is an append or MERGE with comparable metrics
    lake.create(QUARANTINE)
    supersede = bool(lake.conf.require("silver.supersede_republished")) and not reprocess_quarantine
    phases: dict[str, float] = {}
    mark = time.perf_counter()
    read = source.rows.count()  # what the change feed (or the quarantine) gave, counted once at the read
    phases["read_count"] = time.perf_counter() - mark
    say(f"read {read:,} rows ({mode})")
    if read == 0:  # commits without inserted rows (OPTIMIZE, a delete) or no open quarantine: nothing to check
        return _no_rows(lake, result, started_at, None if reprocess_quarantine else source)
    latest = w.published(lake) if supersede else None
    logged = ingest_log.versions_by_file(lake) if supersede else None
    exists = reinstate.in_bronze(lake, source.versions[SOURCE]) if supersede else None
    passing, rejected, stats = build_silver(source.rows, zones, rules, run_id, supersede, latest, logged, exists)
    write_plan = None
    try:
        retire = w.superseded_hashes(stats, latest, logged) if supersede else []
        back = readmit_orphans(lake, source, zones, retire, latest, stats, passing, runs)
        if back.count:  # the batch gained rows: built again, so rules, GE and the plan see one batch
            stats.release()
            read += back.count
            say(f"read {back.count:,} rows again: live files hold trips of the retired versions")
            try:
                passing, rejected, stats = build_silver(
                    source.rows, zones, rules, run_id, supersede, latest, logged, exists
                )
            finally:
                stats._cached.append(back.rows)  # freed with the batch (the released one's, if the build failed)
        phases["build"] = time.perf_counter() - mark - phases["read_count"]
        say(f"typed and checked {stats.rows:,} rows against {len(rules)} rules: {stats.rejected:,} rejected")
        mark = time.perf_counter()
        verdict = validate(lake, stats, rules, result, run_id, started_at)
        phases["great_expectations"] = time.perf_counter() - mark
        say(f"Great Expectations suite ({verdict.engine} engine): {'passed' if verdict.success else 'failed'}")
        mark = time.perf_counter()
        if reprocess_quarantine:
            drop_rules = [r.name for r in rules if r.action == "drop"]
            released = q.released_rows(source.quarantine_snapshot, stats.flagged, drop_rules, run_id)
            rejected = released.unionByName(rejected)
        stopped = None if reprocess_quarantine else runs  # a stopped attempt's trips are an incremental batch's
        write_plan = w.plan(
            lake, passing, rejected, stats, retire, reprocess_quarantine, run_id, source.again_hashes, stopped
        )
        counts = accounting.counts(read, stats, write_plan.expected)
        resuming = runs.run_ids and not reprocess_quarantine
        counts["retired_earlier"] = interrupted.retired_since(lake, runs) if resuming else 0
        # rows read again that are new to silver's accounting (not a quarantine row already there): lake doctor
        counts["reinstated"] = source.read_again - write_plan.expected["quarantine_present_again"]
        counts["readmitted"] = back.count
        result.counts, result.details["retired_hashes"] = counts, retire
        phases["plan"] = time.perf_counter() - mark
        say(f"planned: {counts.get('silver_written', 0):,} to silver, {counts.get('quarantined', 0):,} to quarantine")
        checks = accounting.before_commit(counts, stats, write_plan.expected)
        if accounting.broken(checks):
            _fail_accounting(lake, result, started_at, checks, "before commit (nothing written)")
        mark = time.perf_counter()
        committed = w.commit(lake, write_plan, reprocess_quarantine, result.versions)
        phases["commit"] = time.perf_counter() - mark
        say("committed silver.trips and silver.quarantine")
        after = accounting.after_commit(write_plan.expected, committed, reprocess_quarantine, read)
        if accounting.broken(after):
            _fail_accounting(lake, result, started_at, checks + after, "in the committed Delta metrics")
    finally:
        stats.release()
        if write_plan is not None:
            write_plan.release()
    result.versions["quality.runs"] = quality.record_rules(
        lake, run_id, STAGE, SUITE, rules, stats.rules, verdict, "success"
    )
    result.details["phase_seconds"] = {name: round(s, 3) for name, s in phases.items()}
    result.details["stage_seconds"] = round(time.perf_counter() - clock, 3)
    if not reprocess_quarantine:  # the versions the run leaves and read up to (pipelines.silver.interrupted)
        for table in (TARGET, QUARANTINE):
            result.versions.setdefault(table, lake.version(table))
        if source.log_version is not None:
            result.versions[reinstate.LOG] = source.log_version
    # recorded, then the watermarks: a stop between the two is repaired from the record by the next run
    quality.record_stage_run(lake, result, started_at, accounting.summary(checks + after), True, "")
    if not reprocess_quarantine:  # only after silver and quarantine committed
        move_watermarks(lake, source)
    return result
