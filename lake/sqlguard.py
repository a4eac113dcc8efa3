"""The `lake query` guard: one read-only statement that reads only catalog tables, checked before any engine runs it.

Statements may run on DuckDB or Spark, whose lexers differ (Spark strings take backslash escapes and "..." is a
string; DuckDB strings double their quotes, "..." is a name and $$...$$ is a string). The lexer here reads each
literal both ways and refuses whatever the two readings split differently, so what it calls code is code on both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from lake.errors import QueryError

READ_STATEMENTS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "VALUES")
# Words that start a statement which writes, drops, changes settings or reaches outside the lake. A column with
# such a name can still be used when quoted ("update" or `update`).
WRITE_KEYWORDS = (
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "DROP", "CREATE", "ALTER", "TRUNCATE", "RENAME", "GRANT",
    "REVOKE", "COPY", "ATTACH", "DETACH", "INSTALL", "LOAD", "CALL", "EXPORT", "IMPORT", "VACUUM", "OPTIMIZE",
    "RESTORE", "REFRESH", "CACHE", "UNCACHE", "MSCK", "REPAIR", "CLONE", "CONVERT", "SET", "RESET", "USE",
    "PRAGMA", "CHECKPOINT", "ANALYZE", "COMMENT", "EXECUTE", "DECLARE", "BEGIN",
)  # fmt: skip
# Spark data sources usable as `format`.`path` to read a file by its path.
PATH_FORMATS = frozenset(
    "text csv json parquet orc delta avro binaryfile xml jdbc libsvm image hive iceberg hudi file".split()
)
# Functions that read files, run SQL text, expose settings, secrets or the lake's file paths, or call into the JVM
# (either engine).
REFUSED_FUNCTIONS = frozenset(
    """reflect java_method try_reflect from_protobuf to_protobuf read_files glob query query_table getenv
    load_extension sniff_csv which_secret checkpoint force_checkpoint json_execute_serialized_sql
    python_map_function table_changes table_changes_by_path identifier input_file_name input_file_block_start
    input_file_block_length""".split()
)
REFUSED_PREFIXES = ("read_", "parquet_", "duckdb_", "pragma_", "sniff_", "iceberg_", "delta_", "sqlite_")
REFUSED_SUFFIXES = ("_scan",)
# DuckDB table functions that only compute (or share a name with a common scalar/aggregate function).
ALLOWED_TABLE_FUNCTIONS = frozenset(
    "range generate_series unnest repeat histogram json_each json_tree pg_timezone_names".split()
)


_WORD = re.compile(r"\w+")
# Words after which a string or a quoted name with a path's characters would name a file: a table (FROM, JOIN) or a
# Delta table by path (DESCRIBE HISTORY/DETAIL '<path>', DESCRIBE '<path>').
PATH_KEYWORDS = ("FROM", "JOIN", "HISTORY", "DETAIL", "DESCRIBE", "DESC", "TABLE", "EXTENDED", "FORMATTED")


class QueryRefusedError(QueryError):
    """The statement is not a single read-only query over the lake's tables."""


@dataclass(frozen=True)
class Token:
    kind: str  # word, quoted (a `name` or "name"), string, symbol
    text: str  # words and quoted names without their quotes
    start: int
    end: int


def _string_end(sql: str, start: int, quote: str, backslash_escapes: bool) -> int | None:
    """Index after the literal opened at start, or None when it never closes."""
    i = start + 1
    while i < len(sql):
        char = sql[i]
        if backslash_escapes and char == "\\":
            i += 2
            continue
        if char == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return None


def _literal_end(sql: str, start: int) -> int:
    """End of the '...' or "..." literal at start, read the Spark way and the DuckDB way; refused when they differ."""
    quote = sql[start]
    spark_end = _string_end(sql, start, quote, backslash_escapes=True)
    duckdb_end = _string_end(sql, start, quote, backslash_escapes=False)
    if spark_end is None or duckdb_end is None:
        raise QueryRefusedError(f"unterminated {quote}...{quote} literal starting at character {start + 1}")
    if spark_end != duckdb_end:
        raise QueryRefusedError(
            f"the literal at character {start + 1} ends in a different place for Spark (backslash escapes) and "
            "DuckDB (no backslash escapes); write it without a backslash before a quote"
        )
    return spark_end


