"""The silver typing + rules and gold's four tables in DuckDB: a single-node reference doing the pipeline's work.

Mirrors pipelines/silver/transform.py (trim, empty text is missing, try-casts, integer codes accept "1.0", ISO or
US timestamps, `_unparsed`), the rules of conf/expectations/silver.yaml with the null semantics of
pipelines/rules.py (between / in_set skip nulls, pair rules skip rows with a missing value), the SHA-256 trip key
and the dedup on it, and gold's zone_daily, hourly_demand, pair_stats and trip_features (bench/duckdb_gold.py).
A CSV line that does not split into the header's columns is rejected by DuckDB's reader and counted under the
rule that catches it in Spark (well_formed_row).

    python bench/duckdb_reference.py FOLDER_OR_FILES... [--threads 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb_gold  # noqa: E402  (bench/ is on the path when run as a script)

from pipelines.bronze.schema_map import map_columns  # noqa: E402  (after the path)
from pipelines.gold.holidays import holidays_between  # noqa: E402

RULES = ROOT / "conf" / "expectations" / "silver.yaml"
ZONES = ROOT / "data" / "reference" / "taxi_zone_lookup.csv"
CORRUPT_RULE = "well_formed_row"
INT_COLUMNS = ["vendor_id", "passenger_count", "rate_code_id", "payment_type", "trip_type"]
ZONE_COLUMNS = {"pickup_location_id": "pickup_zone_id", "dropoff_location_id": "dropoff_zone_id"}
DOUBLE_COLUMNS = [
    "trip_distance", "fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount", "ehail_fee",
    "improvement_surcharge", "total_amount", "congestion_surcharge", "airport_fee",
]  # fmt: skip
TIMESTAMP_COLUMNS = {"pickup_datetime": "pickup_ts", "dropoff_datetime": "dropoff_ts"}
RAW_COLUMNS = [*INT_COLUMNS, *ZONE_COLUMNS, *DOUBLE_COLUMNS, *TIMESTAMP_COLUMNS, "store_and_fwd_flag"]
# The trip values that identify a trip and how they make its key (pipelines/silver/transform.py).
KEY_SEPARATOR, NULL_MARK = "\u001f", "\u2205"
KEY_COLUMNS = [
    "taxi_type", "vendor_id", "pickup_ts", "dropoff_ts", "passenger_count", "rate_code_id", "store_and_fwd_flag",
    "pickup_zone_id", "dropoff_zone_id", "payment_type", "trip_type", *DOUBLE_COLUMNS,
]  # fmt: skip
SOURCE_MONTH = r"((?:19|20)\d{2})[-_/](0[1-9]|1[0-2])(?:[^0-9]|$)"


def _text(name: str) -> str:
    return f"NULLIF(trim({name}), '')"


def typed_sql() -> dict[str, str]:
    """Each typed silver column as a DuckDB expression over the raw text columns."""
    cols = {"taxi_type": "lower(taxi_type)"}
    for name in INT_COLUMNS:
        d = f"TRY_CAST({_text(name)} AS DOUBLE)"
        cols[name] = f"CASE WHEN {d} = floor({d}) THEN TRY_CAST({d} AS INTEGER) END"
    for raw, silver in ZONE_COLUMNS.items():
        d = f"TRY_CAST({_text(raw)} AS DOUBLE)"
        cols[silver] = f"CASE WHEN {d} = floor({d}) THEN TRY_CAST({d} AS INTEGER) END"
    for name in DOUBLE_COLUMNS:
        cols[name] = f"TRY_CAST({_text(name)} AS DOUBLE)"
    for raw, silver in TIMESTAMP_COLUMNS.items():
        us = f"try_strptime({_text(raw)}, '%m/%d/%Y %I:%M:%S %p')"
        cols[silver] = f"coalesce(TRY_CAST({_text(raw)} AS TIMESTAMP), {us})"
    cols["store_and_fwd_flag"] = f"upper({_text('store_and_fwd_flag')})"
    return cols


def _source_of(silver: str) -> str:
    reverse = {v: k for k, v in {**ZONE_COLUMNS, **TIMESTAMP_COLUMNS}.items()}
    return reverse.get(silver, silver)


def _literal(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def rule_sql(rule: dict, zone_ids: list[int]) -> str:
    """A rule's violation as a never-null boolean (pipelines/rules.py semantics)."""
    p = rule.get("params") or {}
    cols = [rule["column"]] if "column" in rule else list(rule["columns"])
    c = cols[0]
    kind = rule["type"]
    if kind == "not_null":
        violated = f"{c} IS NULL"
    elif kind == "null":
        violated = f"{c} IS NOT NULL"
    elif kind == "between":
        checks = []
        if "min_value" in p:
            checks.append(f"{c} {'>' if p.get('strict_min') else '>='} {_literal(p['min_value'])}")
        if "max_value" in p:
            checks.append(f"{c} {'<' if p.get('strict_max') else '<='} {_literal(p['max_value'])}")
        violated = f"{c} IS NOT NULL AND NOT ({' AND '.join(checks)})"
    elif kind == "in_set":
        values = zone_ids if "value_set_from" in p else p["value_set"]
        violated = f"{c} IS NOT NULL AND {c} NOT IN ({', '.join(_literal(v) for v in values)})"
    elif kind == "column_pair_greater":
        a, b = cols
        violated = f"{a} IS NOT NULL AND {b} IS NOT NULL AND NOT ({a} {'>=' if p.get('or_equal') else '>'} {b})"
    elif kind == "column_pair_equal":
        a, b = cols
        violated = f"{a} IS NOT NULL AND {b} IS NOT NULL AND {a} <> {b}"
    else:
        raise ValueError(f"rule type {kind} not mirrored")
    return f"coalesce({violated}, false)"


