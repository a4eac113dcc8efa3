"""`lake query` on Spark: the plan Spark's own parser builds is checked before anything runs (lake.sqlplan), no
catalog entry is made, and table names written any way get the time travel asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake.errors import QueryError
from lake.query import QueryRefusedError, check_read_only, referenced_tables, run_query
from lake.sqlplan import check_spark_plan

VIEWS = ["lake_query__gold__zone_daily", "lake_query__silver__trips__v2"]


@pytest.fixture
def zone_daily(lake, spark) -> str:
    """gold.zone_daily with 2 rows at version 0 and 7 at version 1 (any columns: only counted here)."""
    path = lake.path("gold.zone_daily")
    spark.range(2).write.format("delta").save(path)
    spark.range(5).write.format("delta").mode("append").save(path)
    return path


def _catalog_state(spark) -> tuple[set, set, set]:
    """Databases, tables and temporary views of the session catalog, and the warehouse folder's entries."""
    databases = {database.name for database in spark.catalog.listDatabases()}
    tables = {(database, table.name) for database in databases for table in spark.catalog.listTables(database)}
    warehouse = Path(spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))
    return databases, tables, set(warehouse.iterdir()) if warehouse.is_dir() else set()


# Review hole 1: path-like relations the text guard lets through (it looks for paths after FROM or JOIN only).
PATH_RELATIONS = [
    ("SELECT * FROM range(1), `/etc/passwd`", "reading files by path (`/etc/passwd`)"),
    ("SELECT * FROM range(1), `com.databricks.spark.csv`.`/etc/passwd`", "`com.databricks.spark.csv`.`/etc/passwd`"),
    ("SELECT * FROM gold.zone_daily, `org.apache.spark.sql.parquet`.`/tmp/x`", "`/tmp/x`"),
    ("SELECT * FROM range(1), spark_catalog.default.zone_daily", "spark_catalog.default.zone_daily is not a table"),
]


@pytest.mark.parametrize(("sql", "named"), PATH_RELATIONS)
def test_spark_refuses_relations_that_are_not_lake_tables(lake, sql, named):
    assert check_read_only(sql) == sql  # the text guard lets them through: the plan check refuses them
    with pytest.raises(QueryRefusedError) as refused:
        run_query(lake, sql, "spark")
    assert named in str(refused.value)


def test_a_string_as_a_table_is_a_parse_error_on_spark(lake):
    """The review's example of hole 1: Spark 4 reads no '<path>' as a table; nothing runs."""
    with pytest.raises(QueryError, match="PARSE_SYNTAX_ERROR"):
        run_query(lake, "SELECT * FROM gold.zone_daily, '/some/path'", "spark")


def test_spark_path_makes_no_catalog_entries(lake, spark, zone_daily):
    """Review hole 2: a statement without a layer.name registered every lake table in the session catalog (and
    made the spark-warehouse folder); now only temporary views are made, and dropped after the query."""
    before = _catalog_state(spark)
    assert run_query(lake, "SELECT 1 AS one", "spark").table.to_pylist() == [{"one": 1}]
    assert run_query(lake, "SELECT count(*) AS n FROM `gold`.`zone_daily`", "spark").table.to_pylist() == [{"n": 7}]
    described = run_query(lake, "DESCRIBE gold.zone_daily", "spark").table.to_pylist()
    assert described[0]["col_name"] == "id"
    assert _catalog_state(spark) == before
    assert not [view for view in spark.catalog.listTables() if view.name.startswith("lake_query__")]
    with pytest.raises(QueryRefusedError, match="fast engine"):  # it listed the tables it had registered
        run_query(lake, "SHOW TABLES IN gold", "spark")


def test_quoted_names_get_time_travel_and_identifier_names_are_refused(lake, spark, zone_daily):
    """Review hole 3: `gold`.`zone_daily` skipped the --as-of rewrite (and read the latest version)."""
    assert referenced_tables('SELECT * FROM `gold`.`zone_daily` JOIN "Silver" . "Trips"@v2', lake.specs) == [
        "gold.zone_daily",
        "silver.trips",
    ]
    for engine, sql in [
        ("spark", "SELECT count(*) AS n FROM `gold`.`zone_daily`"),
        ("spark", "SELECT count(*) AS n FROM `gold` . zone_daily z"),
        ("fast", 'SELECT count(*) AS n FROM "gold"."zone_daily"'),
    ]:
        assert run_query(lake, sql, engine, version=0).table.to_pylist() == [{"n": 2}], (engine, sql)
    assert run_query(lake, "SELECT count(*) AS n FROM `gold`.`zone_daily`@v0", "spark").table.to_pylist() == [{"n": 2}]
    with pytest.raises(QueryRefusedError, match=r"IDENTIFIER\('gold.zone_daily'\)"):
        run_query(lake, "SELECT count(*) AS n FROM IDENTIFIER('gold.zone_daily')", "spark", version=0)
    with pytest.raises(QueryRefusedError, match=r"IDENTIFIER\('gold.zone_daily'\)"):
        check_spark_plan(spark, "SELECT * FROM IDENTIFIER('gold.zone_daily')", VIEWS)


