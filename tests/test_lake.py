"""The storage layer: config precedence, catalog paths, Delta writes, merge, time travel, change feed, SQL names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from registry_edit import lake_with_registry_edit

from lake import load_conf
from lake.catalog import WATERMARKS, TableMissingError, UnknownTableError
from lake.config import ConfigError
from lake.session import session_conf, spark_settings


def test_env_file_overrides_base_and_env_vars_win(monkeypatch):
    assert load_conf("test").get("spark.shuffle_partitions") == 2
    monkeypatch.setenv("SPARK_SHUFFLE_PARTITIONS", "7")
    monkeypatch.setenv("LAKE_ROOT", "s3a://bucket/lake")
    conf = load_conf("test")
    assert conf.get("spark.shuffle_partitions") == "7"
    assert conf.lake_root == "s3a://bucket/lake"


def test_unknown_environment_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown environment 'nope'"):
        load_conf("nope")


def test_catalog_paths_live_under_the_lake_root(lake):
    assert lake.path("gold.zone_daily") == f"{lake.root}/gold/zone_daily"
    assert lake.spec("bronze.trips").partition_by == ["pickup_month"]
    with pytest.raises(UnknownTableError, match="unknown table 'gold.nope'"):
        lake.spec("gold.nope")
    with pytest.raises(TableMissingError):
        lake.read("gold.zone_daily")


def test_append_merge_time_travel_and_change_feed(lake, spark):
    first = spark.createDataFrame([("a", 1), ("b", 2)], "consumer string, source_version long")
    frame = first.withColumn("source", F.lit("s")).withColumn("updated_at", F.current_timestamp())
    v0 = lake.append("meta.watermarks", frame.select("consumer", "source", "source_version", "updated_at"))
    changed = spark.createDataFrame([("b", 20), ("c", 3)], "consumer string, source_version long")
    changed = changed.withColumn("source", F.lit("s")).withColumn("updated_at", F.current_timestamp())
    result = lake.merge("meta.watermarks", changed.select(*frame.columns), ["consumer", "source"])
    assert result["version"] == v0 + 1
    assert result["metrics"]["numTargetRowsInserted"] == "1"
    assert result["metrics"]["numTargetRowsUpdated"] == "1"
    now = {r.consumer: r.source_version for r in lake.read("meta.watermarks").collect()}
    assert now == {"a": 1, "b": 20, "c": 3}
    before = {r.consumer: r.source_version for r in lake.read("meta.watermarks", version=v0).collect()}
    assert before == {"a": 1, "b": 2}
    changes = {r.consumer: r.source_version for r in lake.read_changes("meta.watermarks", v0, v0 + 1).collect()}
    assert changes == {"b": 20, "c": 3}


def _watermark_rows(spark, rows):
    frame = spark.createDataFrame(rows, "consumer string, source string, source_version long")
    return frame.withColumn("updated_at", F.current_timestamp())


def _read_by_delta_s_feed_reader(df) -> bool:
    return "DeltaCDFRelation" in df._jdf.queryExecution().analyzed().toString()


def test_a_range_of_appends_is_read_as_a_scan_of_its_files_and_anything_else_by_the_change_feed(lake, spark):
    from lake import maintenance

    v0 = lake.append("meta.watermarks", _watermark_rows(spark, [("a", "s", 1)]))
    lake.append("meta.watermarks", _watermark_rows(spark, [("b", "s", 2), ("c", "s", 3)]))
    maintenance.optimize(lake, "meta.watermarks")  # compaction adds files too, but changes no data
    v3 = lake.append("meta.watermarks", _watermark_rows(spark, [("d", "s", 4)]))
    appended = lake.read_changes("meta.watermarks", v0, v3)
    assert not _read_by_delta_s_feed_reader(appended)
    feed = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", v0 + 1)
        .option("endingVersion", v3)
        .load(lake.path("meta.watermarks"))
    )
    expected = sorted((r.consumer, r.source_version) for r in feed.collect())
    assert (
        sorted((r.consumer, r.source_version) for r in appended.collect()) == expected == [("b", 2), ("c", 3), ("d", 4)]
    )
    assert appended.columns == lake.read("meta.watermarks").columns
    assert sorted(r.consumer for r in lake.read_changes("meta.watermarks", None, v0).collect()) == ["a"]

    v4 = lake.merge("meta.watermarks", _watermark_rows(spark, [("a", "s", 10)]), ["consumer", "source"])["version"]
    updated = lake.read_changes("meta.watermarks", v0, v4)
    assert _read_by_delta_s_feed_reader(updated)  # an update is not an append: Delta's reader, with its post-image
    assert sorted((r.consumer, r.source_version) for r in updated.collect()) == [
        ("a", 10),
        ("b", 2),
        ("c", 3),
        ("d", 4),
    ]
    every = lake.read_changes("meta.watermarks", v3, v4, all_changes=True)
    assert sorted(r.source_version for r in every.collect()) == [1, 10]  # the pre-image too


def test_a_table_without_the_change_feed_is_refused_even_when_it_only_appended(spark, tmp_path):
    from lake import delta

    path = str(tmp_path / "plain")
    rows = spark.createDataFrame([(1,)], "n long")
    rows.write.format("delta").option("delta.enableChangeDataFeed", "false").save(path)
    rows.write.format("delta").mode("append").save(path)
    with pytest.raises(Exception, match="(?i)change data|changeDataFeed|CDF|change feed"):
        delta.read_changes(spark, path, 0, 1).collect()


def test_session_conf_sets_settings_for_the_block_only_and_restores_them_on_errors(spark):
    set_key, unset_key = "spark.sql.requireAllClusterKeysForCoPartition", "spark.taxi_lakehouse.test_setting"
    before = spark.conf.get(set_key)
    with pytest.raises(RuntimeError), session_conf(spark, {set_key: "false", unset_key: "on"}):
        assert (spark.conf.get(set_key), spark.conf.get(unset_key)) == ("false", "on")
        raise RuntimeError("boom")
    assert spark.conf.get(set_key) == before
    assert spark.conf.get(unset_key, None) is None


def test_watermarks_and_sql_names(lake):
    assert lake.watermark("silver", "bronze.trips") is None
    lake.set_watermark("silver", "bronze.trips", 4)
    lake.set_watermark("silver", "bronze.trips", 5)
    assert lake.watermark("silver", "bronze.trips") == 5
    assert lake.register_sql() == ["meta.watermarks"]
    latest = "SELECT source_version FROM meta.watermarks ORDER BY updated_at DESC LIMIT 1"
    assert lake.spark.sql(latest).first()[0] == 5


def test_optimize_compacts_and_vacuum_removes_time_travel(lake, spark):
    from lake import maintenance

    for value in range(3):
        lake.append(
            "meta.watermarks",
            spark.createDataFrame(
                [("c", "s", value)], "consumer string, source string, source_version long"
            ).withColumn("updated_at", F.current_timestamp()),
        )
    done = maintenance.optimize(lake, "meta.watermarks")
    assert done["files_removed"] >= 3 and done["files_added"] == 1
    assert lake.read("meta.watermarks", version=0).count() == 1
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        maintenance.vacuum(lake, "meta.watermarks", retain_hours=0)
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    assert lake.read("meta.watermarks").count() == 3
    with pytest.raises(Exception, match="(?i)not found|does not exist|FileNotFound|FILE_NOT"):
        lake.read("meta.watermarks", version=0).collect()


def test_merge_that_changes_nothing_reports_no_commit_and_target_filter_limits_matches(lake, spark):
    rows = spark.createDataFrame([("a", "s", 1)], "consumer string, source string, source_version long")
    rows = rows.withColumn("updated_at", F.lit(None).cast("timestamp"))
    first = lake.merge("meta.watermarks", rows, ["consumer", "source"], update_matched=False)
    again = lake.merge("meta.watermarks", rows, ["consumer", "source"], update_matched=False)
    assert again == {"version": first["version"], "operation": "NONE", "metrics": {}}
    # A filter that excludes the matching target row makes the same key look new: the filter really limits MERGE.
    filtered = lake.merge(
        "meta.watermarks", rows, ["consumer", "source"], update_matched=False, target_filter="t.source_version > 5"
    )
    assert filtered["metrics"]["numTargetRowsInserted"] == "1"


def test_python_workers_run_the_drivers_interpreter(spark):
    """Arrow batches and UDFs run in Python workers; they must be this interpreter (with pyarrow), not `python3`."""
    import sys

    def executable(batches):
        import sys as worker_sys

        import pyarrow as pa

        for _ in batches:
            yield pa.RecordBatch.from_pydict({"exe": [worker_sys.executable]})

    (row,) = spark.range(1).mapInArrow(executable, "exe string").collect()
    assert row.exe == sys.executable


def test_local_sessions_size_delta_log_and_file_listing_jobs_for_the_machine(spark):
    """Delta's 50 snapshot tasks and VACUUM's 10,000 listing tasks cost seconds to minutes per call on 2 cores."""
    conf = load_conf("test")
    assert spark.conf.get("spark.databricks.delta.snapshotPartitions") == str(
        conf.get("spark.delta_snapshot_partitions")
    )
    listing = spark.conf.get("spark.sql.sources.parallelPartitionDiscovery.parallelism")
    assert listing == str(conf.get("spark.file_listing_parallelism")) and int(listing) <= 16
    assert load_conf("cluster").get("spark.file_listing_parallelism") >= 1000


def test_sessions_bound_the_rows_of_a_file_and_the_bytes_of_a_read_partition(spark, tmp_path):
    """128m read partitions held 2.5M compressed TLC rows and silver's batch ran the driver out of memory at 5M."""
    conf = load_conf("test")
    limit = int(conf.get("spark.max_records_per_file"))
    assert spark.conf.get("spark.sql.files.maxRecordsPerFile") == str(limit) and 0 < limit <= 1_000_000
    assert spark.conf.get("spark.sql.files.maxPartitionBytes") == str(conf.get("spark.max_partition_bytes"))
    spark.range(2 * limit + 1).coalesce(1).write.parquet(str(tmp_path / "t"))
    assert len(list((tmp_path / "t").glob("*.parquet"))) == 3


