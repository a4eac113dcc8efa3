"""PySpark's call-site capture (the "DataFrame" context of a runtime error) is off in the tests' session and on
elsewhere: with it, building one column costs 13 Py4J round trips instead of 3, ~10% of a small stage round."""

from __future__ import annotations

import py4j.clientserver
from pyspark.errors.utils import is_debugging_enabled
from pyspark.sql import functions as F

from lake import load_conf
from lake.session import spark_settings

DEBUGGING = "spark.python.sql.dataFrameDebugging.enabled"


def test_the_test_session_builds_a_column_in_three_round_trips(spark, monkeypatch):
    assert spark.conf.get(DEBUGGING) == "false" and not is_debugging_enabled()
    commands: list[str] = []
    send = py4j.clientserver.ClientServerConnection.send_command

    def counted(connection, command):
        commands.append(command)
        return send(connection, command)

    monkeypatch.setattr(py4j.clientserver.ClientServerConnection, "send_command", counted)
    F.col("pickup_ts")
    assert len(commands) == 3, commands  # the functions class, its method, the call: no origin set and cleared
    assert not any("PySparkCurrentOrigin" in command for command in commands)


def test_other_environments_keep_the_call_sites_of_errors():
    for env in (None, "cluster"):
        settings = spark_settings(load_conf(env, overrides={"spark.delta_jars": "none"}))
        assert settings.get(DEBUGGING, "true") == "true", env
    assert spark_settings(load_conf("test", overrides={"spark.delta_jars": "none"}))[DEBUGGING] == "false"