def tokenize(sql: str) -> tuple[list[Token], str]:
    """The code tokens of sql, and sql with comments and literals blanked (positions kept).

    Refuses what the two engines could read differently: an unterminated literal or comment, a nested comment,
    '$' outside literals (DuckDB $$ strings, $1 parameters) and '${' anywhere (Spark variable substitution).
    """
    if "${" in sql:
        raise QueryRefusedError("'${' is not allowed: Spark would substitute settings or environment variables")
    tokens: list[Token] = []
    mask = list(sql)
    i = 0
    while i < len(sql):
        char, pair = sql[i], sql[i : i + 2]
        if char.isspace():
            i += 1
            continue
        if pair == "--":
            end = sql.find("\n", i)
            end = len(sql) if end < 0 else end
            if "\r" in sql[i:end] or sql[i:end].endswith("\\"):  # Spark ends it at \r, goes on after \<newline>
                raise QueryRefusedError(
                    f"the -- comment at character {i + 1} holds a carriage return or ends with a backslash; engines "
                    "end such a comment in different places"
                )
        elif sql[i : i + 3] == "/*+":
            raise QueryRefusedError("hints (/*+ ... */) are not allowed in lake query: Spark reads them as code")
        elif pair == "/*":
            end = sql.find("*/", i + 2)
            if end < 0:
                raise QueryRefusedError(f"unterminated /* comment starting at character {i + 1}")
            if "/*" in sql[i + 2 : end]:
                raise QueryRefusedError("nested /* comments are not allowed (engines close them differently)")
            end += 2
        elif char in "'\"":
            end = _literal_end(sql, i)
            kind = "string" if char == "'" else "quoted"
            tokens.append(Token(kind, sql[i + 1 : end - 1].replace(char * 2, char), i, end))
        elif char == "`":
            end = _string_end(sql, i, "`", backslash_escapes=False)
            if end is None:
                raise QueryRefusedError(f"unterminated `name` starting at character {i + 1}")
            tokens.append(Token("quoted", sql[i + 1 : end - 1].replace("``", "`"), i, end))
        elif char == "$":
            raise QueryRefusedError("'$' is not allowed outside string literals (DuckDB reads $$...$$ as a string)")
        elif char.isalnum() or char == "_":
            match = _WORD.match(sql, i)
            end = match.end()
            tokens.append(Token("word", match.group(), i, end))
            i = end
            continue
        else:
            tokens.append(Token("symbol", char, i, i + 1))
            i += 1
            continue
        mask[i:end] = [" "] * (end - i)
        i = end
    return tokens, "".join(mask)


def code_only(sql: str) -> str:
    """sql with comments, string literals and quoted names blanked out; positions are kept."""
    return tokenize(sql)[1]


@cache
def duckdb_table_functions() -> frozenset[str]:
    """Names of DuckDB's table functions (read_csv, glob, query...), which can read files or run SQL text."""
    import duckdb

    connection = duckdb.connect()
    try:
        rows = connection.execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type IN ('table', 'table_macro')"
        ).fetchall()
    finally:
        connection.close()
    return frozenset(row[0].lower() for row in rows)


def refused_function(name: str) -> bool:
    name = name.lower()
    if name in ALLOWED_TABLE_FUNCTIONS:
        return False
    return (
        name in REFUSED_FUNCTIONS
        or name.startswith(REFUSED_PREFIXES)
        or name.endswith(REFUSED_SUFFIXES)
        or name in duckdb_table_functions()
    )


def _check_tokens(tokens: list[Token]) -> None:
    """Refuses file paths used as tables and calls of refused functions."""
    for i, token in enumerate(tokens):
        before = tokens[i - 1] if i > 0 else None
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.kind in ("word", "quoted") and after is not None and (after.kind, after.text) == ("symbol", "("):
            if token.text.lower() == "identifier":
                argument = tokens[i + 2] if i + 2 < len(tokens) else None
                named = f"'{argument.text}'" if argument is not None and argument.kind == "string" else "..."
                raise QueryRefusedError(
                    f"'{token.text}' ({token.text}({named})) is not allowed in lake query: write the name itself (a "
                    "table as layer.table), so that the guard and --as-of see it"
                )
            if refused_function(token.text):
                raise QueryRefusedError(
                    f"function '{token.text}' is not allowed in lake query (it reads files, runs SQL text, "
                    "shows settings or calls the JVM); query the lake's tables by name"
                )
        if token.kind == "quoted" and i >= 2 and before.text == "." and tokens[i - 2].text.lower() in PATH_FORMATS:
            raise QueryRefusedError(
                f"reading files by path ({tokens[i - 2].text}.`{token.text}`) is not allowed; query the lake's "
                "tables by name (layer.table)"
            )
        after_from = before is not None and before.kind == "word" and before.text.upper() in PATH_KEYWORDS
        path_like = token.kind == "string" or (token.kind == "quoted" and re.search(r"[/\\:.]", token.text))
        if after_from and path_like:
            raise QueryRefusedError(
                f"reading a file by its name ({token.text!r} after {before.text.upper()}) is not allowed; "
                "query the lake's tables by name (layer.table)"
            )


def _duckdb_statement_count(statement: str) -> int | None:
    """How many statements DuckDB's own parser finds (None when it cannot parse the text, e.g. Spark-only SQL)."""
    import duckdb

    try:
        return len(duckdb.extract_statements(statement))
    except duckdb.Error:
        return None


def check_read_only(sql: str) -> str:
    """Returns the single statement in sql (without a trailing ';'), or raises QueryRefusedError naming the problem."""
    statement = sql.strip()
    while code_only(statement).rstrip().endswith(";"):
        statement = statement.rstrip()[:-1].rstrip()
    tokens, code = tokenize(statement)
    if not code.strip():
        raise QueryRefusedError("no SQL statement given")
    if ";" in code or (_duckdb_statement_count(statement) or 1) > 1:
        raise QueryRefusedError("only one statement at a time: remove the ';' between statements")
    words = [token.text.upper() for token in tokens if token.kind == "word"]
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
    _check_tokens(tokens)
    return statement
