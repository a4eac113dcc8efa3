"""The cost of a stage run's bookkeeping commits on a tiny table: a watermark move as a one-row MERGE (before) and as
a blind append (now, `Lake.set_watermark`), and the watermark read, in one warm session.

Each line is over --moves calls after --warm untimed ones, alternating the two writes so that both see the same JVM
state; the two reads take turns at being the first after the commits (that one brings the table's snapshot up to
date). With 60 moves the appends include one auto compaction (after 50 files), which the mean carries. Run on an
idle machine:

    .venv/bin/python bench/bench_bookkeeping.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyspark.sql import functions as F  # noqa: E402

from lake import Lake, load_conf  # noqa: E402
from lake.catalog import WATERMARKS  # noqa: E402


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--warm", type=int, default=3)
    args = parser.parse_args(argv)
    load = os.getloadavg()
    lake = Lake(load_conf("test", overrides={"lake.root": tempfile.mkdtemp(prefix="bench_bookkeeping")}))

    def merge_move(version: int) -> None:  # what set_watermark did before
        row = lake.spark.createDataFrame(
            [("merged", "bronze.trips", version)], "consumer string, source string, source_version long"
        ).withColumn("updated_at", F.current_timestamp())
        lake.merge(WATERMARKS, row, ["consumer", "source"])

    def first_row_read() -> None:  # what Lake.watermark did before: the one row of the key
        lake.read(WATERMARKS).where("consumer = 'merged' AND source = 'bronze.trips'").select("source_version").first()

    seconds: dict[str, list[float]] = {
        "move: MERGE of one row (before)": [],
        "move: blind append (now)": [],
        "read: the key's one row (before)": [],
        "read: the key's latest row (now)": [],
    }
    for i in range(args.warm + args.moves):
        merge = timed(lambda i=i: merge_move(i))
        append = timed(lambda i=i: lake.set_watermark("appended", "bronze.trips", i))
        reads = [first_row_read, lambda: lake.watermark("appended", "bronze.trips")]
        if i % 2:  # the first read after the commits brings the table's snapshot up to date: take turns
            read_now, read_before = timed(reads[1]), timed(reads[0])
        else:
            read_before, read_now = timed(reads[0]), timed(reads[1])
        if i >= args.warm:
            for key, value in zip(seconds, (merge, append, read_before, read_now), strict=True):
                seconds[key].append(value)
    assert lake.watermark("appended", "bronze.trips") == args.warm + args.moves - 1
    end = os.getloadavg()[0]
    print(f"load average at the start {load[0]:.1f}, at the end {end:.1f}; {args.moves} timed calls each")
    print("| watermark | median (s) | mean (s) | min (s) | max (s) |\n|---|---:|---:|---:|---:|")
    for key, values in seconds.items():
        stats = (statistics.median(values), statistics.mean(values), min(values), max(values))
        print(f"| {key} | " + " | ".join(f"{v:.2f}" for v in stats) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
