"""`lake doctor` checks: Java, the Delta JARs, each catalog table's protocol and readability, and the row accounting
from bronze to silver. Each check says ok, warn or fail and, when not ok, how to fix it. No JVM is started unless the
Spark read check is asked for: tables are read with deltalake.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import pyarrow.compute as pc
from deltalake import DeltaTable

from lake.catalog import WATERMARKS, Lake
from lake.config import Conf, is_uri, local_path
from lake.errors import SetupError
from lake.jars import cached_jars, check_java, delta_coordinates

OK, WARN, FAIL = "ok", "warn", "fail"
MIN_JAVA = 17
BRONZE, SILVER, QUARANTINE, STAGE_RUNS = "bronze.trips", "silver.trips", "silver.quarantine", "quality.stage_runs"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name}: {self.detail}"
        return text + (f"\n      fix: {self.fix}" if self.fix and self.status != OK else "")


def check_java_runtime() -> Check:
    """A Java runtime of version 17 or later (Spark 4 needs it)."""
    fix = "install Java 17 or 21 (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME"
    try:
        check_java()
    except SetupError as exc:
        return Check("java", FAIL, str(exc).split(":")[0], fix)
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home and os.path.exists(os.path.join(home, "bin", "java")) else "java"
    try:
        done = subprocess.run([shutil.which(java) or java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("java", FAIL, f"`{java} -version` failed: {exc}", fix)
    first = (done.stderr or done.stdout).strip().splitlines()[0] if (done.stderr or done.stdout).strip() else ""
    match = re.search(r'version "(\d+)', first)
    if not match:
        return Check("java", WARN, f"could not read the Java version from {first!r}", fix)
    if int(match.group(1)) < MIN_JAVA:
        return Check("java", FAIL, f"{first} is older than Java {MIN_JAVA}", fix)
    return Check("java", OK, first)


def check_delta_jars(conf: Conf) -> Check:
    """The Delta JARs Spark loads: cached (auto), fetched by Ivy (packages) or provided by the cluster (none)."""
    mode = conf.get("spark.delta_jars", "auto")
    extra = [str(c) for c in conf.get("spark.jar_packages") or ()]
    wanted = ", ".join([*delta_coordinates(), *extra])
    if mode == "packages":
        return Check("delta jars", OK, f"fetched by Spark's Ivy at start-up ({wanted})")
    if mode == "none":
        return Check("delta jars", OK, f"provided by the cluster (spark.delta_jars: none); needs {wanted}")
    if mode != "auto":
        fix = "set spark.delta_jars: auto, packages or none"
        return Check("delta jars", FAIL, f"spark.delta_jars is {mode!r}", fix)
    cache = str(conf.get("spark.jar_cache"))
    if cached_jars(cache, extra):
        return Check("delta jars", OK, f"{wanted} in {cache}")
    if shutil.which("mvn"):
        return Check("delta jars", WARN, f"not in {cache} yet; fetched with Maven when Spark first starts", "")
    return Check(
        "delta jars",
        FAIL,
        f"{wanted} not in {cache} and Maven is not installed to fetch them",
        "run `python -m lake.jars` where Maven is installed, copy the JARs into the cache, or set "
        "spark.delta_jars: packages",
    )


def check_config(conf: Conf) -> Check:
    """Files the configuration names exist."""
    missing = []
    for key in ("silver.rules",):
        if conf.get(key) and not conf.conf_file(key).exists():
            missing.append(f"{key} -> {conf.conf_file(key)}")
    for key in ("bronze.zone_lookup",):  # one in a store (s3a://...) is checked where it is read
        if conf.get(key) and (local := local_path(conf.path(key))) is not None and not os.path.exists(local):
            missing.append(f"{key} -> {conf.path(key)}")
    if missing:
        return Check("config", FAIL, f"env {conf.env}: missing file(s): {'; '.join(missing)}", "fix the paths in conf/")
    return Check("config", OK, f"env {conf.env} from {conf.conf_dir}, lake root {conf.lake_root}")


def check_shared_storage(conf: Conf) -> Check:
    """On a cluster, what executors read must be where every machine sees it: local folders must be mounted alike."""
    if not conf.on_cluster:
        return Check("shared storage", OK, f"local master {conf.get('spark.master')}: the executors share this disk")
    local = [f"{key} {conf.path(key)}" for key in ("lake.root", "lake.landing") if not is_uri(conf.path(key))]
    if local:
        fix = "mount it at the same path on every machine, or put it in the object store (s3a://...)"
        return Check("shared storage", WARN, f"executors read local folder(s): {'; '.join(local)}", fix)
    return Check("shared storage", OK, f"lake root and landing are in the store ({conf.lake_root})")


def open_delta(lake: Lake, path: str, version: int | None = None) -> DeltaTable | None:
    options = lake.storage_options
    exists = DeltaTable.is_deltatable(path, storage_options=options)
    return DeltaTable(path, version=version, storage_options=options) if exists else None


def check_table(lake: Lake, name: str, spark: bool = False) -> Check:
    """The table's Delta protocol, and that every file of its current version can be read."""
    spec = lake.spec(name)
    label = f"table {name}"
    try:
        table = open_delta(lake, spec.path)
        if table is None:
            return Check(label, WARN, f"not written yet ({spec.path})", f"run the stage that writes {spec.layer}")
        protocol = table.protocol()
        features = sorted(set(protocol.reader_features or []) | set(protocol.writer_features or []))
        about = f"version {table.version()}, protocol reader {protocol.min_reader_version} / writer "
        about += f"{protocol.min_writer_version}" + (f" ({', '.join(features)})" if features else "")
        rows = table.to_pyarrow_dataset().count_rows()  # opens every data file's footer: missing files show
    except Exception as exc:  # noqa: BLE001 - any reader failure is what this check reports
        reason = str(exc).strip().splitlines()[0][:300]
        if spark:
            return _spark_read(lake, name, label, f"deltalake cannot read it ({reason})")
        return Check(
            label,
            FAIL,
            f"deltalake cannot read it: {reason}",
            f"`lake doctor --spark` tells whether Spark can; `lake history {name}` and `lake restore {name} "
            "--version N` to go back to a readable version",
        )
    if spark:
        return _spark_read(lake, name, label, f"{about}, {rows} rows")
    return Check(label, OK, f"{about}, {rows} rows")


