"""A fresh lake's first stage runs against its later ones, in one warm session (the test configuration).

Most tests build a lake of their own, so most of the suite's silver runs are a lake's first or second. This runs
ingest -> silver -> gold three times (one daily file each) in each of --lakes new lakes, one session, and prints
every run's seconds and the median over the lakes after the first (whose runs also warm the JVM up).

    .venv/bin/python bench/bench_fresh_lake.py [--lakes 5] [--set spark.some.setting=value]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_fixed_cost import small_lake, small_run_arguments  # bench/ is on the path when run as a script

from lake import Lake
from pipelines.bronze import run_ingest
from pipelines.gold import run_gold
from pipelines.silver import run_silver


def main(argv: list[str] | None = None) -> int:
    parser = small_run_arguments(__doc__.splitlines()[0])
    parser.add_argument("--lakes", type=int, default=5, help="fresh lakes, one after the other")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="fresh-lake-"))
    try:
        first, files = small_lake(args, root / "lake0")
        seconds: dict[str, list[float]] = {}
        for number in range(args.lakes):
            lake = Lake(first.conf.with_overrides({"lake.root": str(root / f"lake{number + 1}")}), first.spark)
            for day, file in enumerate(files[:3], start=1):
                for stage, run in (
                    ("ingest", lambda: run_ingest(lake, [str(file)])),  # noqa: B023 - called at once
                    ("silver", lambda: run_silver(lake)),  # noqa: B023
                    ("gold", lambda: run_gold(lake)),  # noqa: B023
                ):
                    started = time.perf_counter()
                    run()
                    seconds.setdefault(f"{stage} {day}", []).append(time.perf_counter() - started)
        print(f"| run of a fresh lake | seconds, lakes 1-{args.lakes} | median of lakes 2-{args.lakes} |")
        print("|---|---|---:|")
        for name, values in seconds.items():
            warm = statistics.median(values[1:]) if len(values) > 1 else values[0]
            print(f"| {name} | {' '.join(f'{value:.2f}' for value in values)} | {warm:.2f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
