"""`lake query`: read-only SQL over the catalog's layer.name tables, on DuckDB (fast path) or Spark, with time travel.

The read-only guard runs before either engine sees the statement, so both refuse the same statements.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import pyarrow as pa

from lake.catalog import LAYERS, Lake, TableSpec
from lake.errors import QueryError

ENGINES = ("auto", "fast", "spark")
READ_STATEMENTS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "VALUES")
# Words that start a statement which writes, drops, changes settings or reaches outside the lake. A column with
# such a name can still be used when quoted ("update" or `update`).
WRITE_KEYWORDS = (
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "DROP", "CREATE", "ALTER", "TRUNCATE", "RENAME", "GRANT",
    "REVOKE", "COPY", "ATTACH", "DETACH", "INSTALL", "LOAD", "CALL", "EXPORT", "IMPORT", "VACUUM", "OPTIMIZE",
    "RESTORE", "REFRESH", "CACHE", "UNCACHE", "MSCK", "REPAIR", "CLONE", "CONVERT", "SET", "RESET", "USE",
    "PRAGMA", "CHECKPOINT", "ANALYZE", "COMMENT",
)  # fmt: skip
# Comments, string literals and quoted identifiers: text in which keywords and table names do not count.
_NOT_CODE = re.compile(
    r"--[^\n]*|/\*.*?\*/|'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|`(?:[^`]|``)*`",
    re.DOTALL,
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TABLE_NAME = re.compile(rf"(?<![\w.])({'|'.join(LAYERS)})\s*\.\s*([A-Za-z_]\w*)", re.IGNORECASE)
SPARK_VIEW_PREFIX = "lake_query__"


class QueryRefusedError(QueryError):
    """The statement is not a single read-only query."""


class FastPathUnavailableError(ValueError):
    """The fast engine cannot run this query (a table it cannot read, or SQL DuckDB does not understand)."""


@dataclass
class QueryResult:
    table: pa.Table
    engine: str  # "fast" or "spark"


def code_only(sql: str) -> str:
    """sql with comments, string literals and quoted identifiers blanked out; positions are kept."""
    return _NOT_CODE.sub(lambda match: " " * len(match.group()), sql)


def check_read_only(sql: str) -> str:
    """Returns the single statement in sql (without a trailing ';'), or raises QueryRefusedError naming the problem."""
    statement = sql.strip()
    while code_only(statement).rstrip().endswith(";"):
        statement = statement.rstrip()[:-1].rstrip()
    code = code_only(statement)
    if not code.strip():
        raise QueryRefusedError("no SQL statement given")
    if ";" in code:
        raise QueryRefusedError("only one statement at a time: remove the ';' between statements")
    words = [word.upper() for word in _WORD.findall(code)]
    first = words[0] if words else ""
    if first not in READ_STATEMENTS:
        raise QueryRefusedError(
            f"read-only: statements starting with '{first or code.strip()[:20]}' are not allowed; "
            f"lake query runs {', '.join(READ_STATEMENTS)} statements"
        )
    for word in words:
        if word in WRITE_KEYWORDS:
            raise QueryRefusedError(
                f"read-only: '{word}' is not allowed in lake query (it writes, drops or changes state); "
                "quote it if it is a column name"
            )
    return statement


def referenced_tables(sql: str, specs: dict[str, TableSpec]) -> list[str]:
    """The catalog tables sql names as layer.name, in order of first use."""
    names = [f"{m.group(1)}.{m.group(2)}".lower() for m in _TABLE_NAME.finditer(code_only(sql))]
    return list(dict.fromkeys(name for name in names if name in specs))


def parse_timestamp(text: str) -> datetime:
    """An --as-of value as an aware datetime; times without an offset are UTC (the lake's session time zone)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise QueryError(f"--as-of: '{text}' is not a timestamp like 2019-02-01 or 2019-02-01T13:45:00Z") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def run_query(
    lake: Lake,
    sql: str,
    engine: str = "auto",
    version: int | None = None,
    timestamp: str | None = None,
    notify: Callable[[str], None] | None = None,
) -> QueryResult:
    """Runs one read-only statement; tables read as of `version` or `timestamp` when given.

    engine: "fast" (DuckDB over the Delta files, no JVM), "spark", or "auto" (fast, falling back to Spark with a
    message through notify when the fast engine cannot read a table or parse the SQL).
    """
    if engine not in ENGINES:
        raise QueryError(f"engine must be one of {ENGINES}, not {engine!r}")
    if version is not None and timestamp is not None:
        raise QueryError("give a version or a timestamp to read as of, not both")
    statement = check_read_only(sql)
    tables = referenced_tables(statement, lake.specs)
    moment = parse_timestamp(timestamp) if timestamp is not None else None
    if engine in ("auto", "fast"):
        from lake.fastquery import fast_query

        try:
            return QueryResult(fast_query(lake.specs, statement, tables, version, moment), "fast")
        except FastPathUnavailableError as exc:
            if engine == "fast":
                raise
            (notify or _to_stderr)(f"fast engine: {exc}; running the query on Spark")
    return QueryResult(spark_query(lake, statement, tables, version, moment), "spark")


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def rewrite_names(sql: str, replacements: dict[str, str]) -> str:
    """Replaces layer.name table references outside literals and comments."""
    code = code_only(sql)
    parts, last = [], 0
    for match in _TABLE_NAME.finditer(code):
        name = f"{match.group(1)}.{match.group(2)}".lower()
        if name in replacements:
            parts += [sql[last : match.start()], replacements[name]]
            last = match.end()
    return "".join(parts) + sql[last:]


def spark_query(
    lake: Lake, statement: str, tables: list[str], version: int | None, moment: datetime | None
) -> pa.Table:
    """Runs the statement on Spark; referenced tables become temporary views read at the requested version."""
    from pyspark.errors import AnalysisException, IllegalArgumentException, ParseException

    try:
        if not tables:  # SHOW TABLES IN gold and the like need the catalog names
            lake.register_sql()
        views = {}
        for table in tables:
            view = SPARK_VIEW_PREFIX + table.replace(".", "__")
            as_of = None if moment is None else moment.isoformat()
            lake.read(table, version=version, timestamp=as_of).createOrReplaceTempView(view)
            views[table] = view
        return lake.spark.sql(rewrite_names(statement, views)).toArrow()
    except (AnalysisException, IllegalArgumentException, ParseException) as exc:
        raise QueryError(f"Spark: {str(exc).strip().splitlines()[0]}") from exc


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
