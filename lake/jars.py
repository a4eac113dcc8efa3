"""Delta Lake JARs for Spark: resolved once from Maven Central into a cache folder, then reused offline."""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from lake.errors import SetupError


class SparkSetupError(SetupError):
    """Spark cannot start here; the message says what to do."""


def delta_coordinates() -> list[str]:
    """Maven coordinates of the Delta JARs matching the installed pyspark and delta-spark."""
    import pyspark

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    delta_version = metadata.version("delta-spark")
    return [
        f"io.delta:delta-spark_{spark_minor}_2.13:{delta_version}",
        f"io.delta:delta-storage:{delta_version}",
    ]


def _jar_name(coordinate: str) -> str:
    _, artifact, version = coordinate.split(":")
    return f"{artifact}-{version}.jar"


def java_executable() -> str | None:
    """The `java` Spark will start: JAVA_HOME's, else the one on PATH; None when there is none."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


def check_java() -> None:
    """Fails with one clear message when no Java runtime is reachable."""
    if java_executable():
        return
    raise SparkSetupError(
        "Java was not found: Spark needs a Java 17 (or 21) runtime. Install one "
        "(e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME."
    )


def cached_jars(cache_dir: str, extra: list[str] | tuple[str, ...] = ()) -> list[str] | None:
    """The cached JAR paths (Delta's and `extra` coordinates), or None when any is missing."""
    folder = Path(os.path.expanduser(cache_dir))
    paths = [folder / _jar_name(c) for c in [*delta_coordinates(), *extra]]
    return [str(p) for p in paths] if all(p.exists() and p.stat().st_size > 0 for p in paths) else None


def resolve_jars(cache_dir: str, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Returns the Delta JARs and those of `extra` coordinates (e.g. hadoop-aws and its AWS SDK for s3a://; each
    JAR named, no transitive resolution), fetching them with Maven into cache_dir on first use."""
    found = cached_jars(cache_dir, extra)
    if found:
        return found
    folder = Path(os.path.expanduser(cache_dir))
    folder.mkdir(parents=True, exist_ok=True)
    mvn = shutil.which("mvn")
    if not mvn:
        raise SparkSetupError(
            f"Delta JARs are not in {folder} and Maven (mvn) is not installed to fetch them. Install Maven, "
            "or set spark.delta_jars: packages (LAKE_DELTA_JARS=packages) to let Spark's Ivy fetch "
            f"{', '.join(delta_coordinates())}."
        )
    for coordinate in [*delta_coordinates(), *extra]:
        if (folder / _jar_name(coordinate)).exists():
            continue
        cmd = [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={coordinate}:jar", f"-DoutputDirectory={folder}"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SparkSetupError(
                f"could not fetch {coordinate} from Maven Central into {folder}: "
                f"{(done.stdout + done.stderr).strip()[-800:]}\nCheck network access to Maven Central, or copy "
                f"the JARs into {folder} by hand."
            )
    found = cached_jars(cache_dir, extra)
    if not found:
        raise SparkSetupError(f"Maven ran but JARs are still missing from {folder}")
    return found


if __name__ == "__main__":
    from lake.config import load_conf

    conf = load_conf()
    for jar in resolve_jars(conf.get("spark.jar_cache"), conf.get("spark.jar_packages") or ()):
        print(jar)
