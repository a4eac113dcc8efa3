"""Silver stage throughput (rows/s) and the share of its time spent in Great Expectations validation.

Builds a bronze table of a few million rows by replicating the real TLC samples with shifted keys (each replica's
timestamps move by whole milliseconds, so every replica is a distinct trip with the same rule outcomes), runs
`run_silver` once on it and writes bench/results/silver.md.

    .venv/bin/python bench/bench_silver.py --replicas 25          # 12 x 10,000 real rows x 25 = 3,000,000 rows
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import functions as F

from lake import Lake, load_conf
from pipelines.bronze import run_ingest
from pipelines.silver import run_silver

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "nyc_tlc" / "csv" / "yellow"
RESULTS = Path(__file__).resolve().parent / "results" / "silver.md"
MONTHS = [f"yellow_tripdata_sample_2019-{m:02d}.csv" for m in range(1, 13)]
MAX_REPLICAS = 999  # the shift is a millisecond fraction: .001 to .999


def memory_gib() -> float:
    with open("/proc/meminfo") as meminfo:
        kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    return kib / 1024 / 1024


def replicate(lake: Lake, replicas: int) -> int:
    """Appends `replicas - 1` shifted copies of bronze.trips to itself in one commit; returns the bronze row count."""
    original = lake.read("bronze.trips")
    copies = lake.spark.range(1, replicas).withColumnRenamed("id", "replica")
    shifted = original.crossJoin(copies)
    fraction = F.format_string(".%03d", F.col("replica"))
    for column in ("pickup_datetime", "dropoff_datetime"):
        shifted = shifted.withColumn(column, F.concat(F.col(column), fraction))
    shifted = shifted.withColumn("_source_file", F.concat(F.col("_source_file"), F.lit("#replica"), F.col("replica")))
    shifted = shifted.withColumn("_source_hash", F.sha2(F.concat(F.col("_source_hash"), F.col("replica")), 256))
    lake.append("bronze.trips", shifted.select(*original.columns))
    return lake.read("bronze.trips").count()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=25, help="copies of the 120,000 sample rows (default 25)")
    parser.add_argument("--root", default="/tmp/bench_silver_lake", help="lake root (deleted first)")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    if not 1 <= args.replicas <= MAX_REPLICAS:
        parser.error(f"--replicas must be between 1 and {MAX_REPLICAS}")
    shutil.rmtree(args.root, ignore_errors=True)
    conf = load_conf(overrides={"lake.root": args.root, "silver.data_docs": False})
    lake = Lake(conf)
    run_ingest(lake, [str(SAMPLES / month) for month in MONTHS])
    rows = replicate(lake, args.replicas)
    load_before = os.getloadavg()
    started = time.perf_counter()
    result = run_silver(lake)
    seconds = time.perf_counter() - started
    ge = result.details["ge_seconds"]
    load_after = os.getloadavg()
    c = result.counts
    phases = result.details.get("phase_seconds", {})
    lines = [
        "# Silver stage benchmark",
        "",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {os.cpu_count()} CPUs (nproc), {memory_gib():.1f} GiB memory, {platform.platform()}",
        f"- spark: master {conf.get('spark.master')}, driver memory {conf.get('spark.driver_memory')}, "
        f"shuffle partitions {conf.get('spark.shuffle_partitions')}",
        f"- load average (1, 5, 15 min) before: {' '.join(f'{x:.1f}' for x in load_before)}, after: "
        f"{' '.join(f'{x:.1f}' for x in load_after)} "
        "(the machine is shared; other Spark jobs were running)",
        f"- bronze rows: {rows:,} (12 real monthly samples x {args.replicas} shifted replicas)",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| rows read | {c['bronze_read']:,} |",
        f"| silver rows written | {c['silver_written']:,} |",
        f"| quarantined | {c['quarantined']:,} |",
        f"| duplicates | {c['duplicates']:,} |",
        f"| superseded | {c.get('superseded', 0):,} |",
        f"| silver stage wall time | {seconds:.1f} s |",
        f"| throughput | {c['bronze_read'] / seconds:,.0f} rows/s |",
        f"| Great Expectations validation | {ge:.1f} s |",
        f"| GE share of the stage | {ge / seconds:.1%} |",
        f"| GE added to the rest of the stage | {ge / (seconds - ge):.1%} (target: at most 20%) |",
        *[f"| phase: {name} | {value:.1f} s |" for name, value in phases.items()],
        "",
        "One measured run (no warm-up, no repetition): read it as an order of magnitude on a loaded machine.",
    ]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
