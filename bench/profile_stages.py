"""Where a stage's time goes: wall time, Spark job time by the Python line that started it, and the slowest stages.

Runs ingest, silver and gold (or the --stages given) on generated trips with the Spark UI on, and reads the UI's
REST API after each stage: job time grouped by call site (the pipelines/ line, or the Spark operation for jobs
Delta and adaptive execution start), then the slowest Spark stages with their tasks, input and shuffle sizes. The
gap between wall time and time in jobs is driver-side work: planning, code generation, Delta log handling.

    .venv/bin/python bench/profile_stages.py --rows 1000000
    .venv/bin/python bench/profile_stages.py --rows 1000000 --stages gold_full --keep   # gold again, same lake
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import urllib.request
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_scale import cached_generate  # noqa: E402  (bench/ is on the path when run as a script)

from lake import Lake, load_conf  # noqa: E402
from pipelines.bronze import run_ingest  # noqa: E402
from pipelines.gold import run_gold  # noqa: E402
from pipelines.silver import run_silver  # noqa: E402


def _seconds(stamp: str) -> float:
    return datetime.strptime(stamp[:-3], "%Y-%m-%dT%H:%M:%S.%f").timestamp()  # "...GMT" suffix dropped


def _took(item: dict) -> float:
    return _seconds(item["completionTime"]) - _seconds(item["submissionTime"]) if "completionTime" in item else 0.0


class SparkUI:
    """The application's jobs and stages from the Spark UI's REST API."""

    def __init__(self, lake: Lake) -> None:
        context = lake.spark.sparkContext
        self.base = f"{context.uiWebUrl}/api/v1/applications/{context.applicationId}"
        self.seen_jobs: set[int] = set()
        self.seen_stages: set[int] = set()

    def _get(self, what: str) -> list[dict]:
        with urllib.request.urlopen(f"{self.base}/{what}") as response:
            return json.load(response)

    def new_jobs(self) -> list[dict]:
        jobs = [j for j in self._get("jobs") if j["jobId"] not in self.seen_jobs]
        self.seen_jobs |= {j["jobId"] for j in jobs}
        return jobs

    def new_stages(self) -> list[dict]:
        stages = [s for s in self._get("stages") if s["stageId"] not in self.seen_stages]
        self.seen_stages |= {s["stageId"] for s in stages}
        return [s for s in stages if s.get("status") == "COMPLETE"]


def report(name: str, wall: float, jobs: list[dict], stages: list[dict], top: int) -> str:
    by_site: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for job in jobs:
        site = job["name"].replace(str(ROOT) + "/", "")[:100]
        by_site[site][0] += 1
        by_site[site][1] += _took(job)
    in_jobs = sum(seconds for _, seconds in by_site.values())
    lines = [f"## {name}: {wall:.1f} s wall, {len(jobs)} jobs, {in_jobs:.1f} s in jobs", "", "| s | jobs | call site |"]
    lines.append("|---:|---:|---|")
    for site, (count, seconds) in sorted(by_site.items(), key=lambda kv: -kv[1][1])[:top]:
        lines.append(f"| {seconds:.1f} | {count} | `{site}` |")
    lines += ["", "| s | tasks | input MB | shuffle read MB | shuffle write MB | records in | stage |"]
    lines.append("|---:|---:|---:|---:|---:|---:|---|")
    for stage in sorted(stages, key=lambda s: -_took(s))[:top]:
        records = stage["inputRecords"] or stage["shuffleReadRecords"]
        lines.append(
            f"| {_took(stage):.1f} | {stage['numTasks']} | {stage['inputBytes'] / 1e6:,.1f} | "
            f"{stage['shuffleReadBytes'] / 1e6:,.1f} | {stage['shuffleWriteBytes'] / 1e6:,.1f} | {records:,} | "
            f"{stage['name'][:50]} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--stages", default="ingest,silver,gold", help="of ingest, silver, gold, gold_full")
    parser.add_argument("--data", default="/tmp/bench_scale_data", help="generated files (shared with bench_scale)")
    parser.add_argument("--root", default="/tmp/profile_stages_lake")
    parser.add_argument("--keep", action="store_true", help="keep the lake (to profile a later stage again)")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    data = Path(args.data) / f"rows{args.rows}_days31_seed0_rate0.01_csv"
    cached_generate(data, rows=args.rows, start=date(2019, 1, 1), days=31, file_format="csv", seed=0,
                    defect_rate=0.01)  # fmt: skip
    if not args.keep:
        shutil.rmtree(args.root, ignore_errors=True)
    lake = Lake(load_conf(overrides={"lake.root": args.root, "silver.data_docs": False, "spark.ui_enabled": True}))
    ui = SparkUI(lake)
    ui.new_jobs(), ui.new_stages()  # the session's own start-up jobs
    calls = {
        "ingest": lambda: run_ingest(lake, [str(data)]),
        "silver": lambda: run_silver(lake),
        "gold": lambda: run_gold(lake),
        "gold_full": lambda: run_gold(lake, full_refresh=True),
    }
    for name in args.stages.split(","):
        started = time.perf_counter()
        result = calls[name]()
        wall = time.perf_counter() - started
        print(report(name, wall, ui.new_jobs(), ui.new_stages(), args.top), flush=True)
        if "phase_seconds" in result.details:
            print(f"phases (s): {result.details['phase_seconds']}\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
