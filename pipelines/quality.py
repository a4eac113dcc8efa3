"""Data quality: runs a rule set as a Great Expectations suite, builds Data Docs, records quality.* tables."""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame

from lake import Lake
from lake.catalog import schema_of
from lake.config import is_uri
from pipelines.common import StageError, StageResult
from pipelines.rules import Rule, gx

DATA_DOCS_DIR = "_quality/data_docs"
DATA_DOCS_SITE = "lake_site"
# GE's partial_unexpected_list is one extra Spark query per expectation; 0 skips it (counts are unaffected).
DEFAULT_UNEXPECTED_EXAMPLES = 0
SPARK_ENGINE = "SparkDFExecutionEngine"

QUALITY_RUNS = schema_of("quality.runs")
STAGE_RUNS = schema_of("quality.stage_runs")

for _name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
    logging.getLogger(_name).setLevel(logging.ERROR)


@dataclass
class SuiteResult:
    """Great Expectations' verdict on one batch: overall and per rule, plus where the Data Docs went."""

    success: bool
    rule_success: dict[str, bool]
    unexpected: dict[str, int | None]
    seconds: float
    data_docs: str | None = None
    statistics: dict[str, Any] = field(default_factory=dict)
    engine: str = "spark"


def data_docs_dir(lake: Lake) -> Path | None:
    """<lake root>/_quality/data_docs for a local lake root; None for object stores (no local HTML site)."""
    root = lake.root
    if is_uri(root) and not root.startswith("file://"):
        return None
    return Path(root.removeprefix("file://")) / DATA_DOCS_DIR