def test_spark_refuses_transform_using_which_runs_a_program(lake):
    """Found while closing the holes above: TRANSFORM ... USING passed the text guard and ran `echo` on Spark."""
    sql = "SELECT TRANSFORM(id) USING 'echo pwned' AS (x) FROM range(1)"
    assert check_read_only(sql) == sql
    with pytest.raises(QueryRefusedError, match="TRANSFORM ... USING"):
        run_query(lake, sql, "spark")


# What the plan check refuses past the text guard (called directly, as if the text guard missed it) and the word
# the refusal names.
PLAN_REFUSALS = [
    ("SET spark.sql.runSQLOnFiles = true", "SetCommand"),
    ("DECLARE VARIABLE v INT", "CreateVariable"),
    ("CREATE TABLE x AS SELECT 1", "is not allowed"),
    ("INSERT INTO lake_query__gold__zone_daily SELECT 1", "InsertIntoStatement"),
    ("EXECUTE IMMEDIATE 'SELECT 1'", "UnresolvedExecuteImmediate"),
    ("BEGIN SELECT 1; END", "CompoundBody"),
    ("CACHE TABLE lake_query__gold__zone_daily", "is not allowed"),
    ("DESCRIBE HISTORY lake_query__gold__zone_daily", "DescribeDeltaHistory"),
    ("DESCRIBE default.x", "DESCRIBE default.x"),
    ("EXPLAIN SELECT * FROM delta.`/tmp/x`", "delta.`/tmp/x`"),
    ("SELECT /*+ REPARTITION(2) */ * FROM lake_query__gold__zone_daily", "hints"),
    ("SELECT * FROM lake_query__gold__zone_daily VERSION AS OF 0", "@vN"),
    ("SELECT * FROM STREAM lake_query__gold__zone_daily", "STREAM"),
    ("SELECT * FROM lake_query__gold__zone_daily WITH ('path' = '/tmp/x')", "options"),
    ("SELECT * FROM table_changes('gold.zone_daily', 0)", "table_changes"),
    ("SELECT * FROM sql_keywords()", "sql_keywords"),
    ("SELECT reflect('java.lang.System', 'getenv', 'HOME')", "'reflect'"),
    ("SELECT system.builtin.java_method('java.lang.System', 'getenv')", "system.builtin.java_method"),
    ("SELECT input_file_name() FROM lake_query__gold__zone_daily", "'input_file_name'"),
    ("SELECT IDENTIFIER('java_method')('java.lang.System', 'getenv')", "IDENTIFIER"),
    ("SELECT transform(array(1), x -> reflect('a', 'b'))", "'reflect'"),
    ("SELECT * FROM lake_query__gold__zone_daily LATERAL VIEW read_files('/etc') f", "'read_files'"),
    ("SELECT (SELECT count(*) FROM `/etc/passwd`) AS n", "`/etc/passwd`"),
    ("SELECT 1 WHERE EXISTS (SELECT 1 FROM csv.`/etc/passwd`)", "csv.`/etc/passwd`"),
    ("WITH a AS (SELECT * FROM text.`/etc`) SELECT * FROM a", "text.`/etc`"),
    ("SELECT rank() OVER w FROM range(2) WINDOW w AS (ORDER BY reflect('a', 'b'))", "'reflect'"),
    ("SELECT * FROM (WITH a AS (SELECT 1) SELECT * FROM a) JOIN a", "a is not a table of the lake"),
    ("WITH a AS (SELECT * FROM a) SELECT * FROM a", "a is not a table of the lake"),
    ("SELECT * FROM lake_query__gold__other", "lake_query__gold__other is not a table"),
]


@pytest.mark.parametrize(("sql", "named"), PLAN_REFUSALS)
def test_plan_check_refuses_everything_but_a_query_over_the_views(spark, sql, named):
    with pytest.raises(QueryRefusedError) as refused:
        check_spark_plan(spark, sql, VIEWS)
    assert named in str(refused.value)


def test_plan_check_allows_queries_over_the_views_and_their_with_names(spark):
    for sql in [
        "SELECT pickup_borough, sum(trips) AS trips FROM lake_query__gold__zone_daily GROUP BY 1 ORDER BY 2 DESC",
        "WITH busy AS (SELECT * FROM LAKE_QUERY__GOLD__ZONE_DAILY WHERE trips > 3), b2 AS (SELECT * FROM busy) "
        "SELECT z.*, (SELECT max(n) FROM lake_query__silver__trips__v2) FROM b2 z JOIN busy USING (day)",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
        "SELECT * FROM range(3) r JOIN lake_query__gold__zone_daily z ON true LATERAL VIEW explode(array(1)) e AS x",
        "SELECT a, rank() OVER w FROM lake_query__gold__zone_daily WINDOW w AS (PARTITION BY b ORDER BY c)",
        "FROM lake_query__gold__zone_daily |> WHERE trips > 1 |> AGGREGATE count(*) GROUP BY day",
        "VALUES (1, 'a'), (2, 'b')",
        "SELECT transform(array(1), x -> x + 1) AS t, count(*) FILTER (WHERE true) AS n",
        "EXPLAIN SELECT * FROM lake_query__gold__zone_daily",
        "DESCRIBE TABLE EXTENDED lake_query__gold__zone_daily",
        "DESCRIBE QUERY SELECT * FROM lake_query__silver__trips__v2",
    ]:
        check_spark_plan(spark, sql, VIEWS)