def expand(paths: list[str]) -> list[str]:
    found = []
    for path in map(Path, paths):
        found += (
            sorted(str(p) for p in path.rglob("*") if p.suffix in (".csv", ".parquet"))
            if path.is_dir()
            else [str(path)]
        )
    return sorted(found)


def _raw_view(con: duckdb.DuckDBPyConnection, files: list[str]) -> None:
    """raw: every file's rows under canonical names, as text, with taxi_type and the file name."""
    by_header: dict[tuple, list[str]] = {}
    for f in files:
        if f.endswith(".parquet"):
            header = tuple(pq.read_schema(f).names)
        else:
            with open(f, newline="") as handle:
                header = tuple(next(csv.reader(handle)))
        by_header.setdefault(header, []).append(f)
    selects = []
    for i, (header, group) in enumerate(by_header.items()):
        mapping = map_columns(list(header), group[0])
        present = {canonical: header[pos] for pos, canonical in mapping.canonical.items()}
        if group[0].endswith(".parquet"):
            source = f"read_parquet({group!r}, filename=true, union_by_name=true)"
        else:
            types = ", ".join(f"'{name}': 'VARCHAR'" for name in header)
            source = (
                f"read_csv({group!r}, header=true, delim=',', quote='\"', escape='\"', auto_detect=false, "
                f"columns={{{types}}}, filename=true, store_rejects=true, rejects_table='rejects_{i}', "
                f"rejects_scan='rejects_scan_{i}')"
            )
        values = [
            (f'CAST("{present[c]}" AS VARCHAR)' if c in present else "CAST(NULL AS VARCHAR)") + f" AS {c}"
            for c in RAW_COLUMNS
        ]
        selects.append(f"SELECT '{mapping.taxi_type}' AS taxi_type, {', '.join(values)}, filename FROM {source}")
    con.execute("CREATE TEMP TABLE raw AS " + " UNION ALL ".join(selects))


