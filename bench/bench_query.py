"""How much faster `lake query` answers on the fast path (DuckDB over deltalake) than on Spark, cold and warm.

Generates an N-row gold.trip_features table (default 1M) in a temporary lake, then times, in the same run:
cold: `lake query` as a fresh process per engine (interpreter start, and for Spark the JVM start, included);
warm: the same query again in this process (Spark session up, Python modules loaded). Both engines' answers are
compared. Writes bench/results/query.md.

    .venv/bin/python bench/bench_query.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lake import Lake, load_conf
from lake.query import comparable, run_query
from pipelines.schemas import TRIP_FEATURES

PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / "bench" / "results" / "query.md"
TABLE = "gold.trip_features"
QUERY = (
    "SELECT pickup_borough, pickup_hour, count(*) AS trips, avg(duration_min) AS avg_minutes, "
    "avg(pair_median_duration) AS typical_minutes, sum(CASE WHEN is_weekend THEN 1 ELSE 0 END) AS weekend_trips "
    "FROM gold.trip_features WHERE month BETWEEN 1 AND 6 GROUP BY pickup_borough, pickup_hour "
    "ORDER BY pickup_borough, pickup_hour"
)
BOROUGHS = ["Manhattan", "Queens", "Brooklyn", "Bronx", "Staten Island", "EWR"]
SECONDS_PER_YEAR = 365 * 24 * 3600
ENGINES = ("fast", "spark")
MODES = {
    "cold (cli)": "cold: `lake query` in a new process (Spark: JVM start included)",
    "cold (library)": "cold: `run_query` alone in a new process (no other stages' imports)",
    "warm": "warm: again in a process that already ran it",
}
ZONES = 263


def synthetic_features(spark: SparkSession, rows: int) -> DataFrame:
    """rows trip_features rows spread over 2019, values derived from hashes of the row id (deterministic)."""

    def draw(salt: int, modulo: int) -> F.Column:
        return F.pmod(F.xxhash64(F.col("id"), F.lit(salt)), F.lit(modulo))

    pickup = F.timestamp_seconds(F.lit(1546300800) + F.floor(F.col("id") * (SECONDS_PER_YEAR / rows)))
    boroughs = F.array(*[F.lit(b) for b in BOROUGHS])
    frame = spark.range(rows).select(
        F.sha2(F.col("id").cast("string"), 256).alias("trip_key"),
        pickup.alias("pickup_ts"),
        F.lit("yellow").alias("taxi_type"),
        (draw(1, 2) + 1).alias("vendor_id"),
        (draw(2, 6) + 1).alias("rate_code_id"),
        (draw(3, 6) + 1).alias("passenger_count"),
        F.hour(pickup).alias("pickup_hour"),
        F.dayofweek(pickup).alias("day_of_week"),
        F.month(pickup).alias("month"),
        F.dayofweek(pickup).isin(1, 7).alias("is_weekend"),
        F.lit(False).alias("is_holiday"),
        (draw(4, ZONES) + 1).alias("pickup_zone_id"),
        (draw(5, ZONES) + 1).alias("dropoff_zone_id"),
        F.element_at(boroughs, (draw(6, len(BOROUGHS)) + 1).cast("int")).alias("pickup_borough"),
        F.element_at(boroughs, (draw(7, len(BOROUGHS)) + 1).cast("int")).alias("dropoff_borough"),
        F.lit(False).alias("pickup_is_airport"),
        F.lit(False).alias("dropoff_is_airport"),
        draw(8, 50).alias("pair_trips"),
        (draw(9, 2000) / 100.0).alias("pair_median_distance"),
        (draw(10, 6000) / 100.0).alias("pair_median_duration"),
        (draw(13, 6000) / 100.0).alias("pair_hour_median_duration"),
        draw(14, 30).alias("pickup_zone_trips_prev_hour"),
        (draw(11, 2000) / 100.0).alias("trip_distance"),
        (draw(12, 6000) / 100.0).alias("duration_min"),
        F.to_date(pickup).alias("pickup_date"),
    )
    return frame.select(*[F.col(f.name).cast(f.dataType) for f in TRIP_FEATURES.fields])


# The query alone in a fresh interpreter: what `lake query` costs without the other stages' CLI imports.
LIBRARY_CALL = (
    "import sys; import pyarrow.parquet as pq; from lake import Lake, load_conf; from lake.query import run_query; "
    "pq.write_table(run_query(Lake(load_conf()), sys.argv[1], engine=sys.argv[2]).table, sys.argv[3])"
)


def cold_run(how: str, engine: str, lake_root: str, output: Path) -> float:
    """Seconds from exec to exit of a fresh process answering QUERY: the `lake query` CLI, or the library call."""
    if how == "cli":
        command = [sys.executable, "-m", "cli.main", "query", QUERY, "--engine", engine, "--format", "parquet",
                   "--output", str(output)]  # fmt: skip
    else:
        command = [sys.executable, "-c", LIBRARY_CALL, QUERY, engine, str(output)]
    env = {**os.environ, "LAKE_ROOT": lake_root}
    started = time.perf_counter()
    subprocess.run(command, cwd=PROJECT, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def warm_run(lake: Lake, engine: str) -> float:
    started = time.perf_counter()
    run_query(lake, QUERY, engine=engine)
    return time.perf_counter() - started


def machine() -> str:
    memory = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    load = Path("/proc/loadavg").read_text().split()[:3]
    return f"{os.cpu_count()} CPUs (nproc), {memory.split(':')[1].strip()} memory, load average {' '.join(load)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine and mode; the median is reported")
    args = parser.parse_args()
    machine_before = machine()
    with tempfile.TemporaryDirectory(prefix="bench-query-") as folder:
        root = str(Path(folder) / "lake")
        lake = Lake(load_conf(overrides={"lake.root": root}))
        started = time.perf_counter()
        lake.overwrite(TABLE, synthetic_features(lake.spark, args.rows))
        generated = time.perf_counter() - started
        size = sum(p.stat().st_size for p in Path(lake.path(TABLE)).rglob("*.parquet"))
        outputs = {engine: Path(folder) / f"{engine}.parquet" for engine in ENGINES}
        times = {}
        for how in ("cli", "library"):
            times[f"cold ({how})"] = {
                engine: [cold_run(how, engine, root, outputs[engine]) for _ in range(args.repeat)] for engine in ENGINES
            }
        identical = comparable(pq.read_table(outputs["fast"])) == comparable(pq.read_table(outputs["spark"]))
        times["warm"] = {e: [warm_run(lake, e) for _ in range(args.repeat + 1)][1:] for e in ENGINES}
    lines = [
        "# `lake query`: fast path (deltalake + DuckDB) vs Spark",
        "",
        f"Command: `.venv/bin/python bench/bench_query.py --rows {args.rows} --repeat {args.repeat}`",
        "",
        f"Machine: {machine_before} at the start; {machine()} at the end (shared with other jobs).",
        "",
        f"Table: `{TABLE}`, {args.rows:,} synthetic rows over 2019 (365 daily partitions), "
        f"{size / 1e6:.1f} MB of Parquet, written by Spark + Delta in {generated:.1f} s.",
        "",
        f"Query: `{QUERY}`",
        "",
        "| mode | fast path (s) | Spark (s) | Spark / fast |",
        "|---|---:|---:|---:|",
    ]
    for mode, runs in times.items():
        fast, spark = statistics.median(runs["fast"]), statistics.median(runs["spark"])
        lines.append(f"| {MODES[mode]} | {fast:.2f} | {spark:.2f} | {spark / fast:.1f}x |")
    lines += [
        "",
        f"Medians of {args.repeat} runs each (warm: after one unmeasured run). Every run, in seconds: "
        + "; ".join(f"{mode} {e}: {[round(t, 2) for t in runs[e]]}" for mode, runs in times.items() for e in ENGINES)
        + ".",
        "",
        f"Results of the two engines identical (same columns, type families, sorted rows): {identical}.",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
