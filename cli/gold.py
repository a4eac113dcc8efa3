"""`lake gold` builds the gold tables; `lake query` runs read-only SQL over the lake and prints or saves the result."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

from cli.main import open_lake
from lake.errors import InputError

FORMATS = ("table", "csv", "json", "parquet")
DEFAULT_MAX_ROWS = 100


def register(subparsers: argparse._SubParsersAction) -> None:
    gold = subparsers.add_parser(
        "gold", help="build gold tables from silver.trips", description="Recomputes the days silver changed."
    )
    gold.add_argument("--full-refresh", action="store_true", help="recompute every day instead of changed ones")
    gold.set_defaults(handler=run_gold_command)

    query = subparsers.add_parser(
        "query",
        help="run read-only SQL over the lake (SELECT ... FROM gold.zone_daily)",
        description="Read-only SQL over the catalog's layer.name tables. Statements that write or drop are refused.",
    )
    query.add_argument("sql", help='one SELECT/WITH/SHOW/DESCRIBE/EXPLAIN/VALUES statement, e.g. "SELECT ..."')
    query.add_argument("--format", choices=FORMATS, default="table", help="output format (default: a text table)")
    query.add_argument("--output", help="write the result to this file (required for parquet)")
    query.add_argument(
        "--as-of-version",
        action="append",
        default=[],
        metavar="N|TABLE=N",
        help="N: read every table at Delta version N; TABLE=N (repeatable): read that table at version N "
        "(also gold.t@vN in the SQL)",
    )
    query.add_argument(
        "--as-of",
        metavar="TIMESTAMP",
        help="read tables as of this time (UTC unless an offset; after the last commit: the latest version)",
    )
    query.add_argument(
        "--engine",
        choices=("auto", "fast", "spark"),
        default="auto",
        help="fast: DuckDB over the Delta files, no JVM; spark: Spark SQL; auto (default): fast, else Spark",
    )
    query.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS, help="rows printed by --format table")
    query.set_defaults(handler=run_query_command)


def run_gold_command(args: argparse.Namespace) -> int:
    from pipelines.gold import run_gold

    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    result = run_gold(open_lake(args), full_refresh=args.full_refresh, progress=progress)
    print(result.summary_markdown())
    print(
        f"\nmode: {result.details['mode']}" + (f" ({result.details['reason']})" if "reason" in result.details else "")
    )
    return 0


def parse_as_of_versions(values: list[str]) -> tuple[int | None, dict[str, int]]:
    """--as-of-version values: one plain N (every table) and any number of TABLE=N."""
    every: int | None = None
    tables: dict[str, int] = {}
    for value in values:
        name, _, number = value.rpartition("=")
        try:
            version = int(number)
        except ValueError:
            raise InputError(f"--as-of-version {value}: expected N or TABLE=N, e.g. 3 or gold.zone_daily=3") from None
        if not name:
            if every is not None:
                raise InputError("--as-of-version N (every table) given twice; use TABLE=N for single tables")
            every = version
        elif name.strip().lower() in tables:
            raise InputError(f"--as-of-version: {name} given twice")
        else:
            tables[name.strip().lower()] = version
    return every, tables


def run_query_command(args: argparse.Namespace) -> int:
    from lake.query import run_query

    if args.format == "parquet" and not args.output:
        raise InputError("--format parquet needs --output FILE")
    every, tables = parse_as_of_versions(args.as_of_version)
    if every is not None and args.as_of:
        raise InputError("--as-of-version N and --as-of TIMESTAMP both say how to read every table; give one")
    started = time.perf_counter()
    result = run_query(open_lake(args), args.sql, args.engine, every, args.as_of, table_versions=tables)
    elapsed = time.perf_counter() - started
    write_result(result.table, args.format, args.output, args.max_rows)
    where = f" to {args.output}" if args.output else ""
    print(f"({result.table.num_rows} rows{where}, {result.engine} engine, {elapsed:.2f} s)", file=sys.stderr)
    return 0


def _display(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, datetime):  # lake timestamps are wall-clock times kept as UTC: show them without offset
        return value.replace(tzinfo=None).isoformat(sep=" ")
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def render_table(table: pa.Table, max_rows: int) -> str:
    """A plain-text table: a header, a rule and up to max_rows rows, numbers right-aligned."""
    shown = table.slice(0, max_rows)
    numeric = [pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_decimal(f.type)
               for f in table.schema]  # fmt: skip
    cells = [[_display(v) for v in column.to_pylist()] for column in shown.columns]
    widths = [
        max([len(name)] + [len(c) for c in column]) for name, column in zip(table.column_names, cells, strict=True)
    ]

    def line(values: list[str]) -> str:
        return " | ".join(
            v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)
        ).rstrip()

    lines = [line(table.column_names), "-+-".join("-" * w for w in widths)]
    lines += [line(list(row)) for row in zip(*cells, strict=True)]
    if table.num_rows > max_rows:
        lines.append(f"... {table.num_rows - max_rows} more rows (raise --max-rows or use --format csv --output FILE)")
    return "\n".join(lines)


def write_result(table: pa.Table, fmt: str, output: str | None, max_rows: int = DEFAULT_MAX_ROWS) -> None:
    """Prints the result (table, csv, json) or writes it to output (any format)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, output)
        return
    if fmt == "csv":
        import pyarrow.csv as pacsv

        if output:
            pacsv.write_csv(table, output)
        else:
            pacsv.write_csv(table, sys.stdout.buffer)
        return
    if fmt == "json":
        records = [{k: _json_value(v) for k, v in row.items()} for row in table.to_pylist()]
        text = json.dumps(records, indent=1)
    else:
        text = render_table(table, max_rows)
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    else:
        print(text)
