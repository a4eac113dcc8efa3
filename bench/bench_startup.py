"""A fresh driver's first minute, with and without the class archive (lake/classarchive.py), in alternating pairs.

Each run is a new process (a new JVM): the session's start (to a first query), then one ingest -> silver -> gold
round on 300 generated trips in 3 daily files, the test configuration, a fresh lake: what every `lake` command, test
worker and crash-test child pays before its JVM is warm. `--pairs` archive / no-archive pairs, alternately; writes
bench/results/startup.md. Needs the archive (`python -m lake.classarchive`, which `make setup` runs).

    .venv/bin/python bench/bench_startup.py --pairs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "startup.md"
PHASES = ("session", "ingest", "silver", "gold")


def one_run(archive: bool, data: str) -> dict[str, float]:
    """In this process: the session and one round; returns seconds per phase."""
    from lake import Lake, classarchive, load_conf
    from pipelines.bronze import run_ingest
    from pipelines.gold import run_gold
    from pipelines.silver import run_silver

    root = tempfile.mkdtemp(prefix="bench_startup_lake")
    overrides = {"lake.root": root, "silver.data_docs": False}
    if not archive:
        overrides["spark.class_archive"] = "off"
    conf = load_conf("test", overrides=overrides)
    path = classarchive.archive_path(conf)
    if archive and (path is None or not path.is_file()):
        raise SystemExit(f"no class archive at {path}: run `python -m lake.classarchive` first")
    seconds = {}
    started = time.perf_counter()
    lake = Lake(conf)
    lake.spark.sql("SELECT 1").collect()
    seconds["session"] = time.perf_counter() - started
    for phase, call in (
        ("ingest", lambda: run_ingest(lake, [data])),
        ("silver", lambda: run_silver(lake)),
        ("gold", lambda: run_gold(lake)),
    ):
        started = time.perf_counter()
        call()
        seconds[phase] = time.perf_counter() - started
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--data", default="/tmp/bench_startup_data")
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(one_run(args.child == "on", args.data)))
        return 0
    from pipelines.generate import generate

    if not Path(args.data).exists():
        generate(Path(args.data), 300, date(2019, 1, 10), days=3, seed=1, defect_rate=0.05)
    load = os.getloadavg()
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for pair in range(args.pairs):
        for mode in ("on", "off"):
            command = [sys.executable, __file__, "--child", mode, "--data", args.data]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            runs[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"pair {pair + 1} archive {mode}: {runs[mode][-1]}", file=sys.stderr, flush=True)
    lines = [
        "# A fresh driver's first minute, with and without the class archive (`bench_startup.py`)",
        "",
        f"- command: `python bench/bench_startup.py --pairs {args.pairs}`",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs; {platform.platform()}",
        f"- load average at the start: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; at the end: "
        f"{os.getloadavg()[0]:.1f}",
        "- each run a new process: session start to a first query, then ingest -> silver -> gold on 300 generated "
        "trips (test configuration, fresh lake); runs alternate archive / no archive",
        "",
        "| run | archive | " + " | ".join(f"{p} (s)" for p in PHASES) + " | total (s) |",
        "|---|---|" + "---:|" * (len(PHASES) + 1),
    ]
    for pair in range(args.pairs):
        for mode in ("on", "off"):
            run = runs[mode][pair]
            cells = " | ".join(f"{run[p]:.1f}" for p in PHASES)
            lines.append(f"| {pair + 1} | {'yes' if mode == 'on' else 'no'} | {cells} | {sum(run.values()):.1f} |")
    medians = {mode: {p: statistics.median(r[p] for r in runs[mode]) for p in PHASES} for mode in runs}
    totals = {mode: statistics.median(sum(r.values()) for r in runs[mode]) for mode in runs}
    for mode in ("on", "off"):
        cells = " | ".join(f"{medians[mode][p]:.1f}" for p in PHASES)
        lines.append(f"| median | {'yes' if mode == 'on' else 'no'} | {cells} | {totals[mode]:.1f} |")
    lines += [
        "",
        f"**Median total: {totals['on']:.1f} s with the archive, {totals['off']:.1f} s without "
        f"({totals['off'] - totals['on']:.1f} s less per fresh driver).**",
    ]
    text = "\n".join(lines) + "\n"
    Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