def _context(docs: Path | None) -> Any:
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(
        globally=False, metric_calculations=False
    )
    if docs is not None:
        site = {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        context.add_data_docs_site(site_name=DATA_DOCS_SITE, site_config=site)
    return context


def _no_query_for_no_examples() -> int:
    """GE 1.x asks Spark for every expectation's unexpected values even when no example is wanted: a `limit(0)`
    query per rule, ~1.4 s of a ~5.4 s validation of a small batch (BENCHMARKS.md, "No query for no examples"). Its
    Spark providers of `*.unexpected_values` answer [] without a query when `partial_unexpected_count` is 0, which is
    what the query returns; COMPLETE and any other count still query. Returns how many providers answer so."""
    from great_expectations.expectations.registry import _registered_metrics

    wrapped = 0
    for name, definition in _registered_metrics.items():
        metric_class, provider = definition.get("providers", {}).get(SPARK_ENGINE, (None, None))
        if not name.endswith(".unexpected_values") or provider is None:
            continue
        if not getattr(provider, "_no_examples_no_query", False):

            @functools.wraps(provider)
            def answer(*args, _provider=provider, **kwargs):
                wanted = (kwargs.get("metric_value_kwargs") or {}).get("result_format") or {}
                if isinstance(wanted, dict) and wanted.get("result_format") in ("BASIC", "SUMMARY"):
                    if wanted.get("partial_unexpected_count") == 0:
                        return []
                return _provider(*args, **kwargs)

            answer._no_examples_no_query = True
            definition["providers"][SPARK_ENGINE] = (metric_class, answer)
        wrapped += 1
    return wrapped


def sql_literals(values: list[Any]) -> str | None:
    """The values as a SQL literal list (`1, 2.5D, 'N'`), or None when one is not a finite number or plain text:
    text with a quote, a backslash or `${` reads differently under other parser settings (escaped literals,
    variable substitution), so it keeps `isin`."""
    texts = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return None
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                return None
            texts.append(f"{value!r}D")
        elif isinstance(value, int):
            texts.append(str(value))
        elif any(mark in value for mark in ("'", "\\", "${")):
            return None
        else:
            texts.append(f"'{value}'")
    return ", ".join(texts)


@functools.cache
def _in_set_in_one_call() -> type:
    """GE's Spark condition of `in_set` is `column.isin(value_set)`, and PySpark makes one JVM call per value: the
    265 zone ids of each zone rule (~0.18 s to build and analyse, against ~0.01 s as SQL text; BENCHMARKS.md). This
    provider, registered over GE's own, writes the same `IN` predicate as SQL text (one call); a value set
    sql_literals cannot write (None, dates, unusual text) keeps `isin`."""
    from great_expectations.execution_engine import SparkDFExecutionEngine
    from great_expectations.expectations.metrics import column_condition_partial
    from great_expectations.expectations.metrics.column_map_metrics.column_values_in_set import ColumnValuesInSet
    from pyspark.sql import functions as F

    class InSetInOneCall(ColumnValuesInSet):
        @column_condition_partial(engine=SparkDFExecutionEngine)
        def _spark(cls, column, value_set, **kwargs):  # noqa: N805 (GE calls it with the class)
            if value_set is None:
                return F.lit(True)  # vacuously true, as GE's own
            literals, name = sql_literals(list(value_set)), str(kwargs["_accessor_domain_kwargs"]["column"])
            if not literals or "." in name or "`" in name:  # F.col reads a dot as a nested field
                return column.isin(value_set)
            return F.expr(f"`{name}` IN ({literals})")

    return InSetInOneCall


def _session_zone(batch: DataFrame) -> str:
    return str(batch.sparkSession.conf.get("spark.sql.session.timeZone"))


def _local_times(table: pa.Table, zone: str) -> pa.Table:
    """Timestamps as naive times of the session's zone, which is how Spark compares a timestamp with a rule's bound
    (`"2009-01-01 00:00:00"`) and how its toPandas hands them to pandas."""
    for index, column in enumerate(table.schema):
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            local = pc.local_timestamp(table.column(index).cast(pa.timestamp(column.type.unit, zone)))
            table = table.set_column(index, column.name, local)
    return table


def _bounds_in_zone(expectation: Any, batch: DataFrame) -> Any:
    """GE's Spark engine compares a column with F.lit(bound), and GE has parsed a bound given as text into a naive
    datetime, which PySpark places in the Python process's zone. Spark's own flags read the text in the session's
    zone, so the bound is given that zone (an ambiguous or skipped local time resolves as Spark resolves it)."""
    for name in ("min_value", "max_value"):
        value = getattr(expectation, name, None)
        if isinstance(value, datetime) and value.tzinfo is None:
            setattr(expectation, name, value.replace(tzinfo=ZoneInfo(_session_zone(batch))))
    return expectation


def raised_exceptions(info: dict | None) -> list[str]:
    """The exception messages of a GE result: its own, or its metrics' ({metric id: exception info}, GE 1.x)."""
    infos = [info] if info and "raised_exception" in info else list((info or {}).values())
    return [str(i.get("exception_message") or i) for i in infos if isinstance(i, dict) and i.get("raised_exception")]


def validate(
    batch: DataFrame,
    rules: list[Rule],
    suite_name: str,
    docs: Path | None = None,
    unexpected_examples: int = DEFAULT_UNEXPECTED_EXAMPLES,
    engine: str = "spark",
) -> SuiteResult:
    """Runs the rules as a GE 1.x suite on a Spark DataFrame (materialize it first: GE reads it several times).

    engine "spark": GE's Spark engine, its own persist off (it cached every batch again and never released it: at 5M
    rows the driver's OutOfMemoryError). engine "pandas": the rules' columns are collected (Arrow) and GE's pandas
    engine validates them, for a small batch (the caller bounds its rows) ~0.4 s against ~1.5 s (BENCHMARKS.md).
    """
    started = time.perf_counter()
    context = _context(docs)
    if engine == "pandas":
        columns = list(dict.fromkeys(column for rule in rules for column in rule.columns))
        dataframe: Any = _local_times(batch.select(*columns).toArrow(), _session_zone(batch)).to_pandas()
        source = context.data_sources.add_pandas(name="lake")
    elif engine == "spark":
        if not unexpected_examples:
            _no_query_for_no_examples()
        _in_set_in_one_call()
        dataframe, source = batch, context.data_sources.add_spark(name="lake", persist=False)
    else:
        raise ValueError(f"GE engine must be spark or pandas, not {engine!r}")
    asset = source.add_dataframe_asset(name=suite_name)
    batch_definition = asset.add_batch_definition_whole_dataframe(name="batch")
    # Expectations given to the suite before it is saved: added to a saved suite, each one re-serialized the whole
    # suite into the store (validate 2.28 -> 2.19 s on a small batch, bench/results/suite.md). The constructor logs
    # and skips an invalid expectation, hence the check.
    expectations = [rule.expectation() for rule in rules]
    if engine == "spark":  # the pandas engine gets the session zone's naive times (_local_times) instead
        expectations = [_bounds_in_zone(expectation, batch) for expectation in expectations]
    suite = gx.ExpectationSuite(name=suite_name, expectations=expectations)
    if len(suite.expectations) != len(rules):
        kept = {e.meta.get("rule") for e in suite.expectations}
        invalid = [r.name for r in rules if r.name not in kept]
        raise StageError(f"Great Expectations refused the expectation of rule(s) {invalid}; nothing validated")
    suite = context.suites.add(suite)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite_name}_validation", data=batch_definition, suite=suite)
    )
    result_format = {"result_format": "BASIC", "partial_unexpected_count": unexpected_examples}
    outcome = definition.run(batch_parameters={"dataframe": dataframe}, result_format=result_format)
    rule_success, unexpected = {}, {}
    for item in outcome.results:
        rule = item.expectation_config.meta["rule"]
        if raised := raised_exceptions(item.exception_info):
            raise StageError(f"Great Expectations could not evaluate rule '{rule}': {raised[0][:1000]}")
        rule_success[rule] = bool(item.success)
        count = (item.result or {}).get("unexpected_count")
        unexpected[rule] = None if count is None else int(count)
    index = None
    if docs is not None:
        index = context.build_data_docs(site_names=[DATA_DOCS_SITE]).get(DATA_DOCS_SITE)
    return SuiteResult(
        success=bool(outcome.success),
        rule_success=rule_success,
        unexpected=unexpected,
        seconds=time.perf_counter() - started,
        data_docs=index,
        statistics=dict(outcome.statistics),
        engine=engine,
    )


