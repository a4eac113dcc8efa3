"""run_gold: incremental runs equal a full rebuild, one new day reads only what it needs, the planned writes."""

from __future__ import annotations

import shutil
import threading
from datetime import date
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from test_gold import APPROX, GOLD, silver_frame, sorted_rows, trip  # tests/ is on sys.path under pytest

from lake.errors import ConfigError
from pipelines.gold import run as gold_run
from pipelines.gold import run_gold


def gold_snapshot(lake) -> dict[str, list[tuple]]:
    return {table: sorted_rows(lake.read(table)) for table in GOLD}


def windowed_lake(lake, window_days: int = 2):
    return type(lake)(lake.conf.with_overrides({"gold.pair_window_days": window_days}), lake.spark)


def test_incremental_runs_follow_inserts_updates_and_deletes_and_equal_a_full_rebuild(lake):
    lake = windowed_lake(lake)
    first = [trip(f"b1_{d}_{z}", f"2019-01-0{d} 0{z}:00:00", distance=float(d + z), duration=2.0 * d + z)
             for d in (1, 2, 3, 4, 6, 9) for z in (1, 2)]  # fmt: skip
    lake.append("silver.trips", silver_frame(lake.spark, first))
    initial = run_gold(lake)
    assert initial.details["mode"] == "full"
    assert initial.counts["gold.trip_features"] == len(first)

    # Silver changes: a late trip of Jan 2 arrives, a Jan 4 trip is corrected, and every Jan 6 trip is deleted.
    late = [trip("b2_late", "2019-01-02 07:00:00", distance=50.0, duration=90.0, total_amount=99.0)]
    lake.append("silver.trips", silver_frame(lake.spark, late))
    silver = DeltaTable.forPath(lake.spark, lake.path("silver.trips"))
    silver.update("trip_key = 'b1_4_1'", {"duration_min": "77.0"})
    lake.overwrite("silver.trips", silver_frame(lake.spark, []), replace_where="pickup_date = '2019-01-06'")
    incremental = run_gold(lake)
    assert incremental.details["mode"] == "incremental"
    # Jan 2 and 4 (and 2 days after each), Jan 6 (all deleted) and the days after it, which silver lacks.
    assert incremental.details["days"] == [f"2019-01-0{d}" for d in (2, 3, 4, 5, 6, 7, 8)]
    after_increment = gold_snapshot(lake)
    jan3 = [row for row in after_increment["gold.pair_stats"] if row[-1] == date(2019, 1, 3)]
    assert [(row[:3], row[-1]) for row in jan3] == [((10, 20, 5), date(2019, 1, 3))]  # the late Jan 2 trip counts
    assert jan3[0][3:5] == pytest.approx((3.0, 5.0), rel=APPROX)
    assert not [row for row in after_increment["gold.trip_features"] if row[-1] == date(2019, 1, 6)]
    features = {row.trip_key: row.duration_min for row in lake.read("gold.trip_features").collect()}
    assert features["b1_4_1"] == 77.0

    # A partial delete with no insert: one Jan 9 trip goes; Jan 9 and the 2 days after it are recomputed.
    silver.delete("trip_key = 'b1_9_1'")
    lines: list[str] = []
    partial = run_gold(lake, progress=lines.append)
    assert partial.details["days"] == ["2019-01-09", "2019-01-10", "2019-01-11"]
    assert partial.counts["gold.trip_features"] == 1
    assert lines[0].startswith("gold: incremental") and "3 day(s) to recompute" in lines[0]
    assert any(line.startswith("gold: gold.trip_features: 1 rows written [") for line in lines)  # one per table
    after_delete = gold_snapshot(lake)
    assert "b1_9_1" not in {row[0] for row in after_delete["gold.trip_features"]}

    assert run_gold(lake).details["mode"] == "up to date"
    assert run_gold(lake, full_refresh=True).details["mode"] == "full"
    assert gold_snapshot(lake) == after_delete


def plans_under_shuffles(plan: str) -> list[str]:
    """For each shuffle (not broadcast) exchange in a physical plan's tree string: the subtree it shuffles, as text."""
    lines = plan.splitlines()

    def depth(line: str) -> int:
        return len(line) - len(line.lstrip(" :+-"))

    subtrees = []
    for at, line in enumerate(lines):
        if "Exchange" in line and "BroadcastExchange" not in line:
            below = []
            for later in lines[at + 1 :]:
                if depth(later) <= depth(line):
                    break
                below.append(later)
            subtrees.append("\n".join(below))
    return subtrees


def test_gold_shuffles_the_trips_once_by_day_and_writes_them_without_another_shuffle(lake, monkeypatch):
    trips = [trip(f"t{d}_{k}", f"2019-01-0{d} {10 + k}:00:00", pu=10 + k % 2 * 220, do=20 + k % 3 * 110)
             for d in (1, 2, 3) for k in range(4)]  # fmt: skip
    lake.append("silver.trips", silver_frame(lake.spark, trips))
    plans = {}
    overwrite = type(lake).overwrite

    def planned_overwrite(self, table, df, **kwargs):
        plans[table] = df._jdf.queryExecution().executedPlan().toString()  # planned as run_gold writes it
        return overwrite(self, table, df, **kwargs)

    monkeypatch.setattr(type(lake), "overwrite", planned_overwrite)
    assert run_gold(lake).counts["gold.trip_features"] == len(trips)
    assert plans_under_shuffles(plans["gold.pair_stats"])  # its rows are shuffled by day for the write
    for table in ("gold.trip_features", "gold.zone_daily", "gold.hourly_demand"):
        assert "REPARTITION_BY_COL" not in plans[table], table  # the write's day repartition was dropped
        # The stored trips (the only frame with trip_key) are read in their day partitioning, never shuffled again.
        assert "trip_key" in plans[table]
        assert not [sub for sub in plans_under_shuffles(plans[table]) if "trip_key" in sub], plans[table]


