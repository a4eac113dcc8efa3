"""The fast query path: Delta tables read by delta-rs (deltalake) as Arrow datasets, SQL run by DuckDB; no JVM.

Each table read at the latest version (or the one version the whole query reads at) is a DuckDB view named like the
catalog (schema `gold`, view `zone_daily`), so the SQL is the same as on Spark; a reference pinned with @vN becomes
the view "gold"."zone_daily@v3". Called by lake.query.run_query after its read-only guard.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from lake.catalog import TableMissingError, TableSpec
from lake.errors import QueryError
from lake.query import FastPathUnavailableError, TableRead, check_version, rewrite_names, version_at

LISTING_STATEMENTS = ("SHOW",)
# DuckDB errors that usually mean Spark SQL DuckDB does not speak: say so, but do not run it on Spark.
DIALECT_ERRORS = (duckdb.ParserException, duckdb.CatalogException, duckdb.NotImplementedException)


def open_table(
    spec: TableSpec, version: int | None, moment: datetime | None, storage: dict[str, str] | None = None
) -> DeltaTable:
    """The table's Delta snapshot at a version, or at the last commit at or before a moment (see version_at).

    `storage`: delta-rs storage options for a lake on object storage (Lake.storage_options)."""
    if not DeltaTable.is_deltatable(spec.path, storage_options=storage):
        raise TableMissingError(f"table {spec.full_name} does not exist yet at {spec.path}; run its stage first")
    try:
        table = DeltaTable(spec.path, storage_options=storage)
    except DeltaError as exc:
        raise FastPathUnavailableError(f"cannot open {spec.full_name} ({exc})") from exc
    if version is None and moment is not None:
        commits = [(int(entry["version"]), int(entry["timestamp"])) for entry in table.history()]
        version = version_at(spec.full_name, commits, moment)
    if version is not None:
        check_version(spec.full_name, version, table.version())
        try:
            table.load_as_version(version)
        except DeltaError as exc:
            raise QueryError(f"{spec.full_name}: cannot read version {version}: {exc}") from exc
    return table


def _dataset(spec: TableSpec, table: DeltaTable) -> pa.dataset.Dataset:
    try:
        return table.to_pyarrow_dataset()
    except (DeltaError, ValueError, NotImplementedError) as exc:  # e.g. deletion vectors or column mapping
        raise FastPathUnavailableError(f"the Delta reader cannot scan {spec.full_name} ({exc})") from exc


def fast_query(
    specs: dict[str, TableSpec],
    statement: str,
    reads: dict[str, TableRead],
    storage: dict[str, str] | None = None,
) -> pa.Table:
    """Runs a read-only statement on DuckDB over the referenced tables (all existing ones for SHOW)."""
    if statement.lstrip().upper().startswith(LISTING_STATEMENTS):
        reads = {
            n: TableRead(n, s) for n, s in specs.items() if DeltaTable.is_deltatable(s.path, storage_options=storage)
        }
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")  # Spark's session time zone: same hours, dates and renderings
        renamed = {}
        for key, read in reads.items():
            spec = read.spec
            dataset = _dataset(spec, open_table(spec, read.version, read.moment, storage))
            source = "lake_source__" + key.replace(".", "__").replace("@", "__")
            view = spec.name if key == spec.full_name else key.split(".", 1)[1]
            connection.register(source, dataset)
            connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{spec.layer}"')
            connection.execute(f'CREATE VIEW "{spec.layer}"."{view}" AS SELECT * FROM "{source}"')
            if view != spec.name:
                renamed[key] = f'"{spec.layer}"."{view}"'
        # Defence in depth behind the guard: no file, network or extension access from the user's SQL.
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
        try:
            return connection.sql(rewrite_names(statement, renamed)).to_arrow_table()
        except DIALECT_ERRORS as exc:
            raise QueryError(
                f"DuckDB: {str(exc).strip().splitlines()[0]} (Spark-only SQL? run it with --engine spark)"
            ) from exc
        except duckdb.Error as exc:
            raise QueryError(f"DuckDB: {str(exc).strip()}") from exc
    finally:
        connection.close()
