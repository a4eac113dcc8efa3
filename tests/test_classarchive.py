"""The driver's class archive (lake/classarchive.py): where it lives, when a driver uses or writes it, and that the
suite's own driver started from it when `make setup` made one."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from lake import classarchive, load_conf
from lake.session import spark_settings


def _conf(tmp_path: Path, **overrides):
    return load_conf("test", overrides={"spark.delta_jars": "none", "spark.jar_cache": str(tmp_path), **overrides})


def test_a_driver_uses_the_archive_only_when_it_exists_for_this_java_and_pyspark(tmp_path, monkeypatch):
    monkeypatch.delenv(classarchive.DUMP_ENV, raising=False)
    conf = _conf(tmp_path)
    path = classarchive.archive_path(conf)
    assert path is not None and path.parent == tmp_path and path.suffix == ".jsa"
    assert "SharedArchiveFile" not in spark_settings(conf)["spark.driver.extraJavaOptions"]  # none made yet

    path.write_bytes(b"archive")
    driver = spark_settings(conf)["spark.driver.extraJavaOptions"].split()
    assert f"-XX:SharedArchiveFile={path}" in driver and set(classarchive.QUIET) <= set(driver)
    assert "-XX:-DontCompileHugeMethods" in driver  # the configured options stay
    assert "SharedArchiveFile" not in spark_settings(conf)["spark.executor.extraJavaOptions"]  # a cluster's JVMs
    for off in ("off", False, "none", "OFF"):
        assert classarchive.archive_path(_conf(tmp_path, **{"spark.class_archive": off})) is None, off
    assert classarchive.archive_path(_conf(tmp_path, **{"spark.class_archive": True})) == path
    relative = classarchive.archive_path(_conf(tmp_path, **{"spark.class_archive": "build/classes.jsa"}))
    assert relative == Path(load_conf("test").conf_dir).parent.resolve() / "build" / "classes.jsa"  # project root
    spaced = tmp_path / "my cache"
    spaced.mkdir()
    (classarchive.archive_path(_conf(spaced))).write_bytes(b"archive")
    assert (
        classarchive.driver_options(_conf(spaced))[0]
        == f'"-XX:SharedArchiveFile={classarchive.archive_path(_conf(spaced))}"'
    )
    named = tmp_path / "elsewhere.jsa"
    assert classarchive.archive_path(_conf(tmp_path, **{"spark.class_archive": str(named)})) == named


def test_the_archive_is_keyed_by_the_pyspark_installation_and_its_jars(tmp_path, monkeypatch):
    """Another venv's pyspark, or the same folder upgraded in place, is another classpath: the JVM would refuse the
    archive (silently), so it gets its own."""
    import pyspark

    mine = classarchive.archive_path(_conf(tmp_path))
    other_venv = tmp_path / "other-venv" / "pyspark"
    (other_venv / "jars").mkdir(parents=True)
    monkeypatch.setattr(pyspark, "__file__", str(other_venv / "__init__.py"))
    before = classarchive.archive_path(_conf(tmp_path))
    (other_venv / "jars" / "spark-core_2.13-9.9.9.jar").write_bytes(b"jar")  # an upgrade in place
    after = classarchive.archive_path(_conf(tmp_path))
    assert len({mine, before, after}) == 3


def test_the_child_that_writes_the_archive_dumps_instead_of_using_one(tmp_path, monkeypatch):
    target = tmp_path / "partial.jsa"
    monkeypatch.setenv(classarchive.DUMP_ENV, str(target))
    (classarchive.archive_path(_conf(tmp_path))).write_bytes(b"archive")
    driver = spark_settings(_conf(tmp_path))["spark.driver.extraJavaOptions"]
    assert f"-XX:ArchiveClassesAtExit={target}" in driver and "SharedArchiveFile" not in driver


def setup_archive(env: str) -> Path:
    """The archive `make setup` wrote for conf env's drivers (a skip outside CI when there is none; a failure in CI)."""
    path = classarchive.archive_path(load_conf(env))
    if path is None or not path.is_file():
        message = f"no class archive at {path}: run `python -m lake.classarchive` (make setup does)"
        if os.environ.get("CI"):
            pytest.fail(f"CI runs `make setup` first: {message}", pytrace=False)
        pytest.skip(message)
    return path