def _move_data_files(table_path: str, keep: set[str], aside: Path) -> list[tuple[Path, Path]]:
    """Moves a table's data files out of the way (except partitions named in keep): reading them would then fail."""
    moved = []
    for partition in Path(table_path).glob("*=*"):
        if partition.name.split("=", 1)[1] in keep:
            continue
        for file in partition.glob("*.parquet"):
            target = aside / f"{sum(1 for _ in aside.iterdir())}.parquet"  # unique across calls
            shutil.move(file, target)
            moved.append((file, target))
    return moved


def test_one_new_day_reads_only_the_silver_days_it_needs_and_no_gold_table(lake, tmp_path):
    lake = windowed_lake(lake)
    history = [trip(f"d{d}_{z}", f"2019-01-{d:02d} 1{z}:00:00", pu=10 + z % 2, do=20, duration=float(d + z))
               for d in range(1, 11) for z in range(3)]  # fmt: skip
    lake.append("silver.trips", silver_frame(lake.spark, history))
    run_gold(lake)
    new_day = [trip(f"new_{z}", f"2019-01-11 1{z}:00:00", pu=10 + z % 2, do=20, duration=3.0) for z in range(3)]
    lake.append("silver.trips", silver_frame(lake.spark, new_day))
    shutil.copytree(lake.root, tmp_path / "reference")
    reference = type(lake)(lake.conf.with_overrides({"lake.root": str(tmp_path / "reference")}), lake.spark)

    # Jan 11 needs Jan 9..11; Jan 12 and 13 (in its window) need Jan 10..13. Nothing else may be read.
    aside = tmp_path / "aside"
    aside.mkdir()
    moved = _move_data_files(lake.path("silver.trips"), {"2019-01-09", "2019-01-10", "2019-01-11"}, aside)
    for table in GOLD:
        moved += _move_data_files(lake.path(table), set(), aside)
    try:
        result = run_gold(lake)
    finally:
        for original, target in moved:
            shutil.move(target, original)
    assert result.details["mode"] == "incremental"
    assert result.details["days"] == ["2019-01-11", "2019-01-12", "2019-01-13"]
    assert result.counts["silver_days_read"] == 5
    run_gold(reference, full_refresh=True)
    assert gold_snapshot(lake) == gold_snapshot(reference)


def test_a_vacuumed_change_feed_rebuilds_everything_instead_of_failing(lake):
    lake = windowed_lake(lake)
    lake.append(
        "silver.trips", silver_frame(lake.spark, [trip("a", "2019-01-01 10:00:00"), trip("b", "2019-01-02 10:00:00")])
    )
    run_gold(lake)
    # The corrected Jan 1 replaces the old file; vacuum then deletes the file the change feed needs for the delete.
    corrected = silver_frame(lake.spark, [trip("a2", "2019-01-01 11:00:00")])
    lake.overwrite("silver.trips", corrected, replace_where="pickup_date = '2019-01-01'")
    spark = lake.spark
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        DeltaTable.forPath(spark, lake.path("silver.trips")).vacuum(0)
    finally:
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "true")
    result = run_gold(lake)
    assert result.details["mode"] == "full"
    assert "unreadable" in result.details["reason"] and "rebuilding every day" in result.details["reason"]
    assert sorted(row.trip_key for row in lake.read("gold.trip_features").collect()) == ["a2", "b"]


def test_the_four_tables_are_written_at_once_and_a_failed_write_keeps_the_watermark(lake, monkeypatch):
    """Each write waits at a barrier until all four have started (it breaks, failing the run, if they ran one after
    another); one write then fails: the run raises it after the others end, and the watermark stays, so the rerun
    (one write at a time) rebuilds everything and equals a full refresh with concurrent writes."""
    rows = [trip(f"t{d}_{z}", f"2019-01-0{d} 0{z}:00:00", distance=1.0 + z, duration=5.0 + d) for d in (1, 2, 3)
            for z in (1, 2)]  # fmt: skip
    lake.append("silver.trips", silver_frame(lake.spark, rows))
    real_write, started = gold_run._write_one, threading.Barrier(len(gold_run.GOLD_TABLES), timeout=90)
    threads = {}

    def together(lake_, table, df, days):
        threads[table] = threading.get_ident()
        started.wait()
        if table == "gold.zone_daily":
            raise OSError("disk full while writing gold.zone_daily")
        return real_write(lake_, table, df, days)

    monkeypatch.setattr(gold_run, "_write_one", together)
    with pytest.raises(OSError, match="disk full"):
        run_gold(lake)
    monkeypatch.undo()
    assert sorted(threads) == sorted(gold_run.GOLD_TABLES) and len(set(threads.values())) == 4
    assert lake.watermark("gold", "silver.trips") is None
    assert not lake.exists("gold.zone_daily") and lake.exists("gold.trip_features")
    one_at_a_time = type(lake)(lake.conf.with_overrides({"gold.write_concurrency": 1}), lake.spark)
    rerun = run_gold(one_at_a_time)
    assert rerun.details["mode"] == "full" and rerun.counts["gold.trip_features"] == len(rows)
    rebuilt = gold_snapshot(lake)
    assert run_gold(lake, full_refresh=True).counts["gold.zone_daily"] > 0
    assert gold_snapshot(lake) == rebuilt
    for wrong in (0, "four", True):
        with pytest.raises(ConfigError, match="gold.write_concurrency"):
            run_gold(type(lake)(lake.conf.with_overrides({"gold.write_concurrency": wrong}), lake.spark))
