"""A class-data-sharing archive of the driver JVM's classes: every later driver starts from it instead of loading,
parsing and verifying Spark's and Delta's classes from their JARs again.

With the archive a fresh driver's session starts in 6.4 s instead of 13.2 s and its first ingest is ~4 s shorter
(bench/results/startup.md). Java 17 writes such an archive when a JVM started with
`-XX:ArchiveClassesAtExit` exits (`python -m lake.classarchive`: a small Delta workload in a child process; `make
setup` runs it). A driver uses it when it exists for the same Java, pyspark and delta-spark; an archive the JVM cannot
use (another classpath, a file that fails its header checks) is skipped by the JVM itself, silently, and the driver
starts as before.
Only the driver: a cluster's executors run on other machines' JVMs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from lake.config import Conf, load_conf
from lake.jars import SparkSetupError, java_executable

# The JVM reports an archive it cannot use on stdout ([warning][cds...]): a `lake query` prints its result there.
QUIET = ("-Xlog:cds*=off", "-Xlog:class+path=off")
DUMP_ENV = "LAKE_CLASS_ARCHIVE_DUMP"  # set in the child process that writes the archive
OFF = ("off", "none", "false", "no")
AUTO = ("auto", "on", "true", "yes")
DUMP_TIMEOUT_SECONDS = 900
# Each Java, pyspark installation (a new virtualenv: a new path) and delta-spark gets its own ~190 MB archive. A
# driver touches the one it starts from; writing a new one removes the others unused for KEEP_DAYS, and all but the
# KEEP most recently used, so the JAR cache does not grow by one archive per virtualenv for ever.
KEEP, KEEP_DAYS = 3, 14
PATTERN = "driver-classes-*.jsa"


def archive_path(conf: Conf) -> Path | None:
    """Where the archive for this Java, pyspark installation and delta-spark lives: in the JAR cache (`auto`), or the
    path `spark.class_archive` names, relative to the project root; None when it is off or no Java is found."""
    setting = conf.get("spark.class_archive", "auto")
    if setting in (False, None) or str(setting).lower() in OFF:
        return None
    if setting is True or str(setting).lower() in AUTO:
        return _keyed_path(conf)
    return Path(conf.path("spark.class_archive"))


def _keyed_path(conf: Conf) -> Path | None:
    java = java_executable()
    if not java:
        return None
    import pyspark

    real = Path(java).resolve()
    jars = Path(pyspark.__file__).parent / "jars"  # the driver's classpath: another venv or version, another archive
    listing = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in jars.glob("*.jar"))
    try:
        delta_version = metadata.version("delta-spark")
    except metadata.PackageNotFoundError:
        delta_version = "none"
    key = repr((str(real), real.stat().st_mtime_ns, str(jars), pyspark.__version__, listing, delta_version))
    folder = Path(os.path.expanduser(str(conf.get("spark.jar_cache") or "~/.cache/taxi-lakehouse/jars")))
    return folder / f"driver-classes-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa"


def driver_options(conf: Conf) -> list[str]:
    """The driver JVM's options for the archive: write it (in the child process of `create`), use it, or none."""
    if os.environ.get(DUMP_ENV):  # its JVM's cds messages stay on: create() reports them if the dump fails
        return [f"-XX:ArchiveClassesAtExit={os.environ[DUMP_ENV]}"]
    path = archive_path(conf)
    if path is None or not path.is_file():
        return []
    try:
        os.utime(path)  # last used now (see prune)
    except OSError:
        pass  # a read-only cache: the archive is used all the same
    option = f"-XX:SharedArchiveFile={path}"
    return [f'"{option}"' if any(c.isspace() for c in option) else option, *QUIET]  # Spark splits options as a shell


