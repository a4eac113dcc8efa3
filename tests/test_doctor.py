"""`lake doctor`: each check says ok on a healthy small lake and fail, with a fix, on what is broken."""

from __future__ import annotations

from pathlib import Path

import pytest
from delta.tables import DeltaTable
from lake_copies import copy_of

from cli.main import main as lake_cli
from lake import Lake, load_conf
from lake.doctor import FAIL, OK, WARN, check_accounting, check_delta_jars, check_java_runtime, check_table, run_checks
from pipelines.bronze import run_ingest
from pipelines.silver import run_silver

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "sample"
ROWS = 12


@pytest.fixture(scope="module")
def healthy(spark, tmp_path_factory) -> Lake:
    """A lake with 12 January trips through bronze and silver (quality.stage_runs has the silver run's counts)."""
    folder = tmp_path_factory.mktemp("doctor")
    name = "yellow_tripdata_sample_2019-01.csv"
    lines = (BUNDLED / name).read_text().splitlines()
    unknown_zone = lines[2].replace(",N,112,112,", ",N,9999,112,")
    assert unknown_zone != lines[2]
    rows = lines[1 : ROWS - 1] + [lines[1], unknown_zone]
    (folder / name).write_text("\n".join([lines[0], *rows]) + "\n")  # one exact duplicate, one unknown zone
    lake = Lake(load_conf("test", overrides={"lake.root": str(folder / "lake")}), spark)
    run_ingest(lake, [str(folder / name)])
    run_silver(lake)
    return lake


def by_name(checks):
    return {check.name: check for check in checks}


def test_a_healthy_lake_passes_and_the_accounting_adds_up(healthy, monkeypatch, capsys):
    checks = by_name(run_checks(healthy))
    assert {c.status for c in checks.values()} <= {OK, WARN}
    assert checks["java"].status == OK and checks["config"].status == OK and checks["shared storage"].status == OK
    assert checks["table silver.trips"].status == OK and "protocol reader" in checks["table silver.trips"].detail
    assert checks["table gold.zone_daily"].status == WARN  # not written yet: a warning that says which stage
    accounting = checks["accounting"]
    silver_rows = healthy.read("silver.trips").count()
    open_rows = healthy.read("silver.quarantine").where("_released_run_id IS NULL").count()
    assert accounting.status == OK
    assert f"{ROWS} = silver.trips {silver_rows} + open quarantine {open_rows} + duplicates " in accounting.detail
    assert silver_rows + open_rows < ROWS  # the duplicate is counted, not lost

    monkeypatch.setenv("LAKE_ROOT", healthy.root)
    assert lake_cli(["--env", "test", "doctor"]) == 0
    out = capsys.readouterr().out
    assert "ok    accounting:" in out and "0 failed" in out


def test_rows_missing_from_silver_and_an_unreadable_table_fail_with_a_fix(healthy, tmp_path, monkeypatch, capsys):
    broken = copy_of(healthy, tmp_path / "lake")
    DeltaTable.forPath(broken.spark, broken.path("silver.trips")).delete("vendor_id = 1 OR vendor_id = 2")
    accounting = check_accounting(broken)
    assert accounting.status == FAIL and "rows unaccounted for" in accounting.detail and accounting.fix
    zones = Path(broken.path("silver.zones"))
    next(zones.rglob("*.parquet")).unlink()
    table = check_table(broken, "silver.zones")
    assert table.status == FAIL and "lake restore silver.zones" in table.fix

    monkeypatch.setenv("LAKE_ROOT", broken.root)
    assert lake_cli(["--env", "test", "doctor"]) == 1
    out = capsys.readouterr().out
    assert "fail  accounting:" in out and "fail  table silver.zones:" in out and "2 failed" in out


def test_newer_bronze_rows_are_a_warning_to_run_silver(healthy, tmp_path):
    behind = copy_of(healthy, tmp_path / "lake")
    extra = behind.read("bronze.trips").limit(2)
    behind.append("bronze.trips", extra.localCheckpoint())
    accounting = check_accounting(behind)
    assert accounting.status == WARN and "2 newer bronze row(s)" in accounting.detail
    assert accounting.fix == "run `lake silver`"


def test_missing_java_jars_or_config_fail(monkeypatch, tmp_path, capsys):
    conf = load_conf("test")
    jars = check_delta_jars(conf.with_overrides({"spark.jar_cache": str(tmp_path), "spark.delta_jars": "auto"}))
    bogus = check_delta_jars(conf.with_overrides({"spark.delta_jars": "maybe"}))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert check_java_runtime().status == FAIL and "Java 17" in check_java_runtime().fix
    assert jars.status in (WARN, FAIL) and bogus.status == FAIL  # WARN when Maven could still fetch them
    monkeypatch.setenv("LAKE_CONF_DIR", str(tmp_path))
    assert lake_cli(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "fail  config:" in out and "base.yaml not found" in out and "fail  java:" in out
