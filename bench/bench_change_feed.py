"""Reading an append-only change range: Delta's change-feed reader against lake.read_changes' scan of the added files.

Silver reads bronze's new rows through the change feed, and bronze only appends. Delta's reader (DeltaCDFRelation)
hands Spark rows one by one; `lake.read_changes` reads a range of appends as a scan of the files it added
(lake/changes.py). This ingests generated trips once, then alternates the two readers in one warm session:
a scan of the rows (a noop write), and silver's typed and checked batch built and materialized from them, as
`build_silver` does. Both readers must give the same rows (count and a hash sum over every column).

    .venv/bin/python bench/bench_change_feed.py --rows 1000000 --rounds 4
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_scale import cached_generate, cpu_model  # noqa: E402  (bench/ is on the path when run as a script)
from fingerprints import fingerprint  # noqa: E402
from pyspark.sql import DataFrame  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from lake import Lake, load_conf  # noqa: E402
from lake.delta import CDF_COLUMNS  # noqa: E402
from pipelines.bronze import run_ingest  # noqa: E402
from pipelines.common import materialize, release  # noqa: E402
from pipelines.rules import violations  # noqa: E402
from pipelines.silver import quarantine as q  # noqa: E402
from pipelines.silver.run import ZONE_REFERENCE, load_zones, rules_for  # noqa: E402
from pipelines.silver.transform import RAW, prepare_batch, with_row_ids  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "change_feed.md"
TABLE = "bronze.trips"


def delta_feed(lake: Lake, end: int) -> DataFrame:
    """What lake.read_changes returned before: Delta's change-feed reader, inserts only."""
    feed = (
        lake.spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0)
        .option("endingVersion", end).load(lake.path(TABLE))
    )  # fmt: skip
    return feed.where(F.col("_change_type").isin("insert", "update_postimage")).drop(*CDF_COLUMNS)


def timed(action) -> float:  # noqa: ANN001
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=4, help="rounds per reader; the first is reported apart")
    parser.add_argument("--data", default="/tmp/bench_scale_data", help="generated files (shared with bench_scale)")
    parser.add_argument("--root", default="/tmp/bench_change_feed_lake")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    data = Path(args.data) / f"rows{args.rows}_days31_seed0_rate0.01_csv"
    cached_generate(data, rows=args.rows, start=date(2019, 1, 1), days=31, file_format="csv", seed=0,
                    defect_rate=0.01)  # fmt: skip
    shutil.rmtree(args.root, ignore_errors=True)
    load_start = os.getloadavg()
    lake = Lake(load_conf(overrides={"lake.root": args.root, "silver.data_docs": False}))
    run_ingest(lake, [str(data)])
    end = lake.version(TABLE)
    zones = load_zones(lake)
    zone_ids = [row.zone_id for row in zones.select("zone_id").collect()]
    rules = [rule.bound({ZONE_REFERENCE: zone_ids}) for rule in rules_for(lake)]
    drop = [rule.name for rule in rules if rule.action == "drop"]

    def batch(rows: DataFrame) -> None:
        flagged = prepare_batch(rows, zones).withColumn(q.VIOLATIONS, violations(rules))
        release([materialize(with_row_ids(flagged.withColumn(RAW, q.raw_if_rejected(drop))))])

    readers = {
        "Delta's change-feed reader": lambda: delta_feed(lake, end),
        "lake.read_changes": lambda: lake.read_changes(TABLE, None, end),
    }
    same = fingerprint(readers["Delta's change-feed reader"]()) == fingerprint(readers["lake.read_changes"]())
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for name, read in readers.items():
            scan = timed(lambda: read().write.format("noop").mode("overwrite").save())  # noqa: B023
            times.setdefault((name, "scan"), []).append(scan)
            times.setdefault((name, "batch"), []).append(timed(lambda: batch(read())))  # noqa: B023
            print(name, {k[1]: round(v[-1], 1) for k, v in times.items() if k[0] == name}, flush=True)
    lines = [
        "# Reading bronze's new rows: Delta's change-feed reader against a scan of the added files",
        "",
        f"- command: `python bench/bench_change_feed.py --rows {args.rows} --rounds {args.rounds}`",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} CPUs, "
        f"{platform.platform()}, {cpu_model()}",
        f"- spark: {lake.conf.get('spark.master')}, driver memory {lake.conf.get('spark.driver_memory')}; load "
        f"average at the start {load_start[0]:.1f}, at the end {os.getloadavg()[0]:.1f}",
        f"- data: {args.rows:,} generated trips in 31 daily CSV files, ingested once (bronze version {end}); the "
        f"readers alternate in one session, {args.rounds} rounds; both give the same rows (count and hash sum): "
        f"**{same}**",
        "",
        "| reader | what | first round (s) | median of the later rounds (s) |",
        "|---|---|---:|---:|",
    ]
    for (name, what), values in times.items():
        later = statistics.median(values[1:]) if len(values) > 1 else float("nan")
        label = "scan (noop write)" if what == "scan" else "silver's typed batch, materialized"
        lines.append(f"| {name} | {label} | {values[0]:.1f} | {later:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.output).write_text(text)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
