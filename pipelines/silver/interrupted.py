"""What a silver attempt that stopped between its commits left behind, so its rerun counts the batch right.

A run moves its watermark only after all of its commits, so the rerun reads the same batch. The data comes out
right (the retirement finds nothing left to delete, the appends leave out what is there), but without this the
rerun's counts describe only its own commits: trips the stopped attempt appended look like duplicates, and rows it
retired are counted by no run, so `lake doctor`'s accounting failed after a crash although the tables were right.
Silver rows carry the run that wrote them (`_silver_run_id`); quality.stage_runs names the runs that finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake import Lake

RUNS = "quality.stage_runs"
RETIRING = ("silver.trips", "silver.quarantine")  # the tables a silver run deletes rows of (retirement)


@dataclass(frozen=True)
class Finished:
    """The silver runs that finished (status success) and the last version of each table they recorded."""

    run_ids: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)


def finished(lake: Lake, stage: str = "silver") -> Finished:
    """From quality.stage_runs, read without a Spark job where delta-rs can."""
    if not lake.exists(RUNS):
        return Finished()
    rows = [r for r in lake.rows(RUNS, ["run_id", "stage", "status", "versions"]) if r["stage"] == stage]
    done = [r for r in rows if r["status"] == "success"]
    versions: dict[str, int] = {}
    for row in done:
        for table, version in dict(row["versions"] or []).items():
            if table in RETIRING and version is not None:
                versions[table] = max(versions.get(table, -1), int(version))
    return Finished(sorted({r["run_id"] for r in done}), versions)


def retired_since(lake: Lake, runs: Finished) -> int:
    """Rows deleted from silver.trips and silver.quarantine by commits no finished run recorded: an attempt that
    stopped after its retirement (each commit's numTargetRowsDeleted, read from the commit files)."""
    deleted = 0
    for table in RETIRING:
        current = lake.version(table)
        if current is None:
            continue
        for version in range(runs.versions.get(table, -1) + 1, current + 1):
            deleted += int(lake.commit_metrics(table, version).get("numTargetRowsDeleted", 0) or 0)
    return deleted


def written_by_others(rows: DataFrame, runs: Finished) -> DataFrame:
    """Silver rows an unfinished attempt wrote (the batch's own trips, appended before the attempt stopped)."""
    return rows.where(~F.col("_silver_run_id").isin(runs.run_ids)) if runs.run_ids else rows


def kept_by_finished(rows: DataFrame, runs: Finished) -> DataFrame:
    """Silver rows a finished run wrote."""
    return rows.where(F.col("_silver_run_id").isin(runs.run_ids)) if runs.run_ids else rows.limit(0)
