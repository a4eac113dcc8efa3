"""Bookkeeping tables (meta.watermarks, bronze.ingest_log, quality.runs, quality.stage_runs): a few rows a run, read
and appended with delta-rs (deltalake) without a Spark job. A Spark read of meta.watermarks cost ~1.4 s a stage run
against ~0.06 s here, a Spark append of a few rows ~0.9 s against ~0.05 s (BENCHMARKS.md, "Bookkeeping reads without
Spark", "Bookkeeping appends without Spark"). Lake reads and appends through Spark where delta-rs cannot."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Schema, write_deltalake

MARKER = "taxiLakehouseAppend"  # a commitInfo key naming one append, to tell whether a failed call committed
COMPACT_AT = 50  # files: compacted after an append, as Delta's auto compaction (minNumFiles) does for Spark's writes
LOG = logging.getLogger(__name__)


def latest_move(path: str, storage: dict[str, str] | None, consumer: str, source: str) -> dict[str, Any] | None:
    """The key's latest row (source_version, updated_at) of the meta.watermarks table at path; None if it has none.
    Moves are strictly later than the key's previous move (Lake.set_watermark), so the latest time is the last move;
    a tie (two writers at once) goes to the higher version, as in Lake.watermark's Spark read."""
    dataset = _dataset(path, storage)
    key = (pc.field("consumer") == consumer) & (pc.field("source") == source)
    rows = dataset.to_table(columns=["source_version", "updated_at"], filter=key).to_pylist()
    return max(rows, key=lambda r: (r["updated_at"], r["source_version"]), default=None)


def read(path: str, storage: dict[str, str] | None, columns: list[str]) -> pa.Table:
    """Columns of the (small) Delta table at path."""
    return _dataset(path, storage).to_table(columns=columns)


def distinct(path: str, storage: dict[str, str] | None, column: str) -> set[Any]:
    """A column's distinct values, batch by batch: memory follows the distinct values, not the rows."""
    values: set[Any] = set()
    for batch in _dataset(path, storage).to_batches(columns=[column]):
        values.update(pc.unique(batch.column(0)).to_pylist())
    return values


def _dataset(path: str, storage: dict[str, str] | None):  # noqa: ANN202 - pyarrow.dataset.Dataset
    return DeltaTable(path, storage_options=storage).to_pyarrow_dataset()


class NotAppended(Exception):
    """delta-rs did not commit the rows (nothing landed): the caller appends them another way."""


def append(path: str, records: list[dict[str, Any]], user_metadata: str | None = None) -> int:
    """Appends records (dicts by column) to the existing Delta table at the local path in one commit; returns its
    version. Raises NotAppended when nothing was committed; an error after the commit (a post-commit hook) returns
    the version that holds the rows, found by the commit's marker, so a caller's retry cannot land them twice."""
    path = urlparse(path).path if path.startswith("file:") else path
    marker = uuid.uuid4().hex
    metadata = {MARKER: marker} | ({"userMetadata": user_metadata} if user_metadata else {})
    before = None
    try:
        table = DeltaTable(path)
        before = table.version()
        data = pa.Table.from_pylist(records, schema=pa.schema(table.schema().to_arrow()))
        write_deltalake(table, data, mode="append", commit_properties=CommitProperties(custom_metadata=metadata))
    except Exception as exc:
        committed = None if before is None else _committed(path, marker, before)
        if committed is None:
            raise NotAppended(f"{type(exc).__name__}: {exc}") from exc
        LOG.warning("append to %s committed version %s, then failed: %s", path, committed, exc)
        return committed
    version = table.version()
    _compact(table)
    return version


def create(
    path: str,
    schema_json: str,
    partition_by: list[str],
    properties: dict[str, str],
    records: list[dict[str, Any]] | None = None,
    user_metadata: str | None = None,
    exclusive: bool = False,
) -> int:
    """Creates the Delta table at the local path (schema as Spark's JSON, partitioning, properties) in one commit,
    holding records if any; returns its version. A table already there (another writer won the race) gets the
    records appended instead (a log), or, exclusive (reference data: written once), nothing. Raises NotAppended when
    nothing was committed and the table is not there. Spark's first write of a table costs ~0.5 s a table, this
    ~0.01 s (BENCHMARKS.md, "Small runs without their Spark fixed costs")."""
    path = urlparse(path).path if path.startswith("file:") else path
    schema = Schema.from_json(schema_json)
    if not records:
        try:
            DeltaTable.create(path, schema, mode="ignore", partition_by=partition_by or None, configuration=properties)
        except Exception as exc:
            if not DeltaTable.is_deltatable(path):
                raise NotAppended(f"{type(exc).__name__}: {exc}") from exc
        return DeltaTable(path).version()
    marker = uuid.uuid4().hex
    metadata = {MARKER: marker} | ({"userMetadata": user_metadata} if user_metadata else {})
    data = pa.Table.from_pylist(records, schema=pa.schema(schema.to_arrow()))
    try:
        write_deltalake(
            path,
            data,
            mode="error" if exclusive else "append",
            partition_by=partition_by or None,
            configuration=properties,
            commit_properties=CommitProperties(custom_metadata=metadata),
        )
    except Exception as exc:
        there = DeltaTable.is_deltatable(path)
        if there and exclusive:  # created by another writer (or by this one, before a later step failed)
            return DeltaTable(path).version()
        committed = _committed(path, marker, -1) if there else None
        if committed is None:
            raise NotAppended(f"{type(exc).__name__}: {exc}") from exc
        return committed
    found = _committed(path, marker, -1)  # 0 unless another writer created the table first
    return DeltaTable(path).version() if found is None else found


def _committed(path: str, marker: str, after: int) -> int | None:
    """The version after `after` whose commit carries marker, None if none does."""
    log = Path(path) / "_delta_log"
    for version in range(after + 1, after + 1000):
        commit = log / f"{version:020d}.json"
        if not commit.exists():
            return None
        for line in commit.read_text().splitlines():
            info = json.loads(line).get("commitInfo")
            if info is not None and info.get(MARKER) == marker:
                return version
    return None


def _compact(table: DeltaTable) -> None:
    """Bin-packs the table's files once COMPACT_AT accumulate (one per append); a failure is logged, not raised:
    the rows are committed, and a later append compacts."""
    try:
        if len(table.file_uris()) >= COMPACT_AT:
            table.optimize.compact()
    except Exception as exc:  # noqa: BLE001 - compaction is housekeeping
        LOG.warning("compaction of %s failed: %s", table.table_uri, exc)
