"""GE's Spark engine against its pandas engine on silver's own batches, by batch size (why `silver.ge_pandas_max_rows`).

For each size, generated trips (one CSV file) are ingested into a fresh lake and silver runs on them; inside that run
the flagged batch silver validates is validated by both engines, alternating, `--rounds` times each, and the run goes
on with the verdict of its configured engine. Prints and writes a table of medians, and whether both engines'
unexpected counts were equal to the Spark flags' on every round. One JVM (the test configuration, `local[2]`).

    .venv/bin/python bench/bench_ge_engine.py --sizes 100,1000,10000,50000,200000
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lake import Lake, load_conf  # noqa: E402
from pipelines import quality  # noqa: E402
from pipelines.bronze import run_ingest  # noqa: E402
from pipelines.generate import generate  # noqa: E402
from pipelines.silver import run as silver_run  # noqa: E402
from pipelines.silver import run_silver  # noqa: E402

ENGINES = ("spark", "pandas")


def measure(lake: Lake, data: Path, rounds: int) -> dict:
    """Runs ingest and silver on data; inside silver, times both engines on its flagged batch."""
    timings: dict[str, list[float]] = {engine: [] for engine in ENGINES}
    agree: dict[str, bool] = dict.fromkeys(ENGINES, True)
    original, build = quality.validate, silver_run.build_silver
    seen: dict = {}

    def capture(*args, **kwargs):  # the run's batch statistics: the Spark flags' counts per rule
        built = build(*args, **kwargs)  # (passing, rejected, stats)
        seen["flags"] = {rule: counts["failed"] for rule, counts in built[2].rules.items()}
        return built

    def timed(batch, rules, suite, docs=None, examples=0, engine="spark"):
        seen["rows"] = batch.count()
        for _ in range(rounds):
            for name in ENGINES:
                started = time.perf_counter()
                verdict = original(batch, rules, f"{suite}_{name}", docs, examples, name)
                timings[name].append(time.perf_counter() - started)
                agree[name] &= verdict.unexpected == seen["flags"]
        return original(batch, rules, suite, docs, examples, engine)

    run_ingest(lake, [str(data)])
    quality.validate, silver_run.build_silver = timed, capture
    try:
        run_silver(lake)
    finally:
        quality.validate, silver_run.build_silver = original, build
    return {"rows": seen.get("rows", 0), "timings": timings, "agree": agree}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000,50000,200000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", default="/tmp/bench_ge_engine_data")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "ge_engine.md"))
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    conf = load_conf("test")
    load = os.getloadavg()
    rows = []
    lake = None
    for size in sizes:
        data = Path(args.data) / str(size)
        if not data.exists():
            generate(data, size, date(2019, 1, 1), days=1, seed=3, defect_rate=0.01)
        root = Path(tempfile.mkdtemp(prefix="bench_ge_engine"))
        try:
            lake = Lake(conf.with_overrides({"lake.root": str(root)}), lake.spark if lake else None)
            found = measure(lake, next(p for p in data.iterdir() if p.suffix == ".csv"), args.rounds)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        medians = {name: statistics.median(found["timings"][name]) for name in ENGINES}
        rows.append((size, found["rows"], medians, found["agree"]))
        timing = ", ".join(f"{k} {v:.2f} s" for k, v in medians.items())
        print(f"{size:>9,} trips, batch {found['rows']:,} rows: {timing}", flush=True)
    lines = [
        "# GE on small batches: the Spark engine against the pandas engine",
        "",
        f"- command: `python bench/bench_ge_engine.py --sizes {args.sizes} --rounds {args.rounds}`",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} CPUs, "
        f"{platform.platform()}, {platform.processor() or platform.machine()}",
        f"- load average at the start (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}",
        "- one JVM, the test configuration (`local[2]`); each size a fresh lake: ingest, then silver, inside which the "
        f"batch silver validates is validated by both engines alternately, {args.rounds} times each (medians)",
        "",
        "| generated trips | batch rows | GE Spark engine (s) | GE pandas engine (s) | Spark / pandas | both equal the Spark flags |",  # noqa: E501
        "|---:|---:|---:|---:|---:|---|",
    ]
    for size, batch_rows, medians, agree in rows:
        ratio = medians["spark"] / medians["pandas"]
        lines.append(
            f"| {size:,} | {batch_rows:,} | {medians['spark']:.2f} | {medians['pandas']:.2f} | {ratio:.1f}x | "
            f"{all(agree.values())} |"
        )
    Path(args.output).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
