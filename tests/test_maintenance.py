"""`lake vacuum` keeps the versions registered models were trained on; `lake restore` and the runs after it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from lake_copies import copy_of
from mlflow.tracking import MlflowClient

from cli.main import main as lake_cli
from lake import Lake, load_conf
from lake.maintenance import RETENTION_CHECK, VacuumRefusedError, restore, vacuum
from lake.query import comparable, run_query
from pipelines.bronze import run_ingest
from pipelines.gold import run_gold
from pipelines.pins import pinned_versions
from pipelines.silver import run_silver
from pipelines.train.tracking import input_tag, open_tracking

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "sample"
TABLE = "silver.zones"  # any catalog table: these tests write it themselves


def small_sample(folder: Path, month: str, rows: int = 25) -> str:
    """The first rows of the bundled yellow sample of a month, under its original name (the name holds the month)."""
    name = f"yellow_tripdata_sample_2019-{month}.csv"
    lines = (BUNDLED / name).read_text().splitlines()[: rows + 1]
    (folder / name).write_text("\n".join(lines) + "\n")
    return str(folder / name)


def two_versions(lake: Lake) -> None:
    """Version 0 with three rows, version 1 replacing them with two (version 0's files are then removed)."""
    schema = lake.spec(TABLE).schema  # the registry's contract: every write is conformed to it
    lake.overwrite(
        TABLE,
        lake.spark.createDataFrame([(n, b, f"zone {n}", "Boro") for n, b in ((1, "a"), (2, "b"), (3, "c"))], schema),
    )
    lake.overwrite(
        TABLE, lake.spark.createDataFrame([(n, b, f"zone {n}", "Boro") for n, b in ((4, "d"), (5, "e"))], schema)
    )


def test_vacuum_refuses_to_delete_a_protected_version_unless_forced(lake, spark):
    two_versions(lake)
    setting = spark.conf.get(RETENTION_CHECK, None)  # other tests of the shared session may have set it
    with pytest.raises(VacuumRefusedError, match=r"version\(s\) 0 must stay readable"):
        vacuum(lake, TABLE, retain_hours=0, protected_versions=[0])
    assert lake.read(TABLE, version=0).count() == 3
    assert spark.conf.get(RETENTION_CHECK, None) == setting  # switched off for that vacuum only

    kept = vacuum(lake, TABLE, protected_versions=[0])  # the table's retention (a week): nothing is old enough
    assert (kept.data_files, kept.lost_up_to, kept.retain_hours) == ([], None, 168)
    planned = vacuum(lake, TABLE, retain_hours=0, protected_versions=[1], dry_run=True)
    assert planned.data_files and planned.lost_up_to == 0 and not planned.blocked and not planned.done
    assert "versions 0..0 is no longer possible" in planned.describe()
    assert lake.read(TABLE, version=0).count() == 3

    forced = vacuum(lake, TABLE, retain_hours=0, protected_versions=[0], force=True)
    assert forced.done and forced.blocked == {0: len(planned.data_files)}
    with pytest.raises(Exception, match="(?i)not exist|FileNotFound|FILE_NOT_EXIST"):
        lake.read(TABLE, version=0).collect()
    assert sorted(row.zone_id for row in lake.read(TABLE).collect()) == [4, 5]


def register_trained_on(lake: Lake, client: MlflowClient, experiment_id: str, version: int, path: str) -> str:
    """A run tagged like training tags its input, registered as a model version; returns the model version."""
    run = client.create_run(
        experiment_id, tags={input_tag(TABLE, "version"): str(version), input_tag(TABLE, "path"): path}
    )
    client.set_terminated(run.info.run_id)
    source = f"{run.info.artifact_uri}/model"
    return client.create_model_version("trip_duration", source, run_id=run.info.run_id).version


def test_pins_come_from_registered_model_versions_and_the_cli_refuses_to_vacuum_them(lake, monkeypatch, capsys):
    assert pinned_versions(lake) == {}  # no MLflow store yet: nothing pinned, and none created
    assert not (Path(lake.root) / "_mlflow").exists()
    two_versions(lake)
    tracking = open_tracking(lake)
    client = tracking.client
    client.create_registered_model("trip_duration")
    registered = register_trained_on(lake, client, tracking.experiment_id, 0, lake.path(TABLE))
    register_trained_on(lake, client, tracking.experiment_id, 1, "/another/lake/silver/zones")
    unregistered = client.create_run(tracking.experiment_id, tags={input_tag(TABLE, "version"): "1"})
    client.set_terminated(unregistered.info.run_id)
    assert pinned_versions(lake) == {TABLE: {0: [f"trip_duration v{registered}"]}}

    monkeypatch.setenv("LAKE_ROOT", lake.root)
    assert lake_cli(["--env", "test", "vacuum", TABLE, "--retain-hours", "0"]) == 2
    printed = capsys.readouterr()
    assert "version 0 is the oldest a registered model was trained on" in printed.out
    assert "version(s) 0 must stay readable" in printed.err and "--force" in printed.err
    assert lake.read(TABLE, version=0).count() == 3
    assert lake_cli(["--env", "test", "vacuum", TABLE, "--retain-hours", "0", "--force"]) == 0
    assert "data file(s) and" in capsys.readouterr().out


@dataclass(frozen=True)
class SmallLake:
    """A lake that took 25 January trips, then 25 February trips, each month through bronze, silver and gold; and
    what it held after January."""

    lake: Lake
    gold_january: int  # gold.zone_daily's version
    bronze_january: int  # bronze.trips's version
    trips_january: list[str]  # silver.trips's trip keys
    quarantined_january: int  # silver.quarantine's rows


@pytest.fixture(scope="module")
def small_lake_built(spark, tmp_path_factory) -> SmallLake:
    """Built once per module; tests get a copy of its folder (small_lake)."""
    folder = tmp_path_factory.mktemp("maintenance")
    lake = Lake(load_conf("test", overrides={"lake.root": str(folder / "lake")}), spark)
    bronze = run_ingest(lake, [small_sample(folder, "01")]).versions["bronze.trips"]
    run_silver(lake)
    trips = sorted(lake.read("silver.trips").select("trip_key").toPandas()["trip_key"])
    quarantined = lake.read("silver.quarantine").count()
    gold = run_gold(lake).versions["gold.zone_daily"]
    run_ingest(lake, [small_sample(folder, "02")])
    run_silver(lake)
    run_gold(lake)
    return SmallLake(lake, gold, bronze, trips, quarantined)


@pytest.fixture
def small_lake(small_lake_built, tmp_path) -> tuple[Lake, SmallLake]:
    """A copy of the module's small lake."""
    return copy_of(small_lake_built.lake, tmp_path / "lake"), small_lake_built


def test_restore_then_query_and_the_next_gold_run_see_consistent_data(small_lake, monkeypatch, capsys):
    lake, built = small_lake
    january = built.gold_january
    sql = "SELECT pickup_date, sum(trips) AS trips, round(sum(revenue), 2) AS revenue FROM gold.zone_daily GROUP BY 1"
    before = comparable(run_query(lake, sql, "fast").table)
    then = comparable(run_query(lake, sql, "fast", version=january).table)
    assert then != before and then[1]

    monkeypatch.setenv("LAKE_ROOT", lake.root)
    assert lake_cli(["--env", "test", "restore", "gold.zone_daily", "--version", str(january)]) == 0
    out = capsys.readouterr().out
    assert f"restored to version {january}" in out and "watermark cleared: gold on silver.trips" in out
    for engine in ("fast", "spark"):
        assert comparable(run_query(lake, sql, engine).table) == then
    assert lake.watermark("silver", "bronze.trips") is not None  # silver's own progress is untouched

    rebuilt = run_gold(lake)  # gold's watermark was cleared: it rebuilds from silver, February included
    assert rebuilt.details["mode"] == "full"
    assert comparable(run_query(lake, sql, "fast").table) == before
    assert lake_cli(["--env", "test", "restore", "gold.zone_daily", "--version", "999"]) == 2
    assert "restore to one of 0.." in capsys.readouterr().err


def test_restore_clears_the_watermarks_of_consumers_reading_the_table(lake):
    two_versions(lake)
    lake.set_watermark("reader", TABLE, 0)
    lake.set_watermark("reader", TABLE, 1)  # two moves: two rows, both cleared
    lake.set_watermark("other", "bronze.trips", 5)
    done = restore(lake, TABLE, 0)
    assert done["watermarks_cleared"] == [f"reader on {TABLE}"]
    assert lake.watermark("reader", TABLE) is None and lake.watermark("other", "bronze.trips") == 5
    assert sorted(row.zone_id for row in lake.read(TABLE).collect()) == [1, 2, 3]


def test_restoring_bronze_rebuilds_silver_from_what_bronze_holds_and_the_doctor_agrees(small_lake, monkeypatch):
    from lake.doctor import OK, check_accounting

    lake, built = small_lake
    before = built.trips_january
    assert lake.read("silver.trips").count() > len(before)  # February's trips too

    monkeypatch.setenv("LAKE_ROOT", lake.root)
    assert lake_cli(["--env", "test", "restore", "bronze.trips", "--version", str(built.bronze_january)]) == 0
    rebuilt = run_silver(lake)  # the watermark was cleared: silver starts over from bronze as restored
    assert rebuilt.details["cleared"]["silver.trips"] > len(before)
    assert sorted(lake.read("silver.trips").select("trip_key").toPandas()["trip_key"]) == before
    assert lake.read("silver.quarantine").count() == built.quarantined_january
    assert check_accounting(lake).status == OK, check_accounting(lake).detail
