"""The fast query path: Delta tables read by delta-rs (deltalake) as Arrow datasets, SQL run by DuckDB; no JVM.

Each referenced table is registered as a DuckDB view named like the catalog (schema `gold`, view `zone_daily`), so
the SQL is the same as on Spark. Called by lake.query.run_query after its read-only guard.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from lake.catalog import TableMissingError, TableSpec
from lake.errors import QueryError
from lake.query import FastPathUnavailableError

# DuckDB errors that usually mean Spark SQL DuckDB does not speak (a Spark-only function or syntax).
DIALECT_ERRORS = (duckdb.ParserException, duckdb.CatalogException, duckdb.NotImplementedException)
LISTING_STATEMENTS = ("SHOW",)


def open_table(spec: TableSpec, version: int | None, moment: datetime | None) -> DeltaTable:
    """The table's Delta snapshot, at a version or at the last commit at or before a moment."""
    if not DeltaTable.is_deltatable(spec.path):
        raise TableMissingError(f"table {spec.full_name} does not exist yet at {spec.path}; run its stage first")
    try:
        table = DeltaTable(spec.path)
    except DeltaError as exc:
        raise FastPathUnavailableError(f"cannot open {spec.full_name} ({exc})") from exc
    latest = table.version()
    if version is not None and not 0 <= version <= latest:
        raise QueryError(f"{spec.full_name} has versions 0..{latest}; there is no version {version}")
    try:
        if version is not None:
            table.load_as_version(version)
        elif moment is not None:
            table.load_as_version(moment)
    except DeltaError as exc:
        raise QueryError(f"{spec.full_name}: cannot read it as of {moment or version}: {exc}") from exc
    return table


def _dataset(spec: TableSpec, table: DeltaTable) -> pa.dataset.Dataset:
    try:
        return table.to_pyarrow_dataset()
    except (DeltaError, ValueError, NotImplementedError) as exc:  # e.g. deletion vectors or column mapping
        raise FastPathUnavailableError(f"the Delta reader cannot scan {spec.full_name} ({exc})") from exc


def fast_query(
    specs: dict[str, TableSpec], statement: str, tables: list[str], version: int | None, moment: datetime | None
) -> pa.Table:
    """Runs a read-only statement on DuckDB over the referenced tables (all existing ones for SHOW)."""
    if statement.lstrip().upper().startswith(LISTING_STATEMENTS):
        tables = [name for name, spec in specs.items() if DeltaTable.is_deltatable(spec.path)]
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")  # Spark's session time zone: same hours, dates and renderings
        for name in tables:
            spec = specs[name]
            dataset = _dataset(spec, open_table(spec, version, moment))
            source = f"lake_source__{spec.layer}__{spec.name}"
            connection.register(source, dataset)
            connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{spec.layer}"')
            connection.execute(f'CREATE VIEW "{spec.layer}"."{spec.name}" AS SELECT * FROM "{source}"')
        # Defence in depth behind the guard: no file, network or extension access from the user's SQL.
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
        try:
            return connection.sql(statement).to_arrow_table()
        except DIALECT_ERRORS as exc:
            raise FastPathUnavailableError(f"DuckDB cannot run this SQL ({str(exc).splitlines()[0]})") from exc
        except duckdb.Error as exc:
            raise QueryError(f"DuckDB: {str(exc).strip()}") from exc
    finally:
        connection.close()