def record_rules(
    lake: Lake,
    run_id: str,
    stage: str,
    suite: str,
    rules: list[Rule],
    stats: dict[str, dict[str, int]],
    verdict: SuiteResult,
    run_status: str,
) -> int:
    """Appends one quality.runs row per rule; returns the table's new version."""
    now = datetime.now(timezone.utc)
    rows = [
        (
            run_id,
            stage,
            suite,
            rule.name,
            rule.type,
            list(rule.columns),
            rule.action,
            stats[rule.name]["rows"],
            stats[rule.name]["evaluated"],
            stats[rule.name]["evaluated"] - stats[rule.name]["failed"],
            stats[rule.name]["failed"],
            verdict.rule_success.get(rule.name),
            verdict.unexpected.get(rule.name),
            run_status,
            now,
        )
        for rule in rules
    ]
    return lake.append_records("quality.runs", [dict(zip(QUALITY_RUNS.fieldNames(), row)) for row in rows])


def record_stage_run(
    lake: Lake,
    result: StageResult,
    started_at: datetime,
    invariant: str = "",
    invariant_holds: bool | None = None,
    message: str = "",
) -> int:
    """Appends the run's accounting (counts, versions, invariant) to quality.stage_runs."""
    versions = {name: int(v) for name, v in result.versions.items() if v is not None}
    row = (
        result.run_id,
        result.stage,
        result.status,
        {k: int(v) for k, v in result.counts.items()},
        versions,
        invariant,
        invariant_holds,
        message,
        started_at,
        datetime.now(timezone.utc),
    )
    return lake.append_records("quality.stage_runs", [dict(zip(STAGE_RUNS.fieldNames(), row))])
