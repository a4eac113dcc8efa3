"""`lake query`: read-only SQL over the catalog's layer.name tables, on DuckDB (fast path) or Spark, with time travel.

The text guard (lake.sqlguard) runs before either engine sees the statement, so both refuse the same statements; on
Spark, the plan Spark's own parser builds is checked too (lake.sqlplan) before anything runs. Each table reference
may carry its own version: `gold.zone_daily@v3` in the SQL, or table_versions from the command line.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import pyarrow as pa

from lake.catalog import LAYERS, Lake, TableSpec
from lake.errors import QueryError, TableMissingError
from lake.sqlguard import READ_STATEMENTS, QueryRefusedError, Token, check_read_only, code_only, tokenize

__all__ = ["READ_STATEMENTS", "QueryRefusedError", "check_read_only", "code_only", "run_query"]

ENGINES = ("auto", "fast", "spark")
_TABLE_PART = re.compile(r"[A-Za-z_]\w*")
_VERSION_SUFFIX = re.compile(r"@v(\d+)", re.IGNORECASE)
SPARK_VIEW_PREFIX = "lake_query__"
RUN_SQL_ON_FILES = "spark.sql.runSQLOnFiles"


class FastPathUnavailableError(ValueError):
    """The fast engine cannot read a table (a Delta feature delta-rs does not support); auto then uses Spark."""


@dataclass
class QueryResult:
    table: pa.Table
    engine: str  # "fast" or "spark"


@dataclass(frozen=True)
class TableRead:
    """One table reference of a query: the table, and the version or moment it is read at (None: latest)."""

    key: str  # as referenced, lower case: gold.zone_daily or gold.zone_daily@v3
    spec: TableSpec
    version: int | None = None
    moment: datetime | None = None


def _is(token: Token | None, kind: str, text: str) -> bool:
    return token is not None and token.kind == kind and token.text == text


def _reference_at(sql: str, tokens: list[Token], i: int) -> tuple[str, str, int] | None:
    """(layer.name, its suffix as written (@v3, or ""), end) when tokens[i:] start a table reference: parts bare or
    quoted, not after a '.' (catalog.layer.name), a suffix written right after the name."""
    before, first, dot, second, at, word = (tokens[j] if 0 <= j < len(tokens) else None for j in range(i - 1, i + 5))
    if first.kind not in ("word", "quoted") or first.text.lower() not in LAYERS or _is(before, "symbol", "."):
        return None
    if not _is(dot, "symbol", ".") or second is None or second.kind not in ("word", "quoted"):
        return None
    if not _TABLE_PART.fullmatch(second.text):
        return None
    name = f"{first.text}.{second.text}".lower()
    if not _is(at, "symbol", "@") or at.start != second.end:
        return name, "", second.end
    if word is not None and word.kind == "word" and word.start == at.end:
        return name, sql[at.start : word.end], word.end
    return name, "@", at.end


def _references(sql: str) -> list[tuple[str, str, int | None, int, int]]:
    """(key, table, version in the SQL, start, end) for each layer.name[@vN] outside literals and comments; either
    part may be quoted (`gold`.`zone_daily`, "gold"."zone_daily")."""
    found = []
    tokens = tokenize(sql)[0]
    for i, token in enumerate(tokens):
        if (reference := _reference_at(sql, tokens, i)) is None:
            continue
        name, suffix, end = reference
        version = None
        if suffix:
            pinned = _VERSION_SUFFIX.fullmatch(suffix)
            if not pinned:
                raise QueryError(f"{name}{suffix}: a table version is written {name}@v<N>, e.g. {name}@v3")
            version = int(pinned.group(1))
        key = name if version is None else f"{name}@v{version}"
        found.append((key, name, version, token.start, end))
    return found


def referenced_tables(sql: str, specs: dict[str, TableSpec]) -> list[str]:
    """The catalog tables sql names as layer.name (with or without @vN), in order of first use."""
    return list(dict.fromkeys(name for _, name, *_ in _references(sql) if name in specs))


def table_reads(
    sql: str,
    specs: dict[str, TableSpec],
    version: int | None = None,
    moment: datetime | None = None,
    table_versions: Mapping[str, int] | None = None,
) -> dict[str, TableRead]:
    """What each reference reads: its @vN, else its table_versions entry, else version, else moment, else latest."""
    table_versions = {name.lower(): int(v) for name, v in (table_versions or {}).items()}
    reads: dict[str, TableRead] = {}
    for key, name, pinned, *_ in _references(sql):
        if name not in specs or key in reads:
            continue
        chosen = pinned if pinned is not None else table_versions.get(name, version)
        reads[key] = TableRead(key, specs[name], chosen, moment if chosen is None else None)
    unused = sorted(set(table_versions) - {read.spec.full_name for read in reads.values()})
    if unused:
        raise QueryError(f"--as-of-version {unused[0]}=...: the query does not read {unused[0]}")
    return reads


def rewrite_names(sql: str, replacements: dict[str, str]) -> str:
    """Replaces layer.name[@vN] table references (keys as in TableRead.key) outside literals and comments."""
    parts, last = [], 0
    for key, _, _, start, end in _references(sql):
        if key in replacements:
            parts += [sql[last:start], replacements[key]]
            last = end
    return "".join(parts) + sql[last:]


def parse_timestamp(text: str) -> datetime:
    """An --as-of value as an aware datetime; times without an offset are UTC (the lake's session time zone)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise QueryError(f"--as-of: '{text}' is not a timestamp like 2019-02-01 or 2019-02-01T13:45:00Z") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def version_at(table: str, commits: list[tuple[int, int]], moment: datetime) -> int:
    """The last version committed at or before moment; commits are (version, commit time in ms since the epoch).

    Both engines use this rule: a moment after the last commit reads the latest version; one before the first
    commit is an error.
    """
    cutoff = moment.timestamp() * 1000
    eligible = [version for version, millis in commits if millis <= cutoff]
    if not eligible:
        first_version, first_millis = min(commits)
        first = datetime.fromtimestamp(first_millis / 1000, timezone.utc).isoformat(sep=" ", timespec="seconds")
        raise QueryError(
            f"{table} did not exist yet at {moment.isoformat(sep=' ')}: its oldest readable version "
            f"{first_version} was committed at {first}"
        )
    return max(eligible)


def check_version(table: str, version: int, latest: int) -> None:
    if not 0 <= version <= latest:
        raise QueryError(f"{table} has versions 0..{latest}; there is no version {version}")


def run_query(
    lake: Lake,
    sql: str,
    engine: str = "auto",
    version: int | None = None,
    timestamp: str | None = None,
    notify: Callable[[str], None] | None = None,
    table_versions: Mapping[str, int] | None = None,
) -> QueryResult:
    """Runs one read-only statement; tables read as of `version` or `timestamp` when given.

    table_versions (table -> version) and `layer.name@vN` in the SQL pin single tables and win over version and
    timestamp. engine: "fast" (DuckDB over the Delta files, no JVM), "spark", or "auto" (fast, falling back to
    Spark with a message through notify only when the fast engine cannot read a table; SQL DuckDB rejects is an
    error, not a reason to run it on Spark).
    """
    if engine not in ENGINES:
        raise QueryError(f"engine must be one of {ENGINES}, not {engine!r}")
    if version is not None and timestamp is not None:
        raise QueryError("give a version or a timestamp to read as of, not both")
    for name in table_versions or {}:
        lake.spec(name.lower())  # an unknown table name fails here
    statement = check_read_only(sql)
    moment = parse_timestamp(timestamp) if timestamp is not None else None
    reads = table_reads(statement, lake.specs, version, moment, table_versions)
    if engine in ("auto", "fast"):
        from lake.fastquery import fast_query

        try:
            return QueryResult(fast_query(lake.specs, statement, reads, lake.storage_options), "fast")
        except FastPathUnavailableError as exc:
            if engine == "fast":
                raise QueryError(f"fast engine: {exc}; run it with --engine spark") from exc
            (notify or _to_stderr)(f"fast engine: {exc}; running the query on Spark")
    from lake.sqlplan import check_spark_plan

    views = spark_views(reads)  # Spark runs this very text (spark_query): its plan must be a query over the views
    check_spark_plan(lake.spark, rewrite_names(statement, views), views.values())
    return QueryResult(spark_query(lake, statement, reads), "spark")


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def spark_commits(lake: Lake, table: str) -> list[tuple[int, int]]:
    from pyspark.sql import functions as F

    rows = lake.history(table).select("version", F.unix_millis("timestamp")).collect()
    return [(int(row[0]), int(row[1])) for row in rows]


def spark_views(reads: Mapping[str, TableRead]) -> dict[str, str]:
    """The temporary view each table reference is read through on Spark (reference key -> view name)."""
    return {key: SPARK_VIEW_PREFIX + key.replace(".", "__").replace("@", "__") for key in reads}


def spark_query(lake: Lake, statement: str, reads: dict[str, TableRead]) -> pa.Table:
    """Runs the statement on Spark; each table reference becomes a temporary view read at its version.

    Runs what run_query checked (rewrite_names(statement, spark_views(reads)), the same text): the checks are
    run_query's. No catalog entry is made (only the temporary views, dropped afterwards) and
    spark.sql.runSQLOnFiles is off while the statement runs (format.`path` reads nothing), then restored: the
    session is shared with the stages.
    """
    from pyspark.errors import AnalysisException, IllegalArgumentException, ParseException

    from lake.session import session_conf

    spark = lake.spark
    views = spark_views(reads)
    made = []
    try:
        for key, read in reads.items():
            name = read.spec.full_name
            if not lake.exists(name):
                raise TableMissingError(f"table {name} does not exist yet at {read.spec.path}; run its stage first")
            version = read.version
            if version is not None:
                check_version(name, version, lake.version(name))
            elif read.moment is not None:
                version = version_at(name, spark_commits(lake, name), read.moment)
            lake.read(name, version=version).createOrReplaceTempView(views[key])
            made.append(views[key])
        with session_conf(spark, {RUN_SQL_ON_FILES: "false"}):
            return spark.sql(rewrite_names(statement, views)).toArrow()
    except (AnalysisException, IllegalArgumentException, ParseException) as exc:
        raise QueryError(f"Spark: {str(exc).strip().splitlines()[0]}") from exc
    finally:
        for view in made:
            spark.catalog.dropTempView(view)


def _family(data_type: pa.DataType) -> str:
    if pa.types.is_integer(data_type) or (pa.types.is_decimal(data_type) and data_type.scale == 0):
        return "integer"
    if pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "number"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "string"
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_date(data_type):
        return "date"
    if pa.types.is_timestamp(data_type):
        return "timestamp"
    return str(data_type)


def _comparable_value(value: object, family: str) -> object:
    if value is None:
        return None
    if family == "integer":
        return int(value)
    if family == "number":
        return float(f"{float(value) if isinstance(value, Decimal) else value:.12g}")
    return value


def comparable(table: pa.Table) -> tuple[list[tuple[str, str]], list[tuple]]:
    """Column names with a type family, and the rows sorted, numbers to 12 significant digits.

    Results of the two engines compare equal through this: DuckDB sums integers into 128-bit decimals where Spark
    uses bigint, and engines may add doubles in different orders.
    """
    families = [_family(field.type) for field in table.schema]
    columns = [
        [_comparable_value(value, family) for value in column.to_pylist()]
        for column, family in zip(table.columns, families, strict=True)
    ]
    rows = list(zip(*columns, strict=True))
    rows.sort(key=lambda row: tuple((value is None, value if value is not None else 0) for value in row))
    return list(zip(table.column_names, families, strict=True)), rows
