"""Where a warm small stage run waits on the JVM, by the line of ours that called it (what the test suite pays per run).

Runs ingest -> silver -> gold once per generated daily file in one session (the test configuration, a fresh lake,
as bench_fixed_cost.py) and, in the last round, times every Py4J call and charges it to the innermost lake/ or
pipelines/ line on the Python stack. A Delta write, a materialized frame or a collect shows as one line with its
whole cost: planning, Spark jobs and the commit. Waits of concurrent threads (gold's four writes) add up past the
wall time.

    .venv/bin/python bench/profile_small_run.py
    .venv/bin/python bench/profile_small_run.py --top 10 --set spark.sql.adaptive.enabled=false
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from pathlib import Path

import py4j.clientserver

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_fixed_cost import small_lake, small_run_arguments  # noqa: E402  (bench/ is on the path as a script)

from pipelines.bronze import run_ingest  # noqa: E402
from pipelines.gold import run_gold  # noqa: E402
from pipelines.silver import run_silver  # noqa: E402

OURS = (str(ROOT / "lake") + "/", str(ROOT / "pipelines") + "/")


class JvmWaits:
    """Py4J round trips while on, per calling line of ours: [calls, seconds]."""

    def __init__(self) -> None:
        self.on = False
        self.lines: dict[str, list] = defaultdict(lambda: [0, 0.0])
        original = py4j.clientserver.ClientServerConnection.send_command

        def timed(connection, command):
            if not self.on:
                return original(connection, command)
            started = time.perf_counter()
            try:
                return original(connection, command)
            finally:
                line = self.caller()
                self.lines[line][0] += 1
                self.lines[line][1] += time.perf_counter() - started

        py4j.clientserver.ClientServerConnection.send_command = timed

    @staticmethod
    def caller() -> str:
        for frame in reversed(traceback.extract_stack(limit=60)):
            if frame.filename.startswith(OURS):
                return f"{Path(frame.filename).relative_to(ROOT)}:{frame.lineno} {frame.name}"
        return "(no line of ours: PySpark's own calls)"


def main(argv: list[str] | None = None) -> int:
    parser = small_run_arguments(__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=8, help="lines shown per stage")
    args = parser.parse_args(argv)
    waits = JvmWaits()
    root = Path(tempfile.mkdtemp(prefix="profile_small_run"))
    try:
        lake, files = small_lake(args, root)
        for index, path in enumerate(files):
            last = index == len(files) - 1
            for stage, call in (
                ("ingest", lambda path=path: run_ingest(lake, [str(path)])),
                ("silver", lambda: run_silver(lake)),
                ("gold", lambda: run_gold(lake)),
            ):
                waits.lines.clear()
                waits.on = last
                started = time.perf_counter()
                call()
                seconds = time.perf_counter() - started
                waits.on = False
                if not last:
                    continue
                total = sum(seconds for _, seconds in waits.lines.values())
                calls = sum(count for count, _ in waits.lines.values())
                print(f"{stage}: {seconds:.2f} s, of which {total:.2f} s in {calls:,} Py4J calls (round {index + 1})")
                ranked = sorted(waits.lines.items(), key=lambda item: -item[1][1])
                for line, (count, spent) in ranked[: args.top]:
                    print(f"  {spent * 1000:7.0f} ms {count:6,} calls  {line}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
