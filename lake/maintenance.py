"""Table maintenance: compaction (OPTIMIZE, optionally Z-ordered) and VACUUM of files no version needs."""

from __future__ import annotations

from typing import Any

from delta.tables import DeltaTable

from lake.catalog import Lake

DEFAULT_RETAIN_HOURS = 168  # Delta's default: keep a week of time travel


def optimize(lake: Lake, table: str, zorder_by: list[str] | None = None) -> dict[str, Any]:
    """Compacts small files; returns the OPTIMIZE metrics."""
    lake.read(table)  # a clear error when the table does not exist
    builder = DeltaTable.forPath(lake.spark, lake.path(table)).optimize()
    result = builder.executeZOrderBy(*zorder_by) if zorder_by else builder.executeCompaction()
    metrics = result.select("metrics.numFilesAdded", "metrics.numFilesRemoved").first()
    return {"files_added": int(metrics[0]), "files_removed": int(metrics[1]), "version": lake.version(table)}


def vacuum(lake: Lake, table: str, retain_hours: float = DEFAULT_RETAIN_HOURS) -> int | None:
    """Deletes data files older than retain_hours that no retained version references.

    Versions older than the retention window can no longer be read by time travel afterwards.
    """
    lake.read(table)  # a clear error when the table does not exist
    DeltaTable.forPath(lake.spark, lake.path(table)).vacuum(retain_hours)
    return lake.version(table)
