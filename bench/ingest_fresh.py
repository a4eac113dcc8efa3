"""Times one ingest of a folder of raw files into a new lake, and the part of it that reports each file's counts.

For side-by-side comparisons of two trees: run it from each tree's folder in turn (a fresh process each time), on
the same files (e.g. the cache `bench/bench_scale.py --rows 5000000` generated), and compare; the counts printed
(rows, malformed rows) and, with --fingerprint, bronze's fingerprints must be equal.

    cd <tree> && python /path/to/bench/ingest_fresh.py --files /tmp/bench_scale_data/rows5000000_... --root /tmp/l
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.getcwd())  # the tree to measure is the current folder, not necessarily this file's

from fingerprints import fingerprint  # noqa: E402  (bench/ is on the path when run as a script)

from lake import Lake, load_conf  # noqa: E402
from pipelines.bronze import ingest_log, run_ingest  # noqa: E402

COUNT_STEPS = ("counts_in_bronze", "landed_counts")  # the per-file counts: a scan of bronze, or the log's statistics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", required=True, help="a folder of raw trip files")
    parser.add_argument("--root", required=True, help="lake root (deleted first)")
    parser.add_argument("--label", default=os.path.basename(os.getcwd()))
    parser.add_argument("--fingerprint", action="store_true", help="then print bronze's fingerprint")
    args = parser.parse_args(argv)
    shutil.rmtree(args.root, ignore_errors=True)
    lake = Lake(load_conf(overrides={"lake.root": args.root}))
    spent: dict[str, float] = {}
    for name in COUNT_STEPS:
        if hasattr(ingest_log, name):
            setattr(ingest_log, name, _timed(name, getattr(ingest_log, name), spent))
    started = time.perf_counter()
    result = run_ingest(lake, [args.files])
    seconds = time.perf_counter() - started
    steps = ", ".join(f"{name} {value:.1f} s" for name, value in spent.items())
    rows, corrupt = result.counts["rows"], result.counts["corrupt_rows"]
    print(f"{args.label}: ingest {seconds:.1f} s ({steps}); rows {rows:,}, malformed {corrupt:,}", flush=True)
    if args.fingerprint:  # after the timing: bronze's rows but for the run's own id and time
        bronze = lake.read("bronze.trips").drop("_ingested_at", "_run_id")
        print(f"{args.label}: bronze fingerprint {fingerprint(bronze)}", flush=True)
    return 0


def _timed(name, function, spent: dict[str, float]):  # noqa: ANN001, ANN202
    def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

    return timed


if __name__ == "__main__":
    raise SystemExit(main())
