"""Expectation rules: each type flags failing rows, passes good ones, treats nulls like GE; bad files fail early."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lake import Lake, load_conf
from pipelines import quality
from pipelines.common import StageError, StageResult
from pipelines.rules import RuleError, load_rules, parse_rules, violations
from pipelines.silver.build import BatchStats
from pipelines.silver.run import validate
from pipelines.silver.transform import batch_columns
from pipelines.silver.verdicts import check_agreement

COLUMNS = ["x", "y", "a", "b", "s"]
# One row per case: (x, y, a, b, s); each rule below names which row ids it must flag.
ROWS = [
    (1, 5.0, 3, 2, "a"),  # 0: passes everything
    (None, -1.0, 1, 2, "b"),  # 1: fails not_null x, between y, pair rules, in_set s
    (3, None, None, 1, None),  # 2: nulls: only not_null/null rules look at them
    (4, 10.0, 2, 2, "a"),  # 3: boundary: y == max passes, a == b fails strict greater, passes equal
]
CASES = {
    "x_not_null": ({"type": "not_null", "column": "x"}, {1}),
    "s_null": ({"type": "null", "column": "s"}, {0, 1, 3}),
    "y_between": ({"type": "between", "column": "y", "params": {"min_value": 0, "max_value": 10}}, {1}),
    "y_strict": ({"type": "between", "column": "y", "params": {"max_value": 10, "strict_max": True}}, {3}),
    "s_in_set": ({"type": "in_set", "column": "s", "params": {"value_set": ["a"]}}, {1}),
    "a_gt_b": ({"type": "column_pair_greater", "columns": ["a", "b"]}, {1, 3}),
    "a_ge_b": ({"type": "column_pair_greater", "columns": ["a", "b"], "params": {"or_equal": True}}, {1}),
    "a_eq_b": ({"type": "column_pair_equal", "columns": ["a", "b"]}, {0, 1}),
}


@pytest.fixture(scope="module")
def frame(spark):
    rows = [(i, *row) for i, row in enumerate(ROWS)]
    return spark.createDataFrame(rows, "id int, x int, y double, a int, b int, s string").cache()


@pytest.fixture(scope="module")
def rules():
    entries = [{"name": name, "action": "drop", **spec} for name, (spec, _) in CASES.items()]
    return parse_rules({"rules": entries}, "test", COLUMNS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_rule_flags_exactly_the_failing_rows(frame, rules, name):
    rule = next(r for r in rules if r.name == name)
    flagged = {row.id for row in frame.where(rule.violation()).collect()}
    assert flagged == CASES[name][1]


def test_violations_lists_every_broken_rule_in_rule_order_and_is_empty_for_a_clean_row(frame, rules):
    listed = {row.id: row.v for row in frame.select("id", violations(rules).alias("v")).collect()}
    expected = {i: [name for name, (_, ids) in CASES.items() if i in ids] for i in range(len(ROWS))}
    assert listed == expected


@pytest.mark.parametrize("engine", ["spark", "pandas"])
def test_great_expectations_counts_the_same_rows_as_the_spark_flags(frame, rules, engine):
    verdict = quality.validate(frame, rules, f"rules_test_{engine}", engine=engine)
    assert verdict.engine == engine
    assert verdict.unexpected == {name: len(ids) for name, (_, ids) in CASES.items()}
    assert verdict.rule_success == {name: not ids for name, (_, ids) in CASES.items()}
    assert verdict.success is False


def test_great_expectations_queries_unexpected_values_only_when_examples_are_asked_for(frame, rules, monkeypatch):
    limits = []
    limit = type(frame).limit  # the classic DataFrame's own method
    monkeypatch.setattr(type(frame), "limit", lambda df, n: limits.append(n) or limit(df, n))
    verdict = quality.validate(frame, rules, "rules_no_examples")  # no examples (conf's default)
    assert limits == [] and verdict.unexpected == {name: len(ids) for name, (_, ids) in CASES.items()}
    assert quality._no_query_for_no_examples() >= len({r.expectation().expectation_type for r in rules})
    examples = quality.validate(frame, rules, "rules_examples", unexpected_examples=2)
    assert limits and set(limits) == {2} and examples.unexpected == verdict.unexpected


def test_great_expectations_leaves_no_cached_copy_of_the_batch(spark, rules):
    # GE caches its batch by default and never releases it: a second copy of every silver batch (OOM at 5M rows).
    batch = spark.createDataFrame(
        [(i, *row) for i, row in enumerate(ROWS)], "id int, x int, y double, a int, b int, s string"
    )
    verdict = quality.validate(batch, rules, "rules_uncached")
    assert verdict.unexpected["x_not_null"] == 1
    assert not batch.is_cached


def test_a_metric_great_expectations_could_not_compute_is_an_error_not_a_count():
    nested = {"('column_values.nonnull.unexpected_count', 'abc')": {
        "raised_exception": True, "exception_message": "java.lang.OutOfMemoryError: Java heap space"}}  # fmt: skip
    assert quality.raised_exceptions(nested) == ["java.lang.OutOfMemoryError: Java heap space"]
    assert quality.raised_exceptions({"raised_exception": True, "exception_message": "boom"}) == ["boom"]
    assert quality.raised_exceptions({"raised_exception": False, "exception_message": None}) == []
    assert quality.raised_exceptions(None) == []


def test_no_count_from_great_expectations_stops_silver_with_the_rules_named():
    verdict = quality.SuiteResult(success=False, rule_success={}, unexpected={"a": 0, "b": None}, seconds=0.0)
    with pytest.raises(StageError, match=r"no unexpected count for rule\(s\) \['b'\]"):
        check_agreement({"a": {"failed": 0}, "b": {"failed": 3}}, verdict)


def test_value_set_from_is_bound_to_reference_values(frame):
    entry = {"name": "known", "type": "in_set", "column": "x", "params": {"value_set_from": "ids"}, "action": "drop"}
    (rule,) = parse_rules({"rules": [entry]}, "test", COLUMNS, ["ids"])
    bound = rule.bound({"ids": [3, 1]})
    assert bound.params == {"value_set": [1, 3]}
    assert {row.id for row in frame.where(bound.violation()).collect()} == {3}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "regex", "column": "x"}, "rule 'r': unknown rule type 'regex'"),
        ({"type": "not_null", "column": "nope"}, r"rule 'r': unknown column\(s\) \['nope'\]"),
        ({"type": "not_null", "column": "x", "action": "skip"}, "rule 'r': action must be one of"),
        ({"type": "between", "column": "x"}, "rule 'r': type between needs one of"),
        ({"type": "between", "column": "x", "params": {"low": 1}}, r"rule 'r': unknown param\(s\) \['low'\]"),
        ({"type": "column_pair_equal", "column": "x"}, r"rule 'r': type column_pair_equal takes `columns: \[A, B\]`"),
        ({"type": "in_set", "column": "x", "params": {"value_set_from": "z"}}, "rule 'r': unknown value_set_from 'z'"),
    ],
)
def test_a_bad_rule_fails_with_its_name(entry, message):
    with pytest.raises(RuleError, match=message):
        parse_rules({"rules": [{"name": "r", "action": "drop", **entry}]}, "rules.yaml", COLUMNS)


def test_duplicate_rule_names_are_refused():
    entry = {"name": "r", "type": "not_null", "column": "x", "action": "warn"}
    with pytest.raises(RuleError, match=r"duplicate rule name\(s\) \['r'\]"):
        parse_rules({"rules": [entry, entry]}, "rules.yaml", COLUMNS)


def test_the_shipped_silver_rules_load_and_cover_every_action(spark):
    conf = load_conf("test")
    rules = load_rules(conf.conf_file("silver.rules"), batch_columns(spark), ["zones"])
    assert {r.action for r in rules} == {"warn", "drop", "fail"}
    assert {r.type for r in rules} >= {"not_null", "null", "between", "in_set", "column_pair_greater"}


def test_a_missing_rule_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="expectation rule file"):
        load_rules(tmp_path / "none.yaml", COLUMNS)


def test_rule_never_yields_null_flags(frame, rules):
    nulls = frame.select(*[F.isnull(r.violation()).alias(r.name) for r in rules]).collect()
    assert not any(any(row) for row in nulls)


def test_in_set_is_one_sql_predicate_for_great_expectations_and_counts_like_the_flags(spark, monkeypatch):
    """GE's own in_set condition calls `isin`, one JVM call per value (265 zone ids per zone rule): ours writes one
    SQL IN predicate for numbers and plain text and counts what the Spark flags count; text that other parser
    settings would read differently (quotes, backslashes, `${`) keeps `isin`, with the same counts."""
    rows = [(0, 1, 2.5, "Y"), (1, 2, 3.0, "N"), (2, 3, None, "x"), (3, None, 7.5, None)]
    batch = spark.createDataFrame(rows, "id int, n int, d double, s string")
    entries = [
        {"name": "n_in", "type": "in_set", "column": "n", "params": {"value_set": [1, 3]}},
        {"name": "d_in", "type": "in_set", "column": "d", "params": {"value_set": [2.5, 3.0]}},
        {"name": "s_in", "type": "in_set", "column": "s", "params": {"value_set": ["Y", "N"]}},
    ]
    rules = parse_rules({"rules": [{**e, "action": "drop"} for e in entries]}, "test", ["n", "d", "s"])
    column_type = type(F.col("n"))
    isin, calls = column_type.isin, []
    monkeypatch.setattr(column_type, "isin", lambda column, *values: calls.append(values) or isin(column, *values))
    verdict = quality.validate(batch, rules, "in_set_sql")
    monkeypatch.undo()
    assert calls == []
    flagged = {rule.name: {row.id for row in batch.where(rule.violation()).collect()} for rule in rules}
    assert flagged == {"n_in": {1}, "d_in": {3}, "s_in": {2}}
    assert verdict.unexpected == {name: len(ids) for name, ids in flagged.items()}
    assert quality.sql_literals([1, -2, 0.5, 1e20, "ok"]) == "1, -2, 0.5D, 1e+20D, 'ok'"
    unusual = ([1, None], [True], [float("nan")], ["o'k"], ["a\\b"], ["${HOME}"])
    assert [quality.sql_literals(values) for values in unusual] == [None] * len(unusual)
    quoted = [{"name": "q_in", "type": "in_set", "column": "s", "params": {"value_set": ["it's", "a\\b", "Y"]}}]
    quoted_rules = parse_rules({"rules": [{**e, "action": "drop"} for e in quoted]}, "test", ["s"])
    monkeypatch.setattr(column_type, "isin", lambda column, *values: calls.append(values) or isin(column, *values))
    fallback = quality.validate(batch, quoted_rules, "in_set_isin")
    monkeypatch.undo()
    assert calls and fallback.unexpected == {"q_in": 2}  # "N" and "x"


FALLBACKS = {
    # GE's pandas engine takes NaN for a null and skips it; Spark's flag and GE's Spark engine count it out of bounds
    "nan": ("y double", [(1, float("nan")), (2, 5.0), (3, None)], {"min_value": 0, "max_value": 10}, 1),
    # a date bound on a timestamp: Spark compares them, GE's pandas engine raises
    "date_bound": (
        "y timestamp",
        [(1, datetime(2008, 12, 31, 23)), (2, datetime(2019, 1, 1)), (3, None)],
        {"min_value": "2009-01-01"},
        1,
    ),
}


@pytest.mark.parametrize("case", sorted(FALLBACKS))
def test_a_small_batch_pandas_reads_otherwise_is_validated_by_spark(spark, tmp_path, case):
    """Silver then takes GE's Spark engine's verdict, and the run goes on with counts that agree."""
    column, rows, params, failing = FALLBACKS[case]
    frame = spark.createDataFrame(rows, f"id int, {column}").cache()
    entry = {"name": "y_bounds", "type": "between", "column": "y", "action": "warn", "params": params}
    rules = parse_rules({"rules": [entry]}, "test", ["y"])
    flagged = frame.where(rules[0].violation()).count()
    assert flagged == failing
    stats = BatchStats(
        rules={"y_bounds": {"rows": 3, "evaluated": 2, "failed": flagged}},
        rows=3,
        kept=3,
        superseded=0,
        rejected=0,
        files=[],
        flagged=frame,
    )
    lake = Lake(load_conf("test", overrides={"lake.root": str(tmp_path)}), spark)
    result = StageResult(stage="silver", run_id="r", status="running")
    verdict = validate(lake, stats, rules, result, "r", datetime.now(timezone.utc))
    assert (verdict.engine, verdict.unexpected) == ("spark", {"y_bounds": failing})
    assert result.details["ge_engine"] == "spark"
    if case == "nan":  # the same rule on values pandas reads alike: the pandas engine, unless configured off
        small = StageResult(stage="silver", run_id="r", status="running")
        stats.rules = {"y_bounds": {"rows": 1, "evaluated": 1, "failed": 0}}
        stats.flagged = frame.where(F.col("id") == 2)
        assert validate(lake, stats, rules, small, "r", datetime.now(timezone.utc)).engine == "pandas"
        off = Lake(load_conf("test", overrides={"lake.root": str(tmp_path), "silver.ge_pandas_max_rows": 0}), spark)
        assert validate(off, stats, rules, small, "r", datetime.now(timezone.utc)).engine == "spark"
    frame.unpersist()


@pytest.mark.parametrize("engine", ["spark", "pandas"])
def test_a_timestamp_bound_is_a_time_of_the_session_zone_for_both_engines(spark, engine):
    """A rule's bound is a time of the session's zone for Spark's flags; both GE engines must compare the same times
    (the suite's process runs in another zone: UTC)."""
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        frame = spark.sql(
            "SELECT * FROM VALUES (1, TIMESTAMP'2019-01-01 00:30:00'), (2, TIMESTAMP'2018-12-31 23:30:00'),"
            " (3, TIMESTAMP'2019-01-01 04:30:00') AS t(id, y)"
        ).cache()
        entry = {"name": "y_window", "type": "between", "column": "y", "action": "warn"}
        rules = parse_rules({"rules": [{**entry, "params": {"min_value": "2019-01-01 00:00:00"}}]}, "test", ["y"])
        assert {row.id for row in frame.where(rules[0].violation()).collect()} == {2}  # 23:30 New York time
        assert quality.validate(frame, rules, f"zone_{engine}", engine=engine).unexpected == {"y_window": 1}
        frame.unpersist()
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