def java_and_classpath(spark) -> tuple[str, str]:
    """The running driver's `java` and its classpath (pyspark's JARs)."""
    system = spark.sparkContext._jvm.java.lang.System
    return str(Path(system.getProperty("java.home")) / "bin" / "java"), system.getProperty("java.class.path")


def test_the_suite_s_driver_started_from_the_archive_setup_made(spark):
    """`make setup` (which `make test` runs first) writes the archive; the session fixture's driver maps it."""
    path = setup_archive("test")
    jvm = spark.sparkContext._jvm
    arguments = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert f"-XX:SharedArchiveFile={path}" in arguments
    # The JVM skips an archive it cannot map, silently; with -Xshare:on it refuses to start instead. This driver's
    # Java and classpath (pyspark's JARs) must accept the archive, or the option above buys nothing.
    java, classpath = java_and_classpath(spark)
    flags = [a for a in arguments if a.startswith("-XX:")]  # the driver's own VM flags (its collector among them)
    command = [java, "-Xshare:on", *flags, "-cp", classpath, "-version"]
    checked = subprocess.run(command, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    wrong = subprocess.run([*command[:-3], "-cp", str(path.parent), "-version"], capture_output=True, check=False)
    assert wrong.returncode != 0  # the check can fail: another classpath is refused


def test_a_local_driver_runs_the_parallel_collector_and_maps_the_archive_with_it(spark):
    """conf/base.yaml's drivers run the throughput collector (the suite's, the serial one; a cluster's, the JVM's
    default): Java must map the archive `make setup` wrote with it too, or a local run starts without it."""
    local, cluster = (load_conf(env).get("spark.jvm_options").split() for env in ("local", "cluster"))
    assert "-XX:+UseParallelGC" in local and "-XX:-DontCompileHugeMethods" in local
    assert "-XX:-DontCompileHugeMethods" in cluster and not any(option.endswith("GC") for option in cluster)
    path = setup_archive("local")
    java, classpath = java_and_classpath(spark)
    for collector in (local, cluster):
        command = [java, "-Xshare:on", *collector, f"-XX:SharedArchiveFile={path}", "-cp", classpath, "-version"]
        checked = subprocess.run(command, capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_writing_an_archive_removes_old_and_surplus_ones_and_a_driver_marks_its_own_used(tmp_path, monkeypatch):
    monkeypatch.delenv(classarchive.DUMP_ENV, raising=False)
    now = time.time()
    ages = {"a": 1, "b": 2, "c": 3, "d": 20}  # days since each was last used
    for name, days in ages.items():
        old = tmp_path / f"driver-classes-{name}.jsa"
        old.write_bytes(b"archive")
        os.utime(old, (now - days * 86400, now - days * 86400))
    (tmp_path / "delta-spark.jar").write_bytes(b"jar")
    current = tmp_path / "driver-classes-new.jsa"
    current.write_bytes(b"archive")
    removed = classarchive.prune(current, keep=3, days=14)
    # the two most recently used others stay beside the current one; the third is surplus, d unused for 20 days
    assert sorted(p.name for p in removed) == ["driver-classes-c.jsa", "driver-classes-d.jsa"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "delta-spark.jar",
        "driver-classes-a.jsa",
        "driver-classes-b.jsa",
        "driver-classes-new.jsa",
    ]

    conf = _conf(tmp_path)
    path = classarchive.archive_path(conf)
    path.write_bytes(b"archive")
    os.utime(path, (now - 30 * 86400, now - 30 * 86400))
    assert "SharedArchiveFile" in spark_settings(conf)["spark.driver.extraJavaOptions"]
    assert path.stat().st_mtime > now - 60  # used: it is not the one a later prune removes
