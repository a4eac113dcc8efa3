"""Py4J round trips a small stage run does not need. PySpark's call-site capture (the "DataFrame" context of a runtime
error) is off in the tests' session and on elsewhere: with it, building one column costs 13 round trips instead of 3,
~10% of a small stage round. Delta's static methods are looked up once (lake.jvm), not once per table check."""

from __future__ import annotations

import py4j.clientserver
import py4j.protocol
from pyspark.errors.utils import is_debugging_enabled
from pyspark.sql import functions as F

from lake import load_conf
from lake.session import spark_settings

DEBUGGING = "spark.python.sql.dataFrameDebugging.enabled"


def recorded(monkeypatch) -> list[str]:
    """Every Py4J command sent from now on (this test's), in order, but the releases of Java objects whose Python
    proxies were garbage collected: Py4J's finalizer thread sends those whenever it finds some queued, not because of
    the call under test (a CI run counted 74 of them during one existence check, 2026-12-04)."""
    commands: list[str] = []
    send = py4j.clientserver.ClientServerConnection.send_command
    release = py4j.protocol.MEMORY_COMMAND_NAME + py4j.protocol.MEMORY_DEL_SUBCOMMAND_NAME

    def counted(connection, command):
        if not command.startswith(release):
            commands.append(command)
        return send(connection, command)

    monkeypatch.setattr(py4j.clientserver.ClientServerConnection, "send_command", counted)
    return commands


def test_the_test_session_builds_a_column_in_three_round_trips(spark, monkeypatch):
    assert spark.conf.get(DEBUGGING) == "false" and not is_debugging_enabled()
    commands = recorded(monkeypatch)
    F.col("pickup_ts")
    assert len(commands) == 3, commands  # the functions class, its method, the call: no origin set and cleared
    assert not any("PySparkCurrentOrigin" in command for command in commands)


def test_other_environments_keep_the_call_sites_of_errors():
    for env in (None, "cluster"):
        settings = spark_settings(load_conf(env, overrides={"spark.delta_jars": "none"}))
        assert settings.get(DEBUGGING, "true") == "true", env
    assert spark_settings(load_conf("test", overrides={"spark.delta_jars": "none"}))[DEBUGGING] == "false"


def test_existence_and_version_reads_do_not_look_delta_s_methods_up_again(spark, tmp_path, monkeypatch):
    """lake.jvm looks Delta's static methods up once: an existence check is one call into the JVM and a version five
    (the check, then the log brought up to date), both still read fresh."""
    from lake import delta

    table = str(tmp_path / "t")
    assert not delta.is_delta(spark, table)
    spark.range(3).write.format("delta").save(table)
    assert delta.is_delta(spark, table) and delta.latest_version(spark, table) == 0  # warm: methods looked up
    commands = recorded(monkeypatch)
    assert delta.is_delta(spark, table)
    assert len(commands) == 1, commands
    spark.range(2).write.format("delta").mode("append").save(table)
    commands.clear()
    assert delta.latest_version(spark, table) == 1  # the append is seen
    assert len(commands) == 1 + 4, commands  # is_delta; forTable, Option.empty, update, version