def _spark_read(lake: Lake, name: str, label: str, about: str) -> Check:
    try:
        lake.read(name).limit(1).collect()
    except Exception as exc:  # noqa: BLE001
        reason = str(exc).strip().splitlines()[0][:300]
        return Check(label, FAIL, f"{about}; Spark cannot read it either: {reason}", f"`lake history {name}`, then "
                     f"`lake restore {name} --version N` to a version that reads")  # fmt: skip
    return Check(label, OK if "cannot" not in about else WARN, f"{about}; Spark reads it")


def _silver_watermark(lake: Lake) -> int | None:
    if not DeltaTable.is_deltatable(lake.path(WATERMARKS), storage_options=lake.storage_options):
        return None
    latest = lake.latest_move("silver", BRONZE)  # Lake.watermark's order: the latest move
    return None if latest is None else int(latest["source_version"])


def silver_runs(lake: Lake) -> list[dict[str, Any]]:
    """quality.stage_runs rows of the silver stage, counts and versions as dicts."""
    runs = open_delta(lake, lake.path(STAGE_RUNS))
    if runs is None:
        return []
    rows = runs.to_pyarrow_dataset().to_table().to_pylist()
    found = []
    for row in rows:
        if row["stage"] == "silver":
            row["counts"] = dict(row["counts"] or [])
            row["versions"] = dict(row["versions"] or [])
            found.append(row)
    return found


