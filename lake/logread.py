"""A watermark's latest move read with delta-rs (deltalake), without a Spark job: meta.watermarks is a few small files,
and a Spark read of it cost ~1.4 s a stage run against ~0.06 s here (BENCHMARKS.md, "Bookkeeping reads without
Spark"). Lake.watermark reads it through Spark when delta-rs cannot."""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc
from deltalake import DeltaTable


def latest_move(path: str, storage: dict[str, str] | None, consumer: str, source: str) -> dict[str, Any] | None:
    """The key's latest row (source_version, updated_at) of the meta.watermarks table at path; None if it has none.
    Moves are strictly later than the key's previous move (Lake.set_watermark), so the latest time is the last move;
    a tie (two writers at once) goes to the higher version, as in Lake.watermark's Spark read."""
    dataset = DeltaTable(path, storage_options=storage).to_pyarrow_dataset()
    key = (pc.field("consumer") == consumer) & (pc.field("source") == source)
    rows = dataset.to_table(columns=["source_version", "updated_at"], filter=key).to_pylist()
    return max(rows, key=lambda r: (r["updated_at"], r["source_version"]), default=None)