def _workload(root: str) -> None:
    """What a stage run loads: CSV and Delta reads, an append, an overwrite of some rows, a MERGE, the change feed,
    aggregations, a window, a join, the history (run in the child process, with the archive option)."""
    from delta.tables import DeltaTable
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from lake.session import build_spark

    spark = build_spark(load_conf(overrides={"lake.root": root}))
    csv = Path(root) / "trips.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text("id,day,zone,fare\n" + "".join(f"{i},2019-01-0{1 + i % 3},{i % 5},{i * 1.5}\n" for i in range(60)))
    trips = spark.read.csv(str(csv), header=True, schema="id string, day string, zone string, fare string")
    typed = trips.select(
        F.col("id").cast("int").alias("id"),
        F.to_date("day").alias("day"),
        F.col("zone").cast("int").alias("zone"),
        F.col("fare").cast("double").alias("fare"),
        F.sha2(F.concat_ws("|", "id", "day"), 256).alias("key"),
    )
    table = str(Path(root) / "table")
    typed.write.format("delta").partitionBy("day").save(table)
    typed.limit(5).write.format("delta").mode("append").save(table)
    typed.where("day = '2019-01-01'").write.format("delta").mode("overwrite").option(
        "replaceWhere", "day = '2019-01-01'"
    ).save(table)
    target = DeltaTable.forPath(spark, table)
    target.alias("t").merge(typed.alias("s"), "t.key = s.key").whenNotMatchedInsertAll().execute()
    spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 1).load(table).count()
    by_day = Window.partitionBy("zone").orderBy(F.unix_date("day")).rangeBetween(-28, -1)
    daily = spark.read.format("delta").load(table).groupBy("day", "zone").agg(F.count(F.lit(1)).alias("n"))
    windowed = daily.select("*", F.sum("n").over(by_day).alias("window_n"), F.collect_list("n").over(by_day).alias("l"))
    windowed.join(typed, ["zone", "day"], "left").groupBy("zone").agg(F.sum("fare"), F.max("window_n")).collect()
    spark.read.format("delta").option("versionAsOf", 0).load(table).count()
    target.history(1).collect()
    spark.stop()


def create(conf: Conf | None = None, force: bool = False) -> Path | None:
    """Writes the archive (a child JVM runs _workload and dumps its classes at exit); returns its path, or None when
    archives are set off. Kept when it exists, unless force."""
    conf = conf or load_conf()
    path = archive_path(conf)
    if path is None or (path.is_file() and not force):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")  # written at the child JVM's exit, then renamed
    try:
        with tempfile.TemporaryDirectory() as scratch:
            env = {**os.environ, DUMP_ENV: str(partial)}
            command = [sys.executable, "-c", f"from lake.classarchive import _workload; _workload({scratch!r})"]
            try:
                done = subprocess.run(
                    command, env=env, capture_output=True, text=True, check=False, timeout=DUMP_TIMEOUT_SECONDS
                )
            except subprocess.TimeoutExpired as exc:
                raise SparkSetupError(f"writing the driver class archive {path} took over {exc.timeout} s") from exc
        if done.returncode != 0 or not partial.is_file():
            output = (done.stdout.strip()[-700:] + "\n" + done.stderr.strip()[-1500:]).strip()
            raise SparkSetupError(f"could not write the driver class archive {path}: {output}")
        os.replace(partial, path)  # a driver starting meanwhile sees no archive or a whole one
    finally:
        partial.unlink(missing_ok=True)
    prune(path)
    return path


def prune(current: Path, keep: int = KEEP, days: float = KEEP_DAYS) -> list[Path]:
    """Removes the archives beside `current` (other Javas or virtualenvs) unused for `days`, and all but the `keep`
    most recently used; returns those removed. A driver whose archive is gone starts without one (driver_options
    checks that it exists)."""
    others = sorted(
        (p for p in current.parent.glob(PATTERN) if p != current), key=lambda p: p.stat().st_mtime, reverse=True
    )
    cutoff = time.time() - days * 86400
    removed = [p for i, p in enumerate(others) if i >= keep - 1 or p.stat().st_mtime < cutoff]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


if __name__ == "__main__":
    try:
        print(create(force="--force" in sys.argv))
    except Exception as exc:  # an optimization: without it drivers start as before, so set-up goes on
        print(f"warning: {exc}", file=sys.stderr)
