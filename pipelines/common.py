"""What every stage runner shares: run ids, the result it returns, the errors it raises."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame

from lake.errors import StageError
from lake.session import session_conf


def new_run_id(stage: str) -> str:
    """A sortable, unique run id such as silver-20190115T020000-1a2b3c."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stage}-{stamp}-{uuid.uuid4().hex[:6]}"


__all__ = ["ExpectationFailed", "StageError", "StageResult", "new_run_id"]


class ExpectationFailed(StageError):
    """A `fail` expectation was violated; nothing downstream of the check was written."""

    def __init__(self, rule: str, failed: int, message: str = "") -> None:
        self.rule = rule
        self.failed = failed
        super().__init__(message or f"expectation '{rule}' (action: fail) failed on {failed} row(s)")


@dataclass
class StageResult:
    """What a stage run did: counts, the Delta versions it wrote, and details for reports."""

    stage: str
    run_id: str
    status: str = "success"
    counts: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "run_id": self.run_id,
            "status": self.status,
            "counts": self.counts,
            "versions": self.versions,
            "details": self.details,
        }

    def summary_markdown(self) -> str:
        """A short markdown report (used by the CLI and by Prefect artifacts)."""
        lines = [f"### {self.stage} `{self.run_id}`: {self.status}", "", "| count | rows |", "|---|---:|"]
        lines += [f"| {name} | {value:,} |" for name, value in self.counts.items()]
        if self.versions:
            lines += ["", "| table | Delta version |", "|---|---:|"]
            lines += [f"| {name} | {version} |" for name, version in self.versions.items()]
        return "\n".join(lines)


SERIALIZED = StorageLevel(useDisk=True, useMemory=True, useOffHeap=False, deserialized=False)


def materialize(df: DataFrame, keep_partitioning: bool = False) -> DataFrame:
    """df computed once now and read from there by every later job (counts, checks and the writes agree).

    A local checkpoint, not persist(): it cuts a long lineage (the typed batch with every rule), so later plans stay
    small, and it stays out of Spark's CacheManager, whose unpersist re-plans every cached plan that could depend
    on the frame (minutes per call for the silver batch). Free its blocks with `release` when done.
    Stored serialized (in memory, spilling to disk): Spark's default for a checkpoint keeps one Java object per row,
    and silver's 5M-row batch took 1.8 GB and spilled, against 1.0 GB in memory; silver and gold at 5M rows took
    15-21% and 10-13% less (bench/results/scale.md).
    keep_partitioning: the stored frame keeps df's hash partitioning (a `repartition(n, columns)` at its top), so later
    joins and aggregations on those columns and writes partitioned by them read it without another shuffle. A
    checkpoint records its plan's partitioning only when adaptive execution is off for that query (an adaptive plan
    reports none), so it is off while this one runs (its shuffles' partition counts are set explicitly anyway).
    """
    settings = {"spark.sql.adaptive.enabled": "false"} if keep_partitioning else {}
    with session_conf(df.sparkSession, settings):
        return df.localCheckpoint(eager=True, storageLevel=SERIALIZED)


def release(frames: list[DataFrame]) -> None:
    """Frees now what `materialize` (or persist) stored for these frames, and empties the list.

    Spark frees a local checkpoint's blocks only once its RDD is garbage collected in the JVM, and a finished run's
    frames were not: after a 5M-row silver run, 2.5 GB of its batch stayed in the block manager (on disk) through a
    Python and a JVM gc, into the gold run of the same process and every later run of a long-lived one.
    """
    for df in frames:
        if df.is_cached:
            df.unpersist()
        plan = df._jdf.queryExecution().logical()  # a materialized frame is a LogicalRDD over its checkpoint
        if plan.getClass().getSimpleName() == "LogicalRDD":
            plan.rdd().unpersist(False)
    frames.clear()


class Progress:
    """Progress lines of a long stage run for a terminal or a flow log: what is done and the time since the start."""

    def __init__(self, stage: str, say: Callable[[str], None] | None) -> None:
        self.stage, self.say, self.started = stage, say, time.perf_counter()

    def __call__(self, what: str) -> None:
        if self.say is not None:
            self.say(f"{self.stage}: {what} [{time.perf_counter() - self.started:.1f} s]")