def run_reference(
    paths: list[str], threads: int = 2, out: str | None = None, gold: duckdb_gold.GoldSettings | None = None
) -> dict:
    """Silver and gold on DuckDB; returns timings, per-rule counts and the gold sums to compare with Spark."""
    gold = gold or duckdb_gold.GoldSettings.from_base()
    files = expand(paths)
    rules = yaml.safe_load(RULES.read_text())["rules"]
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    clock = time.perf_counter()
    seconds = {}
    _raw_view(con, files)
    corrupt = sum(
        con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'rejects_%' "
                                "AND table_name NOT LIKE 'rejects_scan_%'").fetchall()
    )  # fmt: skip
    seconds["read"] = time.perf_counter() - clock
    con.execute(f"CREATE TEMP TABLE zones AS SELECT LocationID AS zone_id, Borough AS borough, Zone AS zone "
                f"FROM read_csv('{ZONES}', header=true)")  # fmt: skip
    zone_ids = [r[0] for r in con.execute("SELECT zone_id FROM zones ORDER BY 1").fetchall()]
    typed = typed_sql()
    unparsed = ", ".join(
        f"CASE WHEN {_text(_source_of(name))} IS NOT NULL AND ({expr}) IS NULL THEN '{name}' END"
        for name, expr in typed.items()
    )
    checked = [r for r in rules if r["name"] != CORRUPT_RULE]
    flags = ", ".join(f'{rule_sql(r, zone_ids)} AS "{r["name"]}"' for r in checked)
    key_values = ", ".join(f"coalesce(CAST(d.{c} AS VARCHAR), '{NULL_MARK}')" for c in KEY_COLUMNS)
    trip_key = f"sha256(concat_ws(chr({ord(KEY_SEPARATOR)}), {key_values}))"
    clock = time.perf_counter()
    con.execute(f"""
        CREATE TEMP TABLE batch AS
        WITH typed AS (
            SELECT {', '.join(f'{expr} AS {name}' for name, expr in typed.items())},
                   NULLIF(concat_ws(',', {unparsed}), '') AS _unparsed,
                   NULL::VARCHAR AS _corrupt_record, filename AS _source_file,
                   list_extract(regexp_extract_all(filename, '{SOURCE_MONTH}', 0), -1)[1:7] AS _source_month
            FROM raw
        ), derived AS (
            SELECT *, (floor(epoch(dropoff_ts)) - floor(epoch(pickup_ts))) / 60.0 AS duration_min,
                   strftime(pickup_ts, '%Y-%m') AS pickup_month, CAST(pickup_ts AS DATE) AS pickup_date
            FROM typed
        )
        SELECT d.*, {trip_key} AS trip_key, pz.zone AS pickup_zone, pz.borough AS pickup_borough,
               dz.zone AS dropoff_zone, dz.borough AS dropoff_borough, {flags}
        FROM derived d
        LEFT JOIN zones pz ON pz.zone_id = d.pickup_zone_id
        LEFT JOIN zones dz ON dz.zone_id = d.dropoff_zone_id
    """)  # fmt: skip
    drop = [r["name"] for r in checked if r["action"] == "drop"]
    warn = [r["name"] for r in checked if r["action"] == "warn"]
    rejected = " OR ".join(f'"{n}"' for n in drop)
    counts = con.execute(
        "SELECT count(*), " + ", ".join(f'count_if("{n}")' for n in drop + warn) + f", count_if({rejected}) FROM batch"
    ).fetchone()
    quarantined_by_rule = {n: int(v) for n, v in zip(drop, counts[1 : 1 + len(drop)]) if v}
    if corrupt:
        quarantined_by_rule[CORRUPT_RULE] = corrupt
    warned_by_rule = {n: int(v) for n, v in zip(warn, counts[1 + len(drop) : -1]) if v}
    con.execute(f"""
        CREATE TEMP TABLE silver AS
        SELECT * EXCLUDE (_rank) FROM (
            SELECT *, row_number() OVER (PARTITION BY trip_key ORDER BY _source_file) AS _rank
            FROM batch WHERE NOT ({rejected})
        ) WHERE _rank = 1
    """)  # fmt: skip
    seconds["silver"] = time.perf_counter() - clock
    clock = time.perf_counter()
    low, high = con.execute("SELECT min(pickup_date), max(pickup_date) FROM silver").fetchone()
    holidays = holidays_between(low, high, gold.extra_holidays) if low is not None else []
    duckdb_gold.build_gold(con, gold, holidays)
    seconds["gold"] = time.perf_counter() - clock
    if out:
        clock = time.perf_counter()
        Path(out).mkdir(parents=True, exist_ok=True)
        con.execute(f"CREATE TEMP TABLE quarantine AS SELECT * FROM batch WHERE {rejected}")
        for table in ("silver", "quarantine", *duckdb_gold.TABLES):
            con.execute(f"COPY {table} TO '{Path(out) / table}.parquet' (FORMAT parquet)")
        seconds["write"] = time.perf_counter() - clock
    seconds["total"] = sum(seconds.values())
    return {
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "rows_read": int(counts[0]) + corrupt,
        "quarantined_rows": int(counts[-1]) + corrupt,
        "quarantined_by_rule": dict(sorted(quarantined_by_rule.items())),
        "warned_by_rule": warned_by_rule,
        "silver_rows": con.execute("SELECT count(*) FROM silver").fetchone()[0],
        **duckdb_gold.gold_sums(lambda sql: con.execute(sql).fetchone()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="folder to write silver and gold Parquet files into")
    args = parser.parse_args(argv)
    print(json.dumps(run_reference(args.paths, args.threads, args.out), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
