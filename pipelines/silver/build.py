"""build_silver: a bronze batch -> passing rows, quarantine rows and the per-rule counts. No Lake, no writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lake.expressions import reused
from pipelines.bronze.files import file_identity
from pipelines.common import materialize, release
from pipelines.rules import Rule, signature, violations
from pipelines.silver import quarantine as q
from pipelines.silver.transform import RAW, prepare_batch, with_row_ids

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class FileVersion:
    """One source file version (content hash) in a batch."""

    source_hash: str | None
    source_file: str | None
    ingested_at: datetime | None
    rows: int

    @property
    def identity(self) -> str | None:
        return file_identity(self.source_file)


def _utc(moment: datetime | None) -> datetime:
    """Aware UTC (a naive time from Spark is local time, as PySpark gives it); None sorts first."""
    return (moment or EPOCH).astimezone(timezone.utc)


def newest_versions(
    files: list[FileVersion],
    logged: dict[str, list] | None = None,
    exists: Callable[[list[str]], set[str]] | None = None,
) -> dict[str | None, FileVersion]:
    """Per file identity, its newest version: the batch's versions dated when they landed or, if later, when
    bronze.ingest_log says they became current (`logged`: `ingest_log.versions_by_file`; an earlier version published
    again is current from then); ties: the later path, then the hash. A logged version outside the batch newer than
    all of them, and still in bronze (`exists`: of these hashes, those bronze holds), is returned with no rows: every
    version of that file in the batch is then older. A file outside the batch whose latest content the batch holds
    (landed under another name) is returned too, so its older versions are retired."""
    logged = logged or {}
    became: dict[str, datetime] = {}
    for versions in logged.values():
        for at, _, content_hash in versions:
            became[content_hash] = max(became.get(content_hash, at), at)

    def order(v: FileVersion) -> tuple:
        at = max(_utc(v.ingested_at), became.get(v.source_hash or "", _utc(None)))
        return (at, v.source_file or "", v.source_hash or "")

    newest: dict[str | None, FileVersion] = {}
    for version in sorted(files, key=order):
        newest[version.identity] = version
    later = {
        identity: sorted((v for v in logged.get(identity or "", []) if v > order(version)), reverse=True)
        for identity, version in newest.items()
    }
    in_batch = {v.source_hash for v in files}
    for identity, versions in logged.items():  # a file whose latest content landed under another file's name
        at, source_file, content_hash = max(versions)
        if identity not in newest and content_hash in in_batch:
            newest[identity] = FileVersion(content_hash, source_file, at, 0)
    candidates = sorted({v[2] for versions in later.values() for v in versions})
    held = set(candidates) if exists is None or not candidates else exists(candidates)
    for identity, versions in later.items():
        found = next((v for v in versions if v[2] in held), None)
        if found is not None and found[2] != newest[identity].source_hash:
            newest[identity] = FileVersion(found[2], found[1], found[0], 0)
    return newest


@dataclass
class BatchStats:
    """What the rules and the version check found in a batch; `flagged` is the (persisted) frame GE validates."""

    rules: dict[str, dict[str, int]]
    rows: int  # typed rows, every file version (summed per file)
    kept: int  # typed rows of the newest versions (counted by the rule aggregation)
    superseded: int  # rows of an older version of a file that a newer version in the same batch replaces
    rejected: int  # rows breaking a drop rule
    files: list[FileVersion]
    days: list[date | None] = field(default_factory=list)  # pickup days of the kept rows (None: rows without one)
    superseded_hashes: list[str] = field(default_factory=list)
    newest: dict[str | None, FileVersion] = field(default_factory=dict)  # per file in the batch, its newest version
    flagged: DataFrame | None = None  # the typed, flagged rows that count (superseded versions left out)
    _cached: list[DataFrame] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return self.kept - self.rejected

    def release(self) -> None:
        release(self._cached)


@dataclass(frozen=True)
class FileCounts:
    """One file version's rows on one pickup day (None: rows without one), with their rule counts."""

    version: FileVersion
    day: date | None
    counts: dict[str, int]  # rows, rejected, e<i> (evaluated) and f<i> (failed) per rule, in rule order


def batch_counts(flagged: DataFrame, rules: list[Rule], drop_rules: list[str]) -> list[FileCounts]:
    """Rows, rejected rows and per-rule counts per file version and pickup day, in one aggregation over the batch.

    Grouped by day rather than collecting each file's days, so the aggregation is Spark's generated hash
    aggregate (no object aggregate); the groups are files x days, not rows."""
    key = ("silver.batch_counts", signature(rules), tuple(drop_rules))
    grouped = flagged.groupBy("_source_hash", "_source_file", "pickup_date")
    result = []
    for row in grouped.agg(*reused(key, lambda: _rule_aggregates(rules, drop_rules))).collect():
        values = row.asDict()
        version = FileVersion(values.pop("_source_hash"), values.pop("_source_file"), values.pop("ingested_at"), 0)
        day = values.pop("pickup_date")
        result.append(FileCounts(version, day, {k: int(v or 0) for k, v in values.items()}))
    return result