def test_sessions_keep_more_compiled_query_classes_than_spark_s_default(spark):
    """A stage run plans dozens of queries: with Spark's 100 entries each warm run compiled its code again."""
    entries = spark.conf.get("spark.sql.codegen.cache.maxEntries")
    assert entries == str(load_conf("test").get("spark.codegen_cache_entries")) and int(entries) >= 1000


def test_the_jvm_compiles_spark_s_large_generated_methods(spark):
    """Without -XX:-DontCompileHugeMethods HotSpot interprets generated methods over 8,000 bytes (silver's typing)."""
    options = load_conf("test").get("spark.jvm_options")
    assert "-XX:-DontCompileHugeMethods" in options
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    assert "-XX:-DontCompileHugeMethods" in list(runtime.getInputArguments())  # the running driver has it
    settings = spark_settings(load_conf("test", overrides={"spark.delta_jars": "none"}))
    assert options in settings["spark.executor.extraJavaOptions"]  # and executors of a cluster get it too


def test_the_jvms_run_in_utc_so_delta_does_not_rebuild_a_table_s_state_after_each_commit(spark):
    """Delta 4.4 verifies each commit's checksum by a full state reconstruction when the session's, the JVM's or the
    system's zone is not UTC; on a laptop in New York that was the JVM's zone. The driver runs in UTC whatever the
    machine's zone, and a cluster's executors are started in it."""
    jvm = spark.sparkContext._jvm
    assert jvm.java.util.TimeZone.getDefault().getID() == "UTC"  # a UTC machine's JVM says Etc/UTC on its own
    assert jvm.java.lang.System.getProperty("user.timezone") == "UTC"
    snapshots = getattr(getattr(jvm.org.apache.spark.sql.delta, "Snapshot$"), "MODULE$")  # Scala's companion object
    assert not snapshots.allFilesInCrcVerificationForceEnabled(spark._jsparkSession)
    settings = spark_settings(load_conf("cluster", overrides={"spark.delta_jars": "none", "spark.jvm_options": ""}))
    assert "-Duser.timezone=UTC" in settings["spark.executor.extraJavaOptions"].split()


