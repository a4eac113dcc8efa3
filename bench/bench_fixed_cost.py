"""The fixed cost of small stage runs (what the test suite pays per run), under a Spark setting or without it.

Generates 200 trips over 5 daily files, then runs ingest -> silver -> gold once per file in one session (the test
configuration, a fresh lake) and prints each round's seconds and the median of the warm rounds (from the third
on). Each call is one JVM: compare settings in separate calls, one after the other, on an idle machine.

    .venv/bin/python bench/bench_fixed_cost.py
    .venv/bin/python bench/bench_fixed_cost.py --set spark.sql.codegen.cache.maxEntries=100
    TZ=America/New_York .venv/bin/python bench/bench_fixed_cost.py --days 40   # a machine outside UTC
    .venv/bin/python bench/bench_fixed_cost.py --set spark.sql.codegen.factoryMode=FALLBACK \
        --set spark.sql.codegen.wholeStage=true   # generated code, as outside the tests

--set adds to the test configuration's `spark.extra`; the driver JVM's CPU seconds are printed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from proc_stats import tree_cpu  # noqa: E402

from lake import Lake, load_conf  # noqa: E402
from pipelines.bronze import run_ingest  # noqa: E402
from pipelines.generate import generate  # noqa: E402
from pipelines.gold import run_gold  # noqa: E402
from pipelines.silver import run_silver  # noqa: E402

WARM_FROM = 2  # rounds before this one pay the JVM's first compilations


def jvm_cpu_seconds(lake: Lake) -> float:
    """User + system CPU seconds of the driver JVM so far (local mode: the driver runs the tasks too), from /proc."""
    pid = lake.spark.sparkContext._gateway.proc.pid  # spark-submit execs the JVM in this process
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def small_run_arguments(description: str) -> argparse.ArgumentParser:
    """The options of the small-run benches (this one, profile_small_run.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--set", action="append", default=[], help="a spark.* setting, key=value (repeatable)")
    parser.add_argument("--data", default="/tmp/bench_fixed_cost_data")
    parser.add_argument("--days", type=int, default=5, help="daily files, one round each (40 rounds per 40 commits)")
    return parser


def small_lake(args: argparse.Namespace, root: Path) -> tuple[Lake, list[Path]]:
    """A fresh lake at root in the test configuration (plus --set) and the daily files (40 trips each, generated
    once per --days)."""
    conf = load_conf("test")
    extra = {**(conf.get("spark.extra") or {}), **dict(item.split("=", 1) for item in args.set)}
    data = Path(args.data if args.days == 5 else f"{args.data}_{args.days}")
    if not data.exists():
        generate(data, 40 * args.days, date(2019, 1, 1), days=args.days, seed=1, defect_rate=0.05)
    lake = Lake(conf.with_overrides({"lake.root": str(root), "spark.extra": extra}))
    return lake, sorted(p for p in data.iterdir() if p.suffix == ".csv")


def main(argv: list[str] | None = None) -> int:
    args = small_run_arguments(__doc__.splitlines()[0]).parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench_fixed_cost_lake"))
    try:
        lake, files = small_lake(args, root)
        extra = lake.conf.get("spark.extra")
        rounds = []
        for path in files:
            seconds = {}
            for stage, call in (
                ("ingest", lambda path=path: run_ingest(lake, [str(path)])),
                ("silver", lambda: run_silver(lake)),
                ("gold", lambda: run_gold(lake)),
            ):
                started = time.perf_counter()
                call()
                seconds[stage] = time.perf_counter() - started
            rounds.append(seconds)
            print(f"round {len(rounds)}: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()), flush=True)
        warm = rounds[WARM_FROM:]
        medians = {stage: statistics.median(r[stage] for r in warm) for stage in warm[0]}
        print(f"settings {args.set or 'as configured'} (spark.extra {extra}): median of {len(warm)} warm rounds: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in medians.items())
              + f"; driver JVM CPU {jvm_cpu_seconds(lake):.1f} s"
              + "; CPU of this process and its descendants {:.1f} s ({})".format(*tree_cpu())
              + f"; the JVM's zone {lake.spark.sparkContext._jvm.java.util.TimeZone.getDefault().getID()}")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
