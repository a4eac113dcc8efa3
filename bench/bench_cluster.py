"""local[2] vs a 2-worker Spark standalone cluster on this machine: the same stages on the same generated trips.

Each master gets a driver process of its own (a SparkSession's master is fixed when it starts) running ingest ->
silver -> gold (and train with --train) in a fresh lake; the cluster (one master, two 1-core workers on 127.0.0.1)
comes from lake/standalone.py. Both runs have 2 cores in all; the table compares stage times and checks that both
lakes hold the same silver and gold row counts. Writes bench/results/cluster.md and prints it.

    .venv/bin/python bench/bench_cluster.py --rows 500000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "cluster.md"
TABLES = ("bronze.trips", "silver.trips", "silver.quarantine", "gold.trip_features", "gold.zone_daily")


def child(args: argparse.Namespace) -> None:
    """One driver: the stages on a fresh lake, timings and row counts as one JSON line on stdout."""
    from bench_scale import fresh_lake

    from pipelines.bronze import run_ingest
    from pipelines.gold import run_gold
    from pipelines.silver import run_silver
    from pipelines.train import run_train

    started = time.perf_counter()
    lake = fresh_lake(Path(args.root))
    lake.spark  # noqa: B018 - the session (and the cluster's executors) start here, outside the timed stages
    seconds = {"session start": time.perf_counter() - started}
    files = sorted(str(p) for p in Path(args.data).glob("*.csv"))
    stages = [("ingest", lambda: run_ingest(lake, files)), ("silver", lambda: run_silver(lake)),
              ("gold", lambda: run_gold(lake))]  # fmt: skip
    stages += [("train", lambda: run_train(lake))] if args.train else []
    for name, call in stages:
        clock = time.perf_counter()
        call()
        seconds[name] = time.perf_counter() - clock
        print(f"{args.master}: {name} {seconds[name]:.1f} s", file=sys.stderr, flush=True)
    counts = {table: lake.read(table).count() for table in TABLES}
    print(json.dumps({"seconds": seconds, "counts": counts, "parallelism": lake.spark.sparkContext.defaultParallelism}))


def skew(lake_root: str) -> dict[str, float]:
    """How concentrated silver.trips is on its grouping keys: the largest zone pair's, pickup zone's and day's share."""
    import duckdb
    from deltalake import DeltaTable

    connection = duckdb.connect()
    connection.register("trips", DeltaTable(f"{lake_root}/silver/trips").to_pyarrow_dataset())
    total, pairs, pair, zone, day = connection.sql(
        "SELECT (SELECT count(*) FROM trips), "
        "(SELECT count(*) FROM (SELECT 1 FROM trips GROUP BY pickup_zone_id, dropoff_zone_id)), "
        "(SELECT max(n) FROM (SELECT count(*) n FROM trips GROUP BY pickup_zone_id, dropoff_zone_id)), "
        "(SELECT max(n) FROM (SELECT count(*) n FROM trips GROUP BY pickup_zone_id)), "
        "(SELECT max(n) FROM (SELECT count(*) n FROM trips GROUP BY pickup_date))"
    ).fetchall()[0]
    return {"pairs": pairs, "pair": pair / total, "zone": zone / total, "day": day / total}