def since_rebuild(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The silver runs from the latest that read all of bronze (a first run, or a rebuild after `lake restore`,
    which starts silver over) on: the runs before it account for rows silver no longer holds."""
    runs = sorted(runs, key=lambda run: run["finished_at"])
    full = [i for i, run in enumerate(runs) if BRONZE in run["versions"] and f"{BRONZE}@from" not in run["versions"]]
    return runs[full[-1] :] if full else runs


def check_accounting(lake: Lake) -> Check:
    """bronze rows silver has read = silver rows + open quarantine rows + duplicates (+ retired rows)."""
    label, fix = "accounting", "see quality.stage_runs for the silver runs' own equations; `lake silver` to catch up"
    watermark = _silver_watermark(lake)
    bronze = open_delta(lake, lake.path(BRONZE))
    if bronze is None or watermark is None:
        return Check(label, WARN, "bronze or silver has not run yet: nothing to account for", "")
    try:
        read_rows = open_delta(lake, lake.path(BRONZE), watermark).to_pyarrow_dataset().count_rows()
        latest_rows = bronze.to_pyarrow_dataset().count_rows()
        silver = open_delta(lake, lake.path(SILVER))
        silver_rows = silver.to_pyarrow_dataset().count_rows() if silver else 0
        quarantine = open_delta(lake, lake.path(QUARANTINE))
        open_rows = 0
        if quarantine is not None:
            released = quarantine.to_pyarrow_dataset().to_table(columns=["_released_run_id"])
            open_rows = int(pc.sum(pc.is_null(released["_released_run_id"])).as_py() or 0)
    except Exception as exc:  # noqa: BLE001
        return Check(label, WARN, f"could not read the tables with deltalake ({str(exc)[:200]})", "")
    runs = since_rebuild([run for run in silver_runs(lake) if run["status"] == "success"])
    duplicates = sum(int(run["counts"].get("duplicates", 0)) for run in runs)
    # Rows of superseded file versions: never written (superseded) or written, then retired from silver/quarantine
    # (by the run, or by an attempt that stopped before finishing: its rerun counts them as retired_earlier).
    retired_keys = ("superseded", "retired_trips", "retired_quarantine", "retired_earlier")
    retired = sum(int(run["counts"].get(key, 0) or 0) for run in runs for key in retired_keys)
    # Rows of a file published again with an earlier content (A, B, A) are read twice: once is counted.
    retired -= sum(int(run["counts"].get("reinstated", 0) or 0) for run in runs)
    broken = [run["run_id"] for run in silver_runs(lake) if run["invariant_holds"] is False]
    equation = (
        f"bronze rows read by silver (bronze.trips v{watermark}) {read_rows} = silver.trips {silver_rows} + open "
        f"quarantine {open_rows} + duplicates {duplicates}" + (f" + retired {retired}" if retired else "")
    )
    if read_rows != silver_rows + open_rows + duplicates + retired:
        difference = read_rows - (silver_rows + open_rows + duplicates + retired)
        return Check(label, FAIL, f"{equation} does not hold ({difference:+} rows unaccounted for)", fix)
    if broken:
        return Check(label, FAIL, f"{equation} holds, but silver run(s) {', '.join(broken)} broke their own", fix)
    if latest_rows != read_rows:
        pending = latest_rows - read_rows
        return Check(label, WARN, f"{equation}; {pending} newer bronze row(s) wait for silver", "run `lake silver`")
    return Check(label, OK, equation)


def run_checks(lake: Lake, spark: bool = False) -> list[Check]:
    """Every check of a lake whose configuration loaded (the CLI reports a configuration that does not)."""
    checks = [check_java_runtime(), check_delta_jars(lake.conf), check_config(lake.conf)]
    checks.append(check_shared_storage(lake.conf))
    checks += [check_table(lake, name, spark) for name in lake.specs]
    checks.append(check_accounting(lake))
    return checks
