"""Scale benchmark: ingest -> silver -> gold on generated TLC data, DuckDB as reference, and the daily-run cost.

Per size (--rows, comma-separated): generates the trips (cached by their parameters), runs one stage per call
(run_ingest, run_silver, run_gold, optionally run_train) in a fresh lake, and times each with its peak RSS (this
Python process and the Spark JVM under it); then runs the same silver + gold on DuckDB and compares the results.
With --daily: one new day on lakes holding 30 and 365 days of generated history (the cost that follows new data).
Writes bench/results/scale.md and prints it.

    .venv/bin/python bench/bench_scale.py --rows 5000000
    .venv/bin/python bench/bench_scale.py --rows 1000000,5000000 --train --daily
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb_gold  # noqa: E402  (bench/ is on the path when run as a script)
import duckdb_reference  # noqa: E402
from proc_stats import MemoryWatch  # noqa: E402

from lake import Lake, load_conf  # noqa: E402
from pipelines.bronze import run_ingest  # noqa: E402
from pipelines.common import StageResult  # noqa: E402
from pipelines.generate import EXPECTED, generate  # noqa: E402
from pipelines.generate.synth import PARAMS  # noqa: E402
from pipelines.gold import run_gold  # noqa: E402
from pipelines.silver import run_silver  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "scale.md"
NEW_DAY = date(2020, 1, 1)  # the day added to the 30- and 365-day histories (which end the day before)
HISTORIES = (30, 365)


def cached_generate(folder: Path, **kwargs) -> tuple[dict, float]:
    """Generated files, reused when `_expected.json` says they were made with the same arguments."""
    expected = folder / EXPECTED
    if expected.exists():
        summary = json.loads(expected.read_text())
        wanted = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in kwargs.items()}
        wanted["format"] = wanted.pop("file_format", "csv")
        wanted["params_sha256"] = hashlib.sha256(PARAMS.read_bytes()).hexdigest()
        if all(summary["generator"].get(k) == v for k, v in wanted.items() if k in summary["generator"]):
            return summary, 0.0
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    layout = kwargs.pop("files", "day")
    summary = generate(folder, kwargs.pop("rows"), kwargs.pop("start"), layout=layout, **kwargs)
    return summary, time.perf_counter() - started


def fresh_lake(root: Path, spark=None) -> Lake:
    shutil.rmtree(root, ignore_errors=True)
    conf = load_conf(overrides={"lake.root": str(root), "silver.data_docs": False})
    return Lake(conf, spark) if spark is not None else Lake(conf)


def timed(watch: MemoryWatch, phase: str, call) -> tuple[object, float]:
    watch.begin(phase)
    started = time.perf_counter()
    result = call()
    watch.phase = "between"
    seconds = time.perf_counter() - started
    peak = watch.peaks.get(phase, (0.0, 0.0))
    print(f"{phase}: {seconds:.1f} s, peak RSS {peak[0]:,.0f} / {peak[1]:,.0f} MiB, load {os.getloadavg()[0]:.1f}",
          file=sys.stderr, flush=True)  # fmt: skip
    return result, seconds


def spark_result(lake: Lake, silver: StageResult) -> dict:
    """What the DuckDB reference reports, from the Spark run: silver's counts per rule and the gold sums
    (duckdb_gold.SUMS, by the same SQL over the Spark-built tables)."""
    for table in duckdb_gold.TABLES:
        lake.read(f"gold.{table}").createOrReplaceTempView(table)
    try:
        sums = duckdb_gold.gold_sums(lambda sql: lake.spark.sql(sql).first())
    finally:
        for table in duckdb_gold.TABLES:
            lake.spark.catalog.dropTempView(table)
    return {
        "quarantined_by_rule": dict(sorted(silver.details["quarantined_by_rule"].items())),
        "warned_by_rule": dict(sorted(silver.details["warned_by_rule"].items())),
        "silver_rows": lake.read("silver.trips").count(),
        **sums,
    }


def gold_settings(lake: Lake) -> duckdb_gold.GoldSettings:
    """The lake's gold settings, for the reference."""
    return duckdb_gold.GoldSettings(
        int(lake.conf.require("gold.pair_window_days")),
        float(lake.conf.get("gold.median_relative_accuracy") or 0.01),
        int(lake.conf.get("gold.pair_hour_bucket_hours") or 4),
        tuple(date.fromisoformat(str(d)) for d in lake.conf.get("gold.extra_holidays") or []),
    )


