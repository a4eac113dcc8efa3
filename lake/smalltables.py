"""The Lake's bookkeeping tables (meta.watermarks, bronze.ingest_log, quality.runs, quality.stage_runs): a few rows
a run, read and appended by delta-rs without a Spark job where it can (lake.bookkeeping), else through Spark."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake import bookkeeping
from lake.config import is_uri

if TYPE_CHECKING:
    from lake.catalog import Lake

WATERMARKS = "meta.watermarks"
FEED_DEFAULT = "delta.enableChangeDataFeed"  # the one session default (lake.session) delta-rs writes alike
LOG = logging.getLogger(__name__)


class SmallTables:
    """Lake's methods for small tables and watermarks (a mixin: Lake is the only class using it)."""

    def append_records(self: Lake, table: str, records: list[dict[str, Any]], user_metadata: str | None = None) -> int:
        """A few rows (bookkeeping) in one append commit; returns its version. By delta-rs once the table exists on
        a local root (lake.bookkeeping: no Spark job), else, or when delta-rs committed nothing, by Lake.append."""
        records = _fitted(table, self.spec(table).schema, records)
        if self._delta_rs_writes:
            try:
                if not self.exists(table):
                    return self._create(table, records, user_metadata)
                self.ensure_properties(table)
                return bookkeeping.append(self.path(table), records, user_metadata)
            except bookkeeping.NotAppended as exc:
                LOG.warning("delta-rs cannot append to %s (%s); appending with Spark", table, exc)
        return self.append(table, self.spark.createDataFrame(records, self.spec(table).schema), user_metadata)

    def create(self: Lake, table: str, records: list[dict[str, Any]] | None = None) -> None:
        """Creates the table if it is missing, empty or holding records, by delta-rs on a local root (no Spark job):
        an empty table makes every later write an append or a MERGE with comparable metrics; records are reference
        data, written once: a table another writer created first is left as it is."""
        if self.exists(table):
            return
        if self._delta_rs_writes:
            try:
                self._create(table, _fitted(table, self.spec(table).schema, records or []), exclusive=True)
                return
            except bookkeeping.NotAppended as exc:
                LOG.warning("delta-rs cannot create %s (%s); creating it with Spark", table, exc)
        if records:
            self.overwrite(table, self.spark.createDataFrame(records, self.spec(table).schema))
        else:
            self.append(table, self.empty(table))

    def _create(
        self: Lake,
        table: str,
        records: list[dict[str, Any]] | None = None,
        user_metadata: str | None = None,
        exclusive: bool = False,
    ) -> int:
        """The table created by delta-rs as Spark's first write would create it: the registry's schema with every
        column nullable (Spark's file writes store them so), partitioning, and properties with the session's
        defaults. Other session defaults than the change data feed (deletion vectors, protocol versions) would give
        delta-rs another protocol than Spark's: Spark creates those tables."""
        from lake.session import table_defaults

        spec, defaults = self.spec(table), table_defaults(self.conf)
        if unknown := sorted(set(defaults) - {FEED_DEFAULT}):
            raise bookkeeping.NotAppended(f"session defaults {unknown} are Spark's to apply")
        schema = T.StructType([T.StructField(f.name, f.dataType, True, f.metadata) for f in spec.schema.fields])
        properties = defaults | spec.write_options
        version = bookkeeping.create(
            spec.path, schema.json(), spec.partition_by, properties, records, user_metadata, exclusive
        )
        self._properties_checked.add(spec.full_name)
        return version

    def rows(self: Lake, table: str, columns: list[str]) -> list[dict[str, Any]]:
        """A small table's columns as rows (the ingest log): read by delta-rs where it can, else through Spark."""
        return self._read_fast(
            table,
            lambda: bookkeeping.read(self.path(table), self.storage_options, columns).to_pylist(),
            lambda: [row.asDict() for row in self.read(table).select(*columns).collect()],
        )

    def watermark(self: Lake, consumer: str, source: str) -> int | None:
        """The last version of source that consumer has processed (its latest move), None before its first run."""
        if not self.exists(WATERMARKS):
            self._last_moves[(consumer, source)] = None
            return None
        row = self._read_fast(
            WATERMARKS,
            lambda: self.latest_move(consumer, source),
            lambda: (
                self.read(WATERMARKS)
                .where((F.col("consumer") == consumer) & (F.col("source") == source))
                .orderBy(F.col("updated_at").desc(), F.col("source_version").desc())
                .select("source_version", "updated_at")
                .first()
            ),
        )
        self._last_moves[(consumer, source)] = None if row is None else row["updated_at"]
        return None if row is None else int(row["source_version"])

    @property
    def _delta_rs_reads(self: Lake) -> bool:
        """delta-rs reads a local root, or an object store it has options for (else it would guess the endpoint)."""
        return not is_uri(self.root) or self.root.startswith("file:") or self.storage_options is not None

    def distinct(self: Lake, table: str, column: str) -> set[Any]:
        """A column's distinct values (few, in a table of any size): scanned by delta-rs batch by batch where it
        can (no Spark job), else by a Spark aggregation."""
        return self._read_fast(
            table,
            lambda: bookkeeping.distinct(self.path(table), self.storage_options, column),
            lambda: {row[0] for row in self.read(table).select(column).distinct().collect()},
        )

    def _read_fast(self: Lake, table: str, fast: Callable[[], Any], slow: Callable[[], Any]) -> Any:
        """fast() (delta-rs: no Spark job) where delta-rs reads this root, else or when it fails slow() (Spark)."""
        if self._delta_rs_reads:
            try:
                return fast()
            except Exception as exc:  # noqa: BLE001 - e.g. a reader feature delta-rs lacks: Spark reads it
                LOG.warning("delta-rs cannot read %s (%s); reading it with Spark", table, exc)
        return slow()

    @property
    def _delta_rs_writes(self: Lake) -> bool:
        """delta-rs appends on a local root only: on an object store it and Spark's log store would not exclude
        each other's commits (S3 has no atomic rename)."""
        return not is_uri(self.root) or self.root.startswith("file:")

    def latest_move(self: Lake, consumer: str, source: str) -> dict[str, Any] | None:
        """The key's latest row of meta.watermarks, read by delta-rs (lake.bookkeeping: no Spark job)."""
        return bookkeeping.latest_move(self.path(WATERMARKS), self.storage_options, consumer, source)

    def set_watermark(self: Lake, consumer: str, source: str, source_version: int) -> None:
        """Moves a watermark with one append: meta.watermarks is the log of moves, and the latest row counts.

        A MERGE of the one row cost ~2.2 s against ~0.6 s (BENCHMARKS.md, "Bookkeeping commits"). A move's
        updated_at is later than the key's previous move's even if this driver's clock is behind (a clock stepped
        back, another host), so "latest" is the order of the moves: the previous move's time is the one this Lake
        read (a stage reads its watermark first), else read now. Appends are compacted (auto compaction, or
        lake.bookkeeping's); a restore deletes every row of the watermarks it clears."""
        if (consumer, source) not in self._last_moves:
            self.watermark(consumer, source)
        last = self._last_moves[(consumer, source)]  # naive from Spark: the local time zone, as PySpark gives it
        at = datetime.now(timezone.utc)
        if last is not None:
            at = max(at, last.astimezone(timezone.utc) + timedelta(milliseconds=1))
        move = {"consumer": consumer, "source": source, "source_version": int(source_version), "updated_at": at}
        self.append_records(WATERMARKS, [move])
        self._last_moves.pop((consumer, source))  # another writer may move it too: read it before a next move


def _fitted(table: str, schema: T.StructType | None, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """records checked against the table's contract as Spark's createDataFrame would (no unknown column, no null in
    a not-null one; delta-rs would drop the one and write the other), times without a zone read as local times, as
    PySpark reads them, so both writers store the same instant."""
    if schema is None:
        return records
    names, required = set(schema.fieldNames()), [f.name for f in schema.fields if not f.nullable]
    fitted = []
    for record in records:
        unknown, missing = set(record) - names, [name for name in required if record.get(name) is None]
        if unknown or missing:
            raise ValueError(f"{table}: a record with unknown columns {sorted(unknown)} or nulls in {missing}")
        fitted.append(
            {
                k: v.astimezone(timezone.utc) if isinstance(v, datetime) and v.tzinfo is None else v
                for k, v in record.items()
            }
        )
    return fitted
