"""The one SparkSession builder: Delta configured, sensible local defaults, everything from config."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

from pyspark.sql import SparkSession

from lake import classarchive
from lake.config import DEFAULT_FS, Conf
from lake.jars import SparkSetupError, check_java, delta_coordinates, resolve_jars

S3A_PARALLEL_COPY = "spark.hadoop.fs.s3a.optimized.copy.from.local.enabled"
# The JVMs' own zone, whatever the machine's: Delta rebuilds a table's whole state from its log after every commit
# when the session's, the JVM's or the system's zone is not UTC (allFilesInCrc.verificationMode.forceOnNonUTC). SQL
# keeps the configured session zone (spark.session_time_zone).
JVM_ZONE = "-Duser.timezone=UTC"
DELTA_SETTINGS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    # New tables get the change data feed, so downstream stages read only what changed.
    "spark.databricks.delta.properties.defaults.enableChangeDataFeed": "true",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
}


TABLE_DEFAULTS = "spark.databricks.delta.properties.defaults."


def table_defaults(conf: Conf) -> dict[str, str]:
    """The properties Delta gives every table a session built from conf creates (its
    spark.databricks.delta.properties.defaults.*): a table created without Spark (lake.bookkeeping) carries them too."""
    settings = {**DELTA_SETTINGS, **{str(k): str(v) for k, v in (conf.get("spark.extra") or {}).items()}}
    return {f"delta.{k.removeprefix(TABLE_DEFAULTS)}": v for k, v in settings.items() if k.startswith(TABLE_DEFAULTS)}


def spark_settings(conf: Conf) -> dict[str, str]:
    """All spark.* settings the session is built with."""
    settings = {
        "spark.sql.shuffle.partitions": str(conf.get("spark.shuffle_partitions", 4)),
        "spark.driver.memory": str(conf.get("spark.driver_memory", "4g")),
        "spark.ui.enabled": str(bool(conf.get("spark.ui_enabled", False))).lower(),
        "spark.sql.session.timeZone": str(conf.get("spark.session_time_zone", "UTC")),
        "spark.sql.adaptive.enabled": "true",
        "spark.databricks.delta.snapshotPartitions": str(conf.get("spark.delta_snapshot_partitions", 50)),
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(
            conf.get("spark.file_listing_parallelism", 10000)
        ),
        # Bounded partitions and files: a task's rows (and a materialized batch's block) stay small at any volume.
        "spark.sql.files.maxPartitionBytes": str(conf.get("spark.max_partition_bytes", "128m")),
        "spark.sql.files.maxRecordsPerFile": str(conf.get("spark.max_records_per_file", 0)),
        # Compiled generated classes kept for reuse (Spark keeps 100): a stage run plans dozens of queries, and each
        # run of a long-lived process (tests, `lake serve`) compiles the same code again once the cache has turned.
        "spark.sql.codegen.cache.maxEntries": str(conf.get("spark.codegen_cache_entries", 100)),
        "spark.ui.showConsoleProgress": "false",
        **DELTA_SETTINGS,
    }
    for key in ("executor_memory", "executor_cores"):  # a cluster's executors; local mode has none
        if conf.get(f"spark.{key}"):
            settings[f"spark.{key.replace('_', '.')}"] = str(conf.get(f"spark.{key}"))
    mode = conf.get("spark.delta_jars", "auto")
    extra = [str(c) for c in conf.get("spark.jar_packages") or ()]
    if mode == "auto":
        settings["spark.jars"] = ",".join(resolve_jars(conf.get("spark.jar_cache"), extra))
    elif mode == "packages":
        settings["spark.jars.packages"] = ",".join([*delta_coordinates(), *extra])
    elif mode != "none":
        raise SparkSetupError(f"spark.delta_jars must be auto, packages or none, not {mode!r}")
    jvm_options = str(conf.get("spark.jvm_options") or "").strip()
    log_config = conf.conf_dir / "log4j2.properties"
    logging = f"-Dlog4j.configurationFile=file:{log_config}" if log_config.exists() else ""
    archive = " ".join(classarchive.driver_options(conf))
    settings["spark.driver.extraJavaOptions"] = " ".join(o for o in (logging, JVM_ZONE, jvm_options, archive) if o)
    settings["spark.executor.extraJavaOptions"] = " ".join(o for o in (JVM_ZONE, jvm_options) if o)
    settings.update({str(k): str(v) for k, v in (conf.get("spark.extra") or {}).items()})
    if shared_filesystem(conf, "s3a"):
        # MLflow uploads a staged model with copyFromLocalFile; S3A's parallel version of it hung for good on a
        # Spark ML pipeline's folder tree (hadoop-aws 3.4.2, every upload waiting for a pool slot).
        settings.setdefault(S3A_PARALLEL_COPY, "false")
    return settings


def shared_filesystem(conf: Conf, scheme: str | None = None) -> str | None:
    """The lake root's object store (`s3a://bucket`; of that scheme, if given) when the session runs on a cluster,
    else None (a local master, or a root in a folder)."""
    parts = urlsplit(conf.lake_root)
    if not conf.on_cluster or not parts.netloc or parts.scheme in ("", "file") or scheme not in (None, parts.scheme):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def adopt_shared_filesystem(spark: SparkSession, conf: Conf) -> None:
    """Makes the lake's object store the driver's default Hadoop filesystem on a cluster that has none but the local
    disk (a cluster's HDFS, or a `spark.extra` choice, stays).

    MLflow's Spark flavor copies a model between the executors' files and its own through the driver's default
    filesystem (`FileSystem.get`), and Spark ML writes and reads those files from the executors: left at the local
    disk, a cluster that shares no disk splits a model between machines. Set after the session starts, it changes
    no cluster manager's own staging (YARN's, say). Local paths reach Spark as `file:` URIs (lake.config.spark_path).
    """
    chosen = f"spark.hadoop.{DEFAULT_FS}" in (conf.get("spark.extra") or {})
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    if (
        (store := shared_filesystem(conf))
        and not chosen
        and str(hadoop.get(DEFAULT_FS, "file:///")).startswith("file:")
    ):
        hadoop.set(DEFAULT_FS, store)


def build_spark(conf: Conf) -> SparkSession:
    """Returns the process's SparkSession (created on first call) with Delta Lake enabled."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    check_java()
    master = str(conf.get("spark.master", "local[2]"))
    if master.startswith("local"):
        # Python workers (Arrow batches, any UDF) otherwise start `python3` from PATH, which need not be the
        # interpreter that has pyspark and pyarrow installed. A cluster sets PYSPARK_PYTHON for its executors.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(conf.get("spark.app_name", "taxi-lakehouse"))
    for key, value in spark_settings(conf).items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # py4j / JVM start-up errors carry little context; say what to check
        raise SparkSetupError(
            f"Spark failed to start ({type(exc).__name__}: {str(exc)[:500]}). Check Java 17+, "
            f"spark.master={conf.get('spark.master')!r} and the Delta JARs ({', '.join(delta_coordinates())})."
        ) from exc
    spark.sparkContext.setLogLevel("ERROR")
    adopt_shared_filesystem(spark, conf)
    return spark


@contextmanager
def session_conf(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Spark SQL settings for the statements run inside the block, then each back to its value (or unset) after.

    Settings are read when a query is planned, which for a lazy DataFrame is its action: run it inside the block.
    """
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