def summed(groups: list[FileCounts], rules: list[Rule]) -> tuple[dict, dict[str, Any]]:
    """Per-rule evaluated/failed counts and the batch totals (rows, rejected, the pickup days with None for rows
    without one) over groups of batch_counts."""
    totals = {k: sum(g.counts[k] for g in groups) for k in ("rows", "rejected")}
    days = {g.day for g in groups}
    totals["days"] = sorted(d for d in days if d is not None) + ([None] if None in days else [])
    stats = {
        rule.name: {
            "rows": totals["rows"],
            "evaluated": sum(g.counts[f"e{i}"] for g in groups),
            "failed": sum(g.counts[f"f{i}"] for g in groups),
        }
        for i, rule in enumerate(rules)
    }
    return stats, totals


def rule_counts(flagged: DataFrame, rules: list[Rule], drop_rules: list[str]) -> tuple[dict, dict[str, Any]]:
    """Per-rule counts and totals of a whole flagged batch (every file version)."""
    return summed(batch_counts(flagged, rules, drop_rules), rules)


def _rule_aggregates(rules: list[Rule], drop_rules: list[str]) -> list[Column]:
    aggregates = [
        F.max("_ingested_at").alias("ingested_at"),
        F.count(F.lit(1)).alias("rows"),
        F.count_if(q.rejected(drop_rules)).alias("rejected"),
    ]
    for i, rule in enumerate(rules):
        aggregates.append(F.count_if(rule.evaluated()).alias(f"e{i}"))
        aggregates.append(F.count_if(F.array_contains(q.VIOLATIONS, rule.name)).alias(f"f{i}"))
    return aggregates


def file_versions(groups: list[FileCounts]) -> list[FileVersion]:
    """The file versions of a batch with their row counts and latest ingestion time, from batch_counts' groups."""
    by_version: dict[tuple, list[FileCounts]] = {}
    for group in groups:
        by_version.setdefault((group.version.source_hash, group.version.source_file), []).append(group)
    return [
        FileVersion(
            source_hash,
            source_file,
            max((g.version.ingested_at for g in parts if g.version.ingested_at is not None), default=None),
            sum(g.counts["rows"] for g in parts),
        )
        for (source_hash, source_file), parts in by_version.items()
    ]


def protected_hashes(files: list[FileVersion], published: dict[str, str] | None) -> set[str]:
    """Hashes that are the latest content of a file outside the batch (`published`: file identity -> latest hash):
    the same bytes landed once under one name and were also published under another, which still holds them."""
    in_batch = {v.identity for v in files}
    return {h for identity, h in (published or {}).items() if identity not in in_batch}


def build_silver(
    bronze: DataFrame,
    zones: DataFrame,
    rules: list[Rule],
    run_id: str,
    supersede: bool = True,
    published: dict[str, str] | None = None,
    logged: dict[str, list] | None = None,
    exists: Callable[[list[str]], set[str]] | None = None,
) -> tuple[DataFrame, DataFrame, BatchStats]:
    """bronze.trips rows -> (passing rows, silver.quarantine rows, stats).

    Rules must be bound (`Rule.bound`). With `supersede`, rows of an older version of a file (same `file_identity`,
    another content hash; `newest_versions` of the batch and the log, `logged`) are left out, unless another file
    still holds that content (`protected_hashes` of `published`). The passing rows are the
    typed batch's rows no drop rule rejects, each with its ROW_ID; deduplicating them by trip_key and leaving out the
    trips silver already has is the writer's plan (pipelines.silver.write). The typed batch is materialized once
    (rules, GE and both outputs read it), with the raw text (`_raw`) only on rows a drop rule rejects: call
    `stats.release()` when done.
    """
    drop_rules = [r.name for r in rules if r.action == "drop"]
    warn_rules = [r.name for r in rules if r.action == "warn"]
    flagged = prepare_batch(bronze, zones).withColumn(q.VIOLATIONS, violations(rules))
    flagged = materialize(with_row_ids(flagged.withColumn(RAW, q.raw_if_rejected(drop_rules))))
    groups = batch_counts(flagged, rules, drop_rules)
    files = file_versions(groups)
    latest = newest_versions(files, logged, exists)
    newest = {v.source_hash for v in latest.values()} if supersede else None
    keep = protected_hashes(files, published)
    old = sorted({v.source_hash for v in files if newest is not None and v.source_hash not in newest | keep})
    kept = flagged.where(~F.col("_source_hash").isin(old)) if old else flagged
    per_rule, totals = summed([g for g in groups if g.version.source_hash not in old], rules)
    superseded = sum(v.rows for v in files if v.source_hash in old)
    rows = sum(v.rows for v in files)
    stats = BatchStats(
        per_rule, rows, totals["rows"], superseded, totals["rejected"], files, totals["days"], old, latest, kept
    )
    stats._cached.append(flagged)
    passing = kept.where(~q.rejected(drop_rules))
    quarantine = q.quarantine_rows(kept, drop_rules, warn_rules, run_id)
    return passing, quarantine, stats