def test_cluster_settings_come_from_conf_and_the_environment(monkeypatch):
    """conf/cluster.yaml's master and executor sizes reach the session; SPARK_MASTER and SPARK_EXECUTOR_MEMORY win."""
    cluster = load_conf("cluster", overrides={"spark.delta_jars": "none"})
    settings = spark_settings(cluster)
    assert str(cluster.get("spark.master")).startswith("spark://")
    assert settings["spark.executor.memory"] == cluster.get("spark.executor_memory")
    assert settings["spark.executor.cores"] == str(cluster.get("spark.executor_cores"))
    assert "spark.executor.memory" not in spark_settings(load_conf("test", overrides={"spark.delta_jars": "none"}))
    monkeypatch.setenv("SPARK_MASTER", "spark://10.0.0.5:7077")
    monkeypatch.setenv("SPARK_EXECUTOR_MEMORY", "12g")
    overridden = load_conf("cluster", overrides={"spark.delta_jars": "none"})
    assert overridden.get("spark.master") == "spark://10.0.0.5:7077"
    assert spark_settings(overridden)["spark.executor.memory"] == "12g"


def _file_stats(lake, table: str) -> list[dict]:
    """The statistics of every file the table's log adds."""
    log = Path(lake.path(table)) / "_delta_log"
    adds = [json.loads(line)["add"] for f in sorted(log.glob("*.json")) for line in f.open() if '"add"' in line]
    return [json.loads(add["stats"]) for add in adds if add.get("stats")]


