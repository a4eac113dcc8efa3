"""The table catalog: layer.name -> Delta path, partitioning and SQL name, and the Lake facade over it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake import delta
from lake.config import DEFAULT_CONF_DIR, DEFAULT_FS, Conf
from lake.errors import ConfigError, TableMissingError, UnknownTableError
from lake.schema import conform, parse_columns
from lake.smalltables import WATERMARKS, SmallTables

LAYERS = ("bronze", "silver", "gold", "quality", "meta")
STAGING_DIR = "_staging"  # files in transit that every executor must see (Lake.staging)
LOG = logging.getLogger(__name__)


__all__ = ["WATERMARKS", "Lake", "TableSpec", "TableMissingError", "UnknownTableError"]


@dataclass(frozen=True)
class TableSpec:
    """One registry entry (conf/tables.yaml): where a table lives, how it is partitioned, its schema contract."""

    layer: str
    name: str
    path: str
    partition_by: list[str] = field(default_factory=list)
    description: str = ""
    schema: T.StructType | None = None
    stats_columns: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def write_options(self) -> dict[str, str]:
        """Delta options of every write; table properties among them take effect when a write creates the table."""
        options = dict(self.properties)
        if self.stats_columns:
            options["delta.dataSkippingStatsColumns"] = ",".join(self.stats_columns)
        return options


def _registry(conf_dir: Path) -> dict[str, dict]:
    return yaml.safe_load((conf_dir / "tables.yaml").read_text())


def _text(value: object) -> str:
    """A table property's value as Delta reads it (YAML's true -> 'true')."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def load_specs(conf: Conf) -> dict[str, TableSpec]:
    root = conf.lake_root.rstrip("/")
    specs = {}
    for full_name, entry in _registry(conf.conf_dir).items():
        layer, name = full_name.split(".", 1)
        if layer not in LAYERS:
            raise ConfigError(f"conf/tables.yaml: {full_name}: layer must be one of {LAYERS}")
        schema = parse_columns(full_name, entry["columns"]) if entry.get("columns") else None
        stats = [str(c) for c in entry.get("stats_columns") or []]
        unknown = [c for c in stats if schema is None or c not in schema.fieldNames()]
        if unknown:
            raise ConfigError(f"conf/tables.yaml: {full_name}: stats_columns {unknown} are not columns of the table")
        properties = {str(k): _text(v) for k, v in (entry.get("properties") or {}).items()}
        if any(not k.startswith("delta.") for k in properties):
            raise ConfigError(f"conf/tables.yaml: {full_name}: properties must be Delta table properties (delta.*)")
        path = f"{root}/{layer}/{name}"
        partition_by = list(entry.get("partition_by") or [])
        description = entry.get("description", "")
        specs[full_name] = TableSpec(layer, name, path, partition_by, description, schema, stats, properties)
    return specs


@cache
def schema_of(table: str) -> T.StructType:
    """A table's schema contract from the project's registry, for pure transforms that have no Lake at hand."""
    entry = _registry(DEFAULT_CONF_DIR).get(table)
    if entry is None or not entry.get("columns"):
        raise UnknownTableError(f"unknown table '{table}' (or no columns declared) in {DEFAULT_CONF_DIR}/tables.yaml")
    return parse_columns(table, entry["columns"])


