"""Small reads of Delta tables and their logs with delta-rs (deltalake), without a Spark job: a watermark's latest
move and one commit's operation metrics. Through Spark each cost ~0.3-1.4 s in a small stage run against ~0.02-0.06 s
here (BENCHMARKS.md, "Bookkeeping reads without Spark"); Lake reads them through Spark when delta-rs cannot."""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc
from deltalake import DeltaTable

HISTORY_LIMIT = 20  # commits searched for a commit's metrics, newest first


def latest_move(path: str, storage: dict[str, str] | None, consumer: str, source: str) -> dict[str, Any] | None:
    """The key's latest row (source_version, updated_at) of the meta.watermarks table at path; None if it has none.
    Moves are strictly later than the key's previous move (Lake.set_watermark), so the latest time is the last move."""
    dataset = DeltaTable(path, storage_options=storage).to_pyarrow_dataset()
    key = (pc.field("consumer") == consumer) & (pc.field("source") == source)
    rows = dataset.to_table(columns=["source_version", "updated_at"], filter=key).to_pylist()
    return max(rows, key=lambda r: r["updated_at"], default=None)


def commit_metrics(path: str, storage: dict[str, str] | None, version: int | None = None) -> dict[str, str]:
    """The operation metrics Delta recorded for one commit (the latest when version is None); {} when the commit is
    not among the last HISTORY_LIMIT."""
    table = DeltaTable(path, storage_options=storage, without_files=True)  # the log only, not its files
    commits = table.history(1 if version is None else HISTORY_LIMIT)
    found = commits[:1] if version is None else [c for c in commits if int(c["version"]) == version]
    return {str(k): str(v) for k, v in (found[0].get("operationMetrics") or {}).items()} if found else {}
