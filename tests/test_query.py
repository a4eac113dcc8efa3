"""`lake query`: the read-only guard, and the fast path (DuckDB over deltalake) equal to Spark on real samples."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from cli.main import main as lake_cli
from lake import Lake, load_conf
from lake.query import QueryRefusedError, check_read_only, comparable, referenced_tables, rewrite_names, run_query
from pipelines.bronze import run_ingest
from pipelines.gold import run_gold
from pipelines.silver import run_silver

# Queries users typically ask, touching every column type the gold tables have (timestamps, dates, booleans).
TYPICAL_QUERIES = [
    "SELECT pickup_borough, sum(trips) AS trips, round(sum(revenue), 2) AS revenue, avg(avg_speed_mph) AS speed "
    "FROM gold.zone_daily GROUP BY pickup_borough",
    "SELECT pickup_date, pickup_hour, trips FROM gold.hourly_demand WHERE pickup_borough = 'Manhattan'",
    "SELECT * FROM gold.trip_features WHERE pair_trips > 0 AND is_weekend",
    "SELECT hour(pickup_ts) AS h, day_of_week, count(*) AS n, avg(duration_min) AS minutes "
    "FROM gold.trip_features GROUP BY hour(pickup_ts), day_of_week",
    "WITH busy AS (SELECT * FROM gold.pair_stats WHERE pair_trips >= 3) "
    "SELECT f.pickup_date, count(*) AS n FROM gold.trip_features f JOIN busy b ON f.pickup_date = b.stats_date "
    "AND f.pickup_zone_id = b.pickup_zone_id AND f.dropoff_zone_id = b.dropoff_zone_id GROUP BY f.pickup_date",
]


@pytest.mark.parametrize(
    ("sql", "keyword"),
    [
        ("INSERT INTO gold.zone_daily SELECT * FROM gold.zone_daily", "INSERT"),
        ("delete from gold.zone_daily", "DELETE"),
        ("DROP TABLE gold.zone_daily", "DROP"),
        ("CREATE TABLE x AS SELECT 1", "CREATE"),
        ("ALTER TABLE gold.zone_daily ADD COLUMNS (x int)", "ALTER"),
        ("MERGE INTO gold.zone_daily t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "MERGE"),
        ("UPDATE gold.zone_daily SET trips = 0", "UPDATE"),
        ("WITH t AS (SELECT 1) INSERT INTO gold.zone_daily SELECT * FROM t", "INSERT"),
        ("EXPLAIN DELETE FROM gold.zone_daily", "DELETE"),
        ("SELECT 1 -- fine\n; DROP TABLE gold.zone_daily", "one statement"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("COPY gold.zone_daily TO '/tmp/x'", "COPY"),
        ("   ", "no SQL"),
    ],
)
def test_statements_that_write_or_drop_are_refused_by_name(sql, keyword):
    with pytest.raises(QueryRefusedError, match=keyword):
        check_read_only(sql)


def test_keywords_inside_literals_comments_and_quoted_names_are_fine():
    sql = "SELECT 'DROP TABLE x' AS a, \"update\" /* DELETE */ FROM gold.zone_daily -- INSERT\n;"
    assert check_read_only(sql) == sql.strip()[:-1].rstrip()
    assert check_read_only("  with t as (select 1) select * from t ;;") == "with t as (select 1) select * from t"


def test_table_references_are_found_and_rewritten_outside_literals(lake):
    sql = "SELECT g.trips, 'gold.zone_daily' FROM Gold.Zone_Daily g JOIN gold.nope n JOIN silver.trips s"
    assert referenced_tables(sql, lake.specs) == ["gold.zone_daily", "silver.trips"]
    assert rewrite_names(sql, {"gold.zone_daily": "v1"}) == (
        "SELECT g.trips, 'gold.zone_daily' FROM v1 g JOIN gold.nope n JOIN silver.trips s"
    )


@pytest.fixture(scope="module")
def real_lake(spark, samples, tmp_path_factory) -> tuple[Lake, dict[str, int]]:
    """January's yellow sample through bronze, silver and gold, then February added incrementally.

    Returns the lake and the table versions gold wrote for January.
    """
    lake = Lake(load_conf("test", overrides={"lake.root": str(tmp_path_factory.mktemp("query") / "lake")}), spark)
    versions = []
    for month in ("01", "02"):
        run_ingest(lake, [str(samples / "yellow" / f"yellow_tripdata_sample_2019-{month}.csv")])
        run_silver(lake)
        versions.append(run_gold(lake).versions)
    return lake, versions[0]


@pytest.mark.integration
@pytest.mark.parametrize("sql", TYPICAL_QUERIES)
def test_fast_path_equals_spark_on_real_samples(real_lake, sql):
    lake, _ = real_lake
    fast = run_query(lake, sql, engine="fast")
    spark = run_query(lake, sql, engine="spark")
    assert (fast.engine, spark.engine) == ("fast", "spark")
    assert fast.table.num_rows > 0
    assert comparable(fast.table) == comparable(spark.table)


@pytest.mark.integration
def test_time_travel_by_version_and_timestamp_agree_across_engines(real_lake):
    lake, january = real_lake
    sql = "SELECT month(pickup_date) AS m, sum(trips) AS trips FROM gold.zone_daily GROUP BY month(pickup_date)"
    version = january["gold.zone_daily"]
    history = {row.version: row.timestamp for row in lake.history("gold.zone_daily").collect()}
    between = history[version] + (history[version + 1] - history[version]) / 2
    results = [
        run_query(lake, sql, engine, **as_of)
        for engine in ("fast", "spark")
        for as_of in ({"version": version}, {"timestamp": between.isoformat()})
    ]
    months_then = {row[0] for row in comparable(results[0].table)[1]}
    assert 2 not in months_then and months_then  # February arrived later
    assert all(comparable(result.table) == comparable(results[0].table) for result in results)
    now = run_query(lake, sql, "fast")
    assert {row[0] for row in comparable(now.table)[1]} > months_then


@pytest.mark.integration
def test_cli_query_writes_csv_json_parquet_and_refuses_writes(real_lake, tmp_path, monkeypatch, capsys):
    lake, _ = real_lake
    monkeypatch.setenv("LAKE_ROOT", lake.root)
    sql = "SELECT pickup_borough, sum(trips) AS trips FROM gold.hourly_demand GROUP BY pickup_borough"
    expected = comparable(run_query(lake, sql, engine="spark").table)
    for fmt in ("csv", "json", "parquet"):
        out = tmp_path / f"result.{fmt}"
        assert lake_cli(["--env", "test", "query", sql, "--engine", "fast", "--format", fmt, "--output", str(out)]) == 0
    assert comparable(pq.read_table(tmp_path / "result.parquet")) == expected
    records = json.loads((tmp_path / "result.json").read_text())
    assert sorted(((r["pickup_borough"], r["trips"]) for r in records), key=repr) == sorted(expected[1], key=repr)
    assert len((tmp_path / "result.csv").read_text().strip().splitlines()) == len(expected[1]) + 1
    assert lake_cli(["--env", "test", "query", "SELECT count(*) AS n FROM gold.trip_features"]) == 0
    printed = capsys.readouterr()
    assert "fast engine" in printed.err and printed.out.splitlines()[0].strip() == "n"
    assert lake_cli(["--env", "test", "query", "DROP TABLE gold.zone_daily"]) == 2
    assert "read-only: statements starting with 'DROP'" in capsys.readouterr().err
    assert lake.exists("gold.zone_daily")


@pytest.mark.integration
def test_unknown_version_is_a_clear_error(real_lake):
    lake, _ = real_lake
    with pytest.raises(ValueError, match="no version 999"):
        run_query(lake, "SELECT * FROM gold.zone_daily", "fast", version=999)
