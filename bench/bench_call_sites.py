"""PySpark's call-site capture on and off, alternating rounds in one session: what it costs a small stage round.

PySpark records the Python line that builds each column and frame, for the "DataFrame" context of a runtime error
(`spark.python.sql.dataFrameDebugging.enabled`, on by default): an origin set and cleared in the JVM around every
such call, 13 Py4J round trips for an `F.col` instead of 3. PySpark reads the setting once per process, so this bench
flips its cached value between rounds: the same lake, JVM and warm-up for both. Rounds run ingest -> silver -> gold
on one generated daily file each (bench_fixed_cost.py's test configuration and data); the first two are left out.

    .venv/bin/python bench/bench_call_sites.py --days 22
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyspark.errors.utils as pyspark_errors

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_fixed_cost import WARM_FROM, jvm_cpu_seconds, small_lake, small_run_arguments  # noqa: E402

from pipelines.bronze import run_ingest  # noqa: E402
from pipelines.gold import run_gold  # noqa: E402
from pipelines.silver import run_silver  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = small_run_arguments(__doc__.splitlines()[0]).parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench_call_sites"))
    try:
        lake, files = small_lake(args, root)
        rounds: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
        for index, path in enumerate(files):
            capture = index % 2 == 0
            pyspark_errors._enable_debugging_cache = capture  # what PySpark read from the setting, per process
            wall, python, jvm = time.perf_counter(), time.process_time(), jvm_cpu_seconds(lake)
            run_ingest(lake, [str(path)])
            run_silver(lake)
            run_gold(lake)
            spent = (time.perf_counter() - wall, time.process_time() - python, jvm_cpu_seconds(lake) - jvm)
            print(f"round {index + 1}, call sites {'on' if capture else 'off'}: wall {spent[0]:.2f} s, "
                  f"Python CPU {spent[1]:.2f} s, JVM CPU {spent[2]:.2f} s", flush=True)  # fmt: skip
            if index >= WARM_FROM:
                rounds[capture].append(spent)
        print("| call sites | rounds | wall (s), median / mean | Python CPU (s), median | JVM CPU (s), median |")
        print("|---|---:|---:|---:|---:|")
        for capture, spent in rounds.items():
            wall, python, jvm = ([s[i] for s in spent] for i in range(3))
            label = "on (PySpark default)" if capture else "off (conf/test.yaml)"
            print(f"| {label} | {len(spent)} | {statistics.median(wall):.2f} / {statistics.mean(wall):.2f} | "
                  f"{statistics.median(python):.2f} | {statistics.median(jvm):.2f} |")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