def same(a: object, b: object, name: str = "") -> bool:
    """Equal; the rounded sums of doubles (added in different orders) within a cent, other floats (exact decimal
    sums read as doubles) within 1e-6."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], k) for k in a)
    if isinstance(a, float) or isinstance(b, float):
        tolerance = 0.011 if name in duckdb_gold.ROUNDED else 1e-6
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=tolerance)
    return a == b


def run_size(args: argparse.Namespace, rows: int, watch: MemoryWatch, spark) -> dict:
    data = Path(args.data) / f"rows{rows}_days{args.days}_seed{args.seed}_rate{args.defect_rate}_{args.format}"
    expected, gen_seconds = cached_generate(
        data, rows=rows, start=date.fromisoformat(args.start), days=args.days, file_format=args.format,
        seed=args.seed, defect_rate=args.defect_rate,
    )  # fmt: skip
    lake = fresh_lake(Path(args.root), spark)
    out = {"rows": rows, "generate_s": gen_seconds, "load_before": os.getloadavg(), "stages": {}}
    ingest, out["stages"]["ingest"] = timed(watch, f"{rows}:ingest", lambda: run_ingest(lake, [str(data)]))
    silver, out["stages"]["silver"] = timed(watch, f"{rows}:silver", lambda: run_silver(lake))
    gold, out["stages"]["gold"] = timed(watch, f"{rows}:gold", lambda: run_gold(lake))
    if args.train:
        from pipelines.train import run_train

        trained, out["stages"]["train"] = timed(watch, f"{rows}:train", lambda: run_train(lake))
        out["train_rows"] = trained.counts["train_rows"]  # the final fit's rows (every labelled in-bounds row)
        out["train_fit"] = (trained.details["train_seconds"], trained.details["train_rows_per_second"])
        out["train_windows"] = trained.counts["windows"]
    out["load_after"] = os.getloadavg()
    out["peaks"] = {stage: watch.peaks.get(f"{rows}:{stage}", (0, 0)) for stage in out["stages"]}
    out["starts"] = {stage: watch.starts.get(f"{rows}:{stage}", 0.0) for stage in out["stages"]}
    spark = spark_result(lake, silver)
    out["matches_expected"] = spark["quarantined_by_rule"] == expected["quarantined_by_rule"]
    out["bronze_rows"] = ingest.counts["rows"]
    out["silver_rows"] = spark["silver_rows"]
    if args.duckdb:
        settings = gold_settings(lake)
        with tempfile.TemporaryDirectory() as scratch:
            reference, seconds = timed(
                watch, f"{rows}:duckdb", lambda: duckdb_reference.run_reference([str(data)], 2, scratch, settings)
            )
        out["duckdb_s"] = seconds
        out["duckdb_peak"] = watch.peaks.get(f"{rows}:duckdb", (0, 0))
        compared = {k: reference[k] for k in spark}
        out["identical"] = same(compared, spark)
        if not out["identical"]:
            out["difference"] = {k: (spark[k], compared[k]) for k in spark if not same(spark[k], compared[k])}
    return out


def pipeline_stages(watch: MemoryWatch, label: str, lake: Lake, files: list[str]) -> dict[str, float]:
    """Seconds of one ingest, silver and gold run on `files`."""
    stages = {}
    _, stages["ingest"] = timed(watch, f"{label}:ingest", lambda: run_ingest(lake, files))
    _, stages["silver"] = timed(watch, f"{label}:silver", lambda: run_silver(lake))
    _, stages["gold"] = timed(watch, f"{label}:gold", lambda: run_gold(lake))
    return stages


def run_daily(args: argparse.Namespace, watch: MemoryWatch, spark) -> list[dict]:
    """One new day's ingest + silver + gold on lakes with 30 and 365 days of history."""
    per_day = args.daily_rows_per_day
    new_day, _ = cached_generate(
        Path(args.data) / f"daily_new_{per_day}", rows=per_day, start=NEW_DAY, days=1, seed=args.seed + 1,
        defect_rate=args.defect_rate,
    )  # fmt: skip
    runs = []
    for days in HISTORIES:
        folder = Path(args.data) / f"daily_history_{days}_{per_day}"
        history, _ = cached_generate(
            folder, rows=per_day * days, start=NEW_DAY - timedelta(days=days), days=days, seed=args.seed,
            defect_rate=args.defect_rate, files="month",
        )  # fmt: skip
        lake = fresh_lake(Path(args.root), spark)
        started = time.perf_counter()
        watch.phase = f"daily{days}:history"
        run_ingest(lake, [str(folder)])
        run_silver(lake)
        run_gold(lake)
        build = time.perf_counter() - started
        new_files = [str(Path(args.data) / f"daily_new_{per_day}" / f["name"]) for f in new_day["files"]]
        stages = pipeline_stages(watch, f"daily{days}", lake, new_files)
        runs.append({"days": days, "history_rows": history["rows"], "build_s": build, "stages": stages})
    return runs