def test_wide_trip_tables_keep_statistics_only_for_their_stats_columns(lake):
    """Statistics of Delta's default 32 columns were ~30% of a silver write; file skipping needs only a few."""
    spec = lake.spec("silver.trips")
    assert spec.stats_columns and "trip_key" in spec.stats_columns and "_source_hash" in spec.stats_columns
    row = dict.fromkeys(spec.schema.fieldNames()) | {"trip_key": "k1", "pickup_zone_id": 7, "fare_amount": 5.0}
    lake.append("silver.trips", lake.spark.createDataFrame([row], spec.schema))
    lake.append("silver.trips", lake.spark.createDataFrame([row | {"trip_key": "k2"}], spec.schema))
    stats = _file_stats(lake, "silver.trips")
    assert len(stats) == 2 and all(s["numRecords"] == 1 for s in stats)
    assert {key for s in stats for key in s["minValues"]} == {"trip_key", "pickup_zone_id"}  # non-null stats columns
    assert all(set(s["nullCount"]) == set(spec.stats_columns) for s in stats)  # fare_amount: no statistics
    # a table without stats_columns keeps Delta's default (its first 32 columns)
    assert not lake.spec("gold.zone_daily").stats_columns


def test_stats_columns_must_be_columns_of_the_table(tmp_path):
    with pytest.raises(ConfigError, match=r"stats_columns \['no_such'\] are not columns"):
        lake_with_registry_edit(tmp_path, "stats_columns: [trip_key,", "stats_columns: [no_such,")


def test_the_version_follows_commits_made_outside_this_session(spark, tmp_path):
    """Versions come from the table's Delta log brought up to date, not a cached snapshot: a commit another engine
    (delta-rs here, another process in production) makes is seen at once, as `history` sees it."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from lake import delta

    path = str(tmp_path / "external")
    rows = pa.table({"id": pa.array([1, 2], pa.int64())})
    write_deltalake(path, rows, mode="append")
    assert delta.latest_version(spark, path) == 0
    for expected in (1, 2):
        write_deltalake(path, rows, mode="append")
        assert delta.latest_version(spark, path) == expected
        assert delta._snapshot_version(spark, path) == expected  # the fast path itself, not the fallback
        assert delta.history(spark, path, 1).first()["version"] == expected
    assert delta._SNAPSHOT_API_OK  # the pinned Delta has the method: no fallback happened
    assert delta.latest_version(spark, str(tmp_path / "nothing_here")) is None


def test_without_the_delta_log_snapshot_api_versions_come_from_history(lake, spark, monkeypatch, caplog):
    """Another Delta release may change DeltaLog.update's signature: the version is then read from history, the
    properties from DESCRIBE DETAIL."""
    from py4j.protocol import Py4JError

    from lake import delta

    v0 = lake.append(WATERMARKS, lake.empty(WATERMARKS))
    lake.set_watermark("silver", "bronze.trips", 3)
    fast = lake.version(WATERMARKS)
    assert fast == v0 + 1

    def no_such_method(*args):
        raise Py4JError("Method update([class java.lang.Boolean]) does not exist")

    monkeypatch.setattr(delta, "_SNAPSHOT_API_OK", True)
    monkeypatch.setattr(delta, "static", lambda spark, name: no_such_method)  # lake.jvm's lookups of Delta's API
    with caplog.at_level("WARNING", logger="lake.delta"):
        assert delta._snapshot_version(spark, lake.path(WATERMARKS)) is None
    monkeypatch.undo()
    assert "snapshot is not readable here" in caplog.text and "using the public API instead" in caplog.text
    properties = delta.table_properties(spark, lake.path(WATERMARKS))  # from the snapshot's metadata
    assert properties["delta.autoOptimize.autoCompact"] == "true"
    monkeypatch.setattr(delta, "_SNAPSHOT_API_OK", False)
    assert lake.version(WATERMARKS) == fast
    assert delta.table_properties(spark, lake.path(WATERMARKS)) == properties  # from DESCRIBE DETAIL


def test_a_table_deleted_after_the_existence_check_has_no_version(spark, tmp_path, monkeypatch):
    """Between is_delta and the log listing a table can vanish (a test's or an operator's rm): no version, no
    error, as if is_delta had seen it gone."""
    from lake import delta

    gone = str(tmp_path / "deleted_table")
    assert delta._snapshot_version(spark, gone) == -1  # Delta's "no commit yet" snapshot
    monkeypatch.setattr(delta, "is_delta", lambda *args: True)  # it still existed when is_delta looked
    assert delta.latest_version(spark, gone) is None
