"""Table maintenance: compaction (OPTIMIZE, optionally Z-ordered), VACUUM that keeps pinned versions, RESTORE.

VACUUM deletes data files no version within the retention window needs; older versions can then no longer be read.
Callers pass the versions that must stay readable (e.g. those registered models were trained on): a vacuum that
would delete a file one of them needs is refused unless forced. No MLflow here: pipelines/pins.py finds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from lake import delta
from lake.catalog import WATERMARKS, Lake
from lake.errors import InputError, UserError
from lake.session import session_conf

DEFAULT_RETAIN_HOURS = 168  # Delta's default: keep a week of time travel
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
RETENTION_PROPERTY = "delta.deletedFileRetentionDuration"
CHANGE_DATA_DIR = "_change_data/"
_HOURS_PER_UNIT = {"week": 168, "day": 24, "hour": 1, "minute": 1 / 60, "second": 1 / 3600}


class VacuumRefusedError(UserError):
    """The vacuum would delete files a protected version needs; --force deletes them anyway."""


@dataclass
class VacuumPlan:
    """What a vacuum deletes and which versions can no longer be read afterwards."""

    table: str
    version: int
    retain_hours: float
    configured_hours: float = DEFAULT_RETAIN_HOURS
    data_files: list[str] = field(default_factory=list)
    change_files: list[str] = field(default_factory=list)  # change data feed files: feed readers lose them
    lost_up_to: int | None = None  # versions 0..lost_up_to can no longer be read afterwards
    blocked: dict[int, int] = field(default_factory=dict)  # protected version -> its files that would go
    done: bool = False

    def describe(self) -> str:
        lines = [
            f"{self.table} (version {self.version}), retaining {self.retain_hours:g} h: "
            f"{len(self.data_files)} data file(s) and {len(self.change_files)} change-feed file(s) "
            + ("deleted" if self.done else "to delete")
        ]
        if self.lost_up_to is not None:
            lines.append(f"  time travel to versions 0..{self.lost_up_to} is no longer possible afterwards")
        for version, files in sorted(self.blocked.items()):
            lines.append(f"  protected version {version} needs {files} of these file(s)")
        return "\n".join(lines)


def optimize(lake: Lake, table: str, zorder_by: list[str] | None = None) -> dict[str, Any]:
    """Compacts small files; returns the OPTIMIZE metrics."""
    lake.read(table)  # a clear error when the table does not exist
    builder = DeltaTable.forPath(lake.spark, lake.path(table)).optimize()
    result = builder.executeZOrderBy(*zorder_by) if zorder_by else builder.executeCompaction()
    metrics = result.select("metrics.numFilesAdded", "metrics.numFilesRemoved").first()
    return {"files_added": int(metrics[0]), "files_removed": int(metrics[1]), "version": lake.version(table)}


def configured_retention_hours(lake: Lake, table: str) -> float:
    """The table's delta.deletedFileRetentionDuration in hours (Delta's default: a week)."""
    setting = delta.table_properties(lake.spark, lake.path(table)).get(RETENTION_PROPERTY, "")
    match = re.fullmatch(r"\s*interval\s+(\d+)\s+(week|day|hour|minute|second)s?\s*", setting, re.IGNORECASE)
    return int(match.group(1)) * _HOURS_PER_UNIT[match.group(2).lower()] if match else DEFAULT_RETAIN_HOURS


def _normal(path: str) -> str:
    return unquote(path.removeprefix("file:").replace("file:///", "/"))


def version_files(lake: Lake, table: str, version: int) -> set[str] | None:
    """The data files a version reads, None when that version cannot be read anymore."""
    try:
        df = lake.spark.read.format("delta").option("versionAsOf", version).load(lake.path(table))
        return {_normal(path) for path in df.inputFiles()}
    except Exception:  # noqa: BLE001 - any failure here means the version is already unreadable
        return None


def _sql_path(lake: Lake, table: str) -> str:
    return "'" + lake.path(table).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _vacuum_sql(lake: Lake, table: str, retain_hours: float, dry_run: bool, unchecked: bool) -> list[str]:
    """Runs VACUUM (or its DRY RUN); the retention check is off only for this statement when unchecked."""
    spark = lake.spark
    sql = f"VACUUM {_sql_path(lake, table)} RETAIN {float(retain_hours)!r} HOURS" + (" DRY RUN" if dry_run else "")
    with session_conf(spark, {RETENTION_CHECK: "false"} if unchecked else {}):
        rows = spark.sql(sql).collect()
    return [_normal(row[0]) for row in rows] if dry_run else []


def plan_vacuum(
    lake: Lake, table: str, retain_hours: float | None = None, protected_versions: Iterable[int] = ()
) -> VacuumPlan:
    """The files a vacuum would delete, the versions it makes unreadable, and the protected versions it breaks.

    retain_hours None: the table's configured retention. A shorter retention than configured is the caller's
    explicit request: Delta's retention safety check is disabled for this vacuum only.
    """
    lake.read(table)  # a clear error when the table does not exist
    configured = configured_retention_hours(lake, table)
    hours = configured if retain_hours is None else float(retain_hours)
    if hours < 0:
        raise InputError(f"--retain-hours must be 0 or more, not {hours:g}")
    doomed = _vacuum_sql(lake, table, hours, dry_run=True, unchecked=hours < configured)
    latest = lake.version(table)
    plan = VacuumPlan(table, latest, hours, configured)
    plan.change_files = [path for path in doomed if CHANGE_DATA_DIR in path]
    plan.data_files = [path for path in doomed if CHANGE_DATA_DIR not in path]
    gone = set(plan.data_files)
    if gone:
        for version in range(latest - 1, -1, -1):  # the newest version that needs a deleted file
            files = version_files(lake, table, version)
            if files is None or files & gone:
                plan.lost_up_to = version
                break
        for version in sorted(set(protected_versions)):
            files = version_files(lake, table, version) if 0 <= version <= latest else None
            if files and files & gone:
                plan.blocked[version] = len(files & gone)
    return plan


def vacuum(
    lake: Lake,
    table: str,
    retain_hours: float | None = None,
    protected_versions: Iterable[int] = (),
    force: bool = False,
    dry_run: bool = False,
) -> VacuumPlan:
    """Deletes data files older than the retention that no retained version references, unless that would delete
    a file one of protected_versions needs (VacuumRefusedError, unless force). Returns what it deleted."""
    plan = plan_vacuum(lake, table, retain_hours, protected_versions)
    if plan.blocked and not force:
        versions = ", ".join(str(v) for v in sorted(plan.blocked))
        raise VacuumRefusedError(
            f"vacuum refused: {table} version(s) {versions} must stay readable (registered model versions were "
            f"trained on them) and retaining {plan.retain_hours:g} h would delete files they need. Retain more "
            "hours, or pass --force to delete them anyway"
        )
    if not dry_run and (plan.data_files or plan.change_files):
        unchecked = plan.retain_hours < plan.configured_hours
        _vacuum_sql(lake, table, plan.retain_hours, dry_run=False, unchecked=unchecked)
        plan.done = True
    return plan


def restore(lake: Lake, table: str, version: int, reset_consumers: Iterable[str] = ()) -> dict[str, Any]:
    """Restores a table to an earlier version (a new commit; history stays) and clears the watermarks that the
    restore makes wrong: every consumer that reads the table incrementally, and reset_consumers (the table's
    producer), so their next run rebuilds from the restored data. Returns the new version and what was cleared."""
    latest = lake.version(table)
    if latest is None:
        lake.read(table)  # TableMissingError with its usual message
    if not 0 <= version < latest:
        raise InputError(f"{table} is at version {latest}; restore to one of 0..{latest - 1}, not {version}")
    if version_files(lake, table, version) is None:
        raise InputError(f"{table} version {version} can no longer be read (vacuumed?); pick a later version")
    metrics = DeltaTable.forPath(lake.spark, lake.path(table)).restoreToVersion(version).first().asDict()
    cleared: list[str] = []
    if lake.exists(WATERMARKS):
        marks = lake.read(WATERMARKS)
        stale = (F.col("source") == table) | F.col("consumer").isin(*[str(c) for c in reset_consumers] or [""])
        cleared = sorted({f"{r.consumer} on {r.source}" for r in marks.where(stale).collect()})
        if cleared:
            DeltaTable.forPath(lake.spark, lake.path(WATERMARKS)).delete(stale)
    return {"version": lake.version(table), "restored_to": version, "metrics": metrics, "watermarks_cleared": cleared}