def run_driver(args: argparse.Namespace, master: str, extra_env: dict[str, str]) -> dict:
    command = [sys.executable, __file__, "--child", "--master", master, "--data", args.data,
               "--root", f"{args.root}-{'local' if master.startswith('local') else 'cluster'}"]  # fmt: skip
    command += ["--train"] if args.train else []
    env = {**os.environ, "SPARK_MASTER": master, "PYSPARK_PYTHON": sys.executable, **extra_env}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(args: argparse.Namespace, rows: int, local: dict, cluster: dict, loads: tuple, shares: dict) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    stages = [s for s in local["seconds"] if s != "session start"]
    lines = [
        "## Cluster: local[2] vs a 2-worker standalone cluster on one machine",
        "",
        f"Command: `.venv/bin/python bench/bench_cluster.py --rows {rows}{' --train' if args.train else ''}` on "
        f"{datetime.now(timezone.utc):%Y-%m-%d} ({machine}; load average {loads[0]:.1f} at the start, "
        f"{loads[1]:.1f} at the end). {rows:,} generated trips in daily CSV files; each master runs in a driver "
        "process of its own on a fresh lake. The cluster is one master and two workers of 1 core each "
        "(`lake/standalone.py`, executors of 2 GiB): 2 cores in all, as `local[2]`.",
        "",
        "| stage | local[2] s | cluster s | cluster / local |",
        "|---|---:|---:|---:|",
    ]
    for stage in ["session start", *stages]:
        a, b = local["seconds"][stage], cluster["seconds"][stage]
        lines.append(f"| {stage} | {a:.1f} | {b:.1f} | {b / a:.2f}x |")
    total_local = sum(local["seconds"][s] for s in stages)
    total_cluster = sum(cluster["seconds"][s] for s in stages)
    lines.append(f"| **stages** | **{total_local:.1f}** | **{total_cluster:.1f}** | "
                 f"**{total_cluster / total_local:.2f}x** |")  # fmt: skip
    same = local["counts"] == cluster["counts"]
    end_to_end = {name: rows / sum(run["seconds"][s] for s in ("ingest", "silver", "gold"))
                  for name, run in (("local", local), ("cluster", cluster))}  # fmt: skip
    lines += [
        "",
        f"Rows per table ({'identical' if same else 'DIFFERENT'} in both lakes): "
        + ", ".join(f"{t} {n:,}" for t, n in local["counts"].items())
        + f". End-to-end rows/s (ingest + silver + gold): local {end_to_end['local']:,.0f}, "
        f"cluster {end_to_end['cluster']:,.0f}.",
        "",
        "What it shows: the same code and configuration but the master URL give the same tables. On one 2-core "
        "machine the cluster cannot be faster: its driver and two executor JVMs share the 2 cores that local[2] "
        "gives to one JVM, tasks are launched over RPC, and shuffle blocks and broadcasts cross process boundaries "
        f"(stages {total_cluster / total_local:.2f}x local's time here). What scales is the work per task: tables are "
        "partitioned by pickup date, no stage collects data-sized results on the driver, and the zone lookup is "
        "broadcast, so adding workers adds tasks running at once.",
        "",
        f"Skew (silver.trips of this run): {shares['pairs']:,} zone pairs, the largest holds {shares['pair']:.2%} of "
        f"the trips, the busiest pickup zone {shares['zone']:.1%}, the busiest day {shares['day']:.1%}. With 200 "
        f"shuffle partitions (conf/cluster.yaml) a partition's even share is 0.5%: the largest pair is "
        f"{shares['pair'] / 0.005:.1f}x that, so the pair aggregates need no salting. Groupings by pickup zone alone "
        "are aggregated partially before the shuffle (a zone's rows reach its reducer as one partial row per task), "
        "and adaptive query execution splits skewed join partitions.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--train", action="store_true", help="also time run_train")
    parser.add_argument("--data", default="/tmp/bench_cluster_data", help="generated files (kept as a cache)")
    parser.add_argument("--root", default="/tmp/bench_cluster_lake")
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--master", default="local[2]", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    from bench_scale import cached_generate

    from lake.standalone import StandaloneCluster

    cached_generate(Path(args.data), rows=args.rows, start=date(2019, 1, 1), days=args.days, seed=0,
                    defect_rate=0.01)  # fmt: skip
    start_load = os.getloadavg()[0]
    local = run_driver(args, "local[2]", {})
    with StandaloneCluster(workers=2, cores=1, memory="2g") as cluster:
        remote = run_driver(args, cluster.url, {"SPARK_LOCAL_IP": "127.0.0.1", "SPARK_EXECUTOR_MEMORY": "2g"})
    shares = skew(f"{args.root}-local")
    text = report(args, args.rows, local, remote, (start_load, os.getloadavg()[0]), shares)
    Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
