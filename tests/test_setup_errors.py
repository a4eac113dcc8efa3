"""Spark set-up problems end in one clear message saying what to do."""

from __future__ import annotations

import pytest

from lake import jars
from lake.jars import SparkSetupError


def test_missing_java_says_what_to_install(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(jars.shutil, "which", lambda name: None)
    with pytest.raises(SparkSetupError, match="Java was not found.*JAVA_HOME"):
        jars.check_java()


def test_jars_that_cannot_be_resolved_name_the_artifacts_and_the_way_out(monkeypatch, tmp_path):
    monkeypatch.setattr(jars.shutil, "which", lambda name: None)
    with pytest.raises(SparkSetupError, match="delta-spark_4.1_2.13.*LAKE_DELTA_JARS=packages|mvn.*not installed"):
        jars.resolve_jars(str(tmp_path / "empty-cache"))


def test_cached_jars_are_used_without_maven(monkeypatch, tmp_path):
    for coordinate in jars.delta_coordinates():
        (tmp_path / jars._jar_name(coordinate)).write_bytes(b"jar")
    monkeypatch.setattr(jars.shutil, "which", lambda name: None)
    assert len(jars.resolve_jars(str(tmp_path))) == 2