def _mib(value: float) -> str:
    return f"{value:,.0f}"


def cpu_model() -> str:
    """The CPU's model name: these benches have run on Intel and AMD machines of the same size."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())


def report(args: argparse.Namespace, sizes: list[dict], daily: list[dict], spark_conf: dict, start: tuple) -> str:
    lines = [
        "# Scale: generated TLC data through ingest -> silver -> gold, DuckDB reference, daily-run cost",
        "",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} CPUs (nproc), "
        f"{platform.platform()}, {cpu_model()}",
        f"- spark: master {spark_conf['master']}, driver memory {spark_conf['driver_memory']}, shuffle partitions "
        f"{spark_conf['shuffle_partitions']}; DuckDB {duckdb_reference.duckdb.__version__} with 2 threads",
        f"- data: `lake generate` {args.format}, {args.days} daily files from {args.start}, seed {args.seed}, "
        f"defect rate {args.defect_rate}",
        f"- load average (1/5/15 min) at the start: {' / '.join(f'{x:.1f}' for x in start)}; the machine is "
        "shared, read every number with the load next to it",
        "- peak RSS: this Python process / the Spark JVM (local mode: driver and executors), MiB, sampled every 0.2 s",
        "",
    ]
    for size in sizes:
        rows = size["rows"]
        pipeline = sum(size["stages"][s] for s in ("ingest", "silver", "gold"))
        lines += [
            f"## {rows:,} rows",
            "",
            f"Generated in {size['generate_s']:.1f} s (0 = reused from the cache). Load average before / after: "
            f"{size['load_before'][0]:.1f} / {size['load_after'][0]:.1f}. Bronze rows {size['bronze_rows']:,}, "
            f"silver rows {size['silver_rows']:,}; quarantine per rule equals the generator's expectation: "
            f"{size['matches_expected']}.",
            "",
            "| stage | rows in | wall time (s) | rows/s | peak RSS Python (MiB) | of it added by the stage (MiB) "
            "| peak RSS JVM (MiB) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for stage, seconds in size["stages"].items():
            n = size.get("train_rows", rows) if stage == "train" else rows
            py, jvm = size["peaks"][stage]
            added = _mib(max(0.0, py - size["starts"][stage])) if size.get("starts", {}).get(stage) else ""
            lines.append(
                f"| {stage} | {n:,} | {seconds:.1f} | {n / seconds:,.0f} | {_mib(py)} | {added} | {_mib(jvm)} |"
            )
        lines.append(f"| ingest -> silver -> gold | {rows:,} | {pipeline:.1f} | {rows / pipeline:,.0f} | | | |")
        if "train_fit" in size:
            seconds, rate = size["train_fit"]
            lines += [
                "",
                f"Train: the stage fits {size['train_windows']} rolling-window models and the final one (each with its "
                f"baselines) and logs to MLflow; its row above counts the final fit's {size['train_rows']:,} rows once "
                f"over the whole stage. The final fit alone (preparation + GBT): {seconds:.1f} s, {rate:,.0f} rows/s.",
            ]
        if "duckdb_s" in size:
            py, _ = size["duckdb_peak"]
            lines += [
                f"| DuckDB reference (silver + gold) | {rows:,} | {size['duckdb_s']:.1f} | "
                f"{rows / size['duckdb_s']:,.0f} | {_mib(py)} | | |",
                "",
                f"**Spark / DuckDB: {pipeline / size['duckdb_s']:.1f}x** (target: at most 4x); results identical "
                f"(silver rows, quarantine and warnings per rule, row counts and sums of gold's four tables): "
                f"{size['identical']}" + (f"; differences: `{size['difference']}`" if not size["identical"] else ""),
            ]
        lines.append("")
    if daily:
        lines += [
            f"## Cost that follows new data: one new day ({args.daily_rows_per_day:,} rows) on 30 vs 365 days",
            "",
            "| history | history rows | history build (s) | new day: ingest (s) | silver (s) | gold (s) | total (s) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for run in daily:
            s = run["stages"]
            lines.append(
                f"| {run['days']} days | {run['history_rows']:,} | {run['build_s']:.1f} | {s['ingest']:.1f} | "
                f"{s['silver']:.1f} | {s['gold']:.1f} | {sum(s.values()):.1f} |"
            )
        ratio = sum(daily[-1]["stages"].values()) / sum(daily[0]["stages"].values())
        lines += ["", f"**365-day / 30-day daily run: {ratio:.2f}x** (target: at most 1.3x)", ""]
    lines += ["## Targets (issue 9)", "", "| target | measured | met |", "|---|---:|---|"]
    for size in sizes:
        pipeline = sum(size["stages"][s] for s in ("ingest", "silver", "gold"))
        rate = size["rows"] / pipeline
        lines.append(f"| ingest -> silver -> gold >= 100,000 rows/s ({size['rows']:,} rows) | {rate:,.0f} rows/s | "
                     f"{'yes' if rate >= 100_000 else 'no'} |")  # fmt: skip
        if "train_fit" in size:
            rate = size["train_fit"][1]
            lines.append(f"| training >= 20,000 rows/s (final fit, {size['train_rows']:,} rows) | {rate:,.0f} rows/s | "
                         f"{'yes' if rate >= 20_000 else 'no'} |")  # fmt: skip
        if "duckdb_s" in size:
            ratio = pipeline / size["duckdb_s"]
            lines.append(f"| Spark within 4x of DuckDB ({size['rows']:,} rows) | {ratio:.1f}x | "
                         f"{'yes' if ratio <= 4 else 'no'} |")  # fmt: skip
    if daily:
        ratio = sum(daily[-1]["stages"].values()) / sum(daily[0]["stages"].values())
        lines.append(f"| one new day: 365-day / 30-day history at most 1.3x | {ratio:.2f}x | "
                     f"{'yes' if ratio <= 1.3 else 'no'} |")  # fmt: skip
    lines += ["", "One measured run per number (no warm-up, no repetition)."]
    return "\n".join(lines) + "\n"


def hold_root(root: Path):
    """An exclusive lock beside the lake root for this run: the root is deleted before each size, so a second run
    on the same root would delete the first one's tables under it (a run on 2026-12-04 failed that way)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    lock = open(root.parent / f".{root.name}.lock", "w")  # noqa: SIM115 (held until the process exits)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another bench_scale run is using {root}: wait for it or pass --root") from None
    return lock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="200000", help="trips per size, comma-separated (default 200000)")
    parser.add_argument("--days", type=int, default=31, help="daily files the rows are spread over (default 31)")
    parser.add_argument("--start", default="2019-01-01")
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--defect-rate", type=float, default=0.01)
    parser.add_argument("--train", action="store_true", help="also time run_train on gold.trip_features")
    parser.add_argument("--no-duckdb", dest="duckdb", action="store_false", help="skip the DuckDB reference")
    parser.add_argument("--daily", action="store_true", help="measure one new day on 30 vs 365 days of history")
    parser.add_argument("--daily-rows-per-day", type=int, default=3000)
    parser.add_argument("--data", default="/tmp/bench_scale_data", help="generated files (kept as a cache)")
    parser.add_argument("--root", default="/tmp/bench_scale_lake", help="lake root (deleted before each run)")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    lock = hold_root(Path(args.root))  # noqa: F841 (released when the process exits)
    start_load = os.getloadavg()
    watch = MemoryWatch()
    watch.start()
    lake = fresh_lake(Path(args.root))
    spark = lake.spark  # the session starts here, outside every timed stage
    spark_conf = {k: lake.conf.get(f"spark.{k}") for k in ("master", "driver_memory", "shuffle_partitions")}
    sizes = [run_size(args, int(n), watch, spark) for n in args.rows.split(",")]
    daily = run_daily(args, watch, spark) if args.daily else []
    watch.stop()
    text = report(args, sizes, daily, spark_conf, start_load)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