class Lake(SmallTables):
    """A lake root with its catalog; every read and write of a table goes through here."""

    def __init__(self, conf: Conf, spark: SparkSession | None = None) -> None:
        self.conf = conf
        self._spark = spark
        self.specs = load_specs(conf)
        self._properties_checked: set[str] = set()
        self._last_moves: dict[tuple[str, str], datetime | None] = {}  # a key's latest move's time, as read

    @cached_property
    def spark(self) -> SparkSession:
        if self._spark is not None:
            return self._spark
        from lake.session import build_spark

        return build_spark(self.conf)

    @property
    def root(self) -> str:
        return self.conf.lake_root

    @property
    def storage_options(self) -> dict[str, str] | None:
        """delta-rs (deltalake) storage options for a root on object storage (conf `lake.storage_options`)."""
        return {str(k): str(v) for k, v in (self.conf.get("lake.storage_options") or {}).items()} or None

    def staging(self, name: str) -> str | None:
        """A folder (`_staging/<name>`) for a model's files between Spark and MLflow on a cluster, where the
        driver's disk is not the executors', on Hadoop's default filesystem (MLflow copies through it): under the
        lake root when the root is on it, else in its /tmp (a cluster's HDFS). `remove_staged` deletes it. None on
        a local master."""
        if not self.conf.on_cluster:
            return None
        hadoop = self.spark.sparkContext._jsc.hadoopConfiguration()
        default, root = urlsplit(str(hadoop.get(DEFAULT_FS, "file:///"))), urlsplit(self.root)
        on_default = (root.scheme, root.netloc) == (default.scheme, default.netloc)
        if on_default or (not root.netloc and default.scheme == "file"):
            return f"{self.root.rstrip('/')}/{STAGING_DIR}/{name}"
        return f"{default.scheme}://{default.netloc}/tmp/taxi-lakehouse/{STAGING_DIR}/{name}"

    def staged(self, name: str) -> list[str]:
        """The folders under the staging folder `name` (locations for remove_staged); [] when it does not exist."""
        location = self.staging(name)
        if location is None:
            return []
        context = self.spark.sparkContext
        path = context._jvm.org.apache.hadoop.fs.Path(location)
        filesystem = path.getFileSystem(context._jsc.hadoopConfiguration())
        if not filesystem.exists(path):
            return []
        return [str(status.getPath().toString()) for status in filesystem.listStatus(path) if status.isDirectory()]

    def remove_staged(self, location: str) -> None:
        """Deletes a staging folder and everything under it, through Hadoop's filesystem for its scheme."""
        context = self.spark.sparkContext
        path = context._jvm.org.apache.hadoop.fs.Path(location)
        path.getFileSystem(context._jsc.hadoopConfiguration()).delete(path, True)

    def spec(self, table: str) -> TableSpec:
        if table not in self.specs:
            raise UnknownTableError(f"unknown table '{table}'; known tables: {', '.join(sorted(self.specs))}")
        return self.specs[table]

    def path(self, table: str) -> str:
        return self.spec(table).path

    def exists(self, table: str) -> bool:
        path = self.path(table)  # unknown names fail here, before Spark starts
        return delta.is_delta(self.spark, path)

    def version(self, table: str) -> int | None:
        """The table's current Delta version, None if it was never written."""
        return delta.latest_version(self.spark, self.path(table))

    def read(self, table: str, version: int | None = None, timestamp: str | None = None) -> DataFrame:
        if not self.exists(table):
            raise TableMissingError(f"table {table} does not exist yet at {self.path(table)}; run its stage first")
        return delta.read(self.spark, self.path(table), version, timestamp)

    def read_changes(
        self, table: str, after_version: int | None, up_to_version: int, all_changes: bool = False
    ) -> DataFrame:
        """Changed rows after after_version (inserts and update post-images; all_changes adds deletes, pre-images)."""
        return delta.read_changes(self.spark, self.path(table), after_version, up_to_version, all_changes)

    def conform(self, table: str, df: DataFrame) -> DataFrame:
        """df as the table's schema contract (conf/tables.yaml); every write goes through this."""
        spec = self.spec(table)
        return df if spec.schema is None else conform(df, spec.schema, table)

    def empty(self, table: str) -> DataFrame:
        """An empty frame with the table's contract (a first run, or a stage with nothing to do)."""
        return self.spark.createDataFrame([], self.spec(table).schema)

    def append(self, table: str, df: DataFrame, user_metadata: str | None = None) -> int:
        """One blind-append commit. Retried on a Delta conflict: two first writers racing to create the table
        (ProtocolChangedException) or a concurrent schema change; a conflicting commit wrote nothing, so a retry
        lands the rows once."""
        spec = self.spec(table)
        rows = self.conform(table, df)
        self.ensure_properties(table)
        return delta.retry_on_conflict(
            lambda: delta.write(
                rows, spec.path, "append", spec.partition_by, user_metadata=user_metadata, options=spec.write_options
            )
        )

    def ensure_properties(self, table: str) -> None:
        """Sets the registry's table properties and statistics columns on an existing table created without them
        (by an older release), once per Lake, before a write: Delta applies a write's `delta.*` options only when
        the write creates the table, and collects a file's statistics by the table's setting when it writes it."""
        spec = self.spec(table)
        if spec.full_name in self._properties_checked or not spec.write_options or not self.exists(table):
            return
        current = delta.table_properties(self.spark, spec.path)
        missing = {key: value for key, value in spec.write_options.items() if current.get(key) != value}
        if missing:
            delta.set_properties(self.spark, spec.path, missing)
        self._properties_checked.add(spec.full_name)

    def overwrite(self, table: str, df: DataFrame, replace_where: str | None = None) -> int:
        """Replaces the whole table, or atomically only the rows matching replace_where."""
        spec = self.spec(table)
        if replace_where and not self.exists(table):
            replace_where = None
        rows = self.conform(table, df)
        self.ensure_properties(table)
        return delta.write(
            rows, spec.path, "overwrite", spec.partition_by, replace_where=replace_where, options=spec.write_options
        )

    def merge(self, table: str, df: DataFrame, keys: list[str], **options: Any) -> dict[str, Any]:
        """One MERGE commit (the first creates the table). Retried on a Delta conflict, re-reading the table: a
        conflicting commit wrote nothing, and a first writer that lost the race to create the table then merges
        into the winner's rows instead of failing (or overwriting them)."""
        spec = self.spec(table)
        rows = self.conform(table, df)
        self.ensure_properties(table)
        return delta.retry_on_conflict(
            lambda: delta.merge(rows, spec.path, keys, spec.partition_by, write_options=spec.write_options, **options)
        )

    def history(self, table: str, limit: int | None = None) -> DataFrame:
        if not self.exists(table):
            raise TableMissingError(f"table {table} does not exist yet at {self.path(table)}")
        return delta.history(self.spark, self.path(table), limit)

    def existing_tables(self) -> list[TableSpec]:
        return [spec for name, spec in self.specs.items() if self.exists(name)]

    def register_sql(self) -> list[str]:
        """Makes every existing table addressable in SQL as layer.name; returns the names registered."""
        names = []
        for spec in self.existing_tables():
            self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {spec.layer}")
            if self.spark.catalog.tableExists(spec.full_name) and not self._registered_here(spec):
                self.spark.sql(f"DROP TABLE {spec.full_name}")  # external table: only the name goes
            self.spark.sql(f"CREATE TABLE IF NOT EXISTS {spec.full_name} USING DELTA LOCATION '{spec.path}'")
            names.append(spec.full_name)
        return names

    def _registered_here(self, spec: TableSpec) -> bool:
        """True when the SQL name already points at this lake's table (not another lake root's)."""
        location = self.spark.sql(f"DESCRIBE DETAIL {spec.full_name}").select("location").first()[0]
        return location.removeprefix("file:").rstrip("/") == spec.path.removeprefix("file:").rstrip("/")

    def commit_metrics(self, table: str, version: int) -> dict[str, str]:
        """The operation metrics Delta recorded for one commit of table, from its commit file (no Spark job); from
        the table's history when the file cannot be read. {} when the commit is not found."""
        try:
            info = delta.commit_info(self.spark, self.path(table), version)
        except Exception as exc:  # noqa: BLE001 - a log file this store cannot open: the history has it
            LOG.warning("cannot read commit %s of %s (%s); reading its history", version, table, exc)
            row = self.history(table, 20).where(F.col("version") == version).select("operationMetrics").first()
            return dict(row[0] or {}) if row is not None else {}
        return {str(k): str(v) for k, v in ((info or {}).get("operationMetrics") or {}).items()}
