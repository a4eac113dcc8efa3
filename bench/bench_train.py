"""The trip-duration model on the real TLC samples: test metrics next to the baselines, training time and rows/s.

Builds a lake from the 12 monthly yellow samples of 2019 (bronze -> silver -> gold, 10,000 rows each), then runs
`lake train` with conf/model.yaml but the evaluation split
(train on pickup days before 2019-11-01, test on 2019-11-01..12-31) and writes
bench/results/model.md. The lake (with its MLflow store) is kept, so the run can be opened in the MLflow UI.

    .venv/bin/python bench/bench_train.py [--lake-root DIR] [--samples DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import mlflow
import pyspark
import yaml

from lake import Lake, load_conf
from pipelines.bronze import run_ingest
from pipelines.gold import run_gold
from pipelines.silver import run_silver
from pipelines.train import run_train
from pipelines.train.evaluate import LINEAR, METRICS, MODEL, PAIR_MEDIAN

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
EVALUATION_TEST_FROM = "2019-11-01"

PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / "bench" / "results" / "model.md"
SAMPLES = PROJECT.parent / "shared" / "data" / "nyc_tlc" / "csv" / "yellow"
SAMPLE_GLOB = "yellow_tripdata_sample_2019-*.csv"
APPROACHES = {
    MODEL: "model (Spark MLlib GBT)",
    PAIR_MEDIAN: "baseline: zone-pair median duration",
    LINEAR: "baseline: linear regression",
}
METRIC_PREFIX = {MODEL: "test", PAIR_MEDIAN: "baseline_pair_median_test", LINEAR: "baseline_linear_test"}


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory_kb = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    load = os.getloadavg()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory_kb / 2**20:.0f} GiB RAM, load average {load:.1f} at the end "
        f"(shared with other jobs); Python {platform.python_version()}, Spark {pyspark.__version__}, "
        f"MLflow {mlflow.__version__}"
    )


def timed(label: str, action, timings: dict[str, float]):
    started = time.perf_counter()
    result = action()
    timings[label] = time.perf_counter() - started
    print(f"{label}: {timings[label]:.1f} s {result.counts}", flush=True)
    return result


def report(command: str, lake: Lake, files: list[Path], timings: dict[str, float], trained) -> str:
    metrics = trained.details["metrics"]
    train_rows, test_rows = trained.counts["train_rows"], trained.counts["test_rows"]
    first_day = lake.read("gold.trip_features").agg({"pickup_date": "min"}).first()[0]
    lines = [
        "# Trip-duration model on the real TLC samples",
        "",
        f"Command: `{command}` ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {machine()}",
        "",
        f"Data: {len(files)} monthly yellow samples of 2019 ({', '.join(f.name for f in files[:1])} ...), "
        f"through bronze, silver and gold. gold.trip_features version {trained.versions['gold.trip_features']}, "
        f"first pickup day {first_day}.",
        "",
        f"Split by pickup day (conf/model.yaml, split.test_from = 2019-11-01): "
        f"train on days before 2019-11-01 ({train_rows:,} labelled trips), "
        f"test on 2019-11-01 and later ({test_rows:,} trips). Metrics are on the test window, in minutes "
        "(RMSLE on log1p minutes); predictions below 0 are counted as 0.",
        "",
        "| approach | RMSE | MAE | R2 | RMSLE |",
        "|---|---:|---:|---:|---:|",
    ]
    for approach, label in APPROACHES.items():
        values = [metrics[f"{METRIC_PREFIX[approach]}_{name}"] for name in METRICS]
        lines.append(f"| {label} | " + " | ".join(f"{value:.3f}" for value in values) + " |")
    seconds = trained.details["train_seconds"]
    lines += [
        "",
        f"Training (fitting the model pipeline only): {seconds:.1f} s for {train_rows:,} rows = "
        f"{train_rows / seconds:,.0f} rows/s. The whole `lake train` stage (split, fit, baselines, evaluation, "
        f"plots, MLflow logging and registration): {timings['train']:.1f} s.",
        "",
        "| stage | seconds |",
        "|---|---:|",
        *[f"| {stage} | {value:.1f} |" for stage, value in timings.items()],
        "",
        f"MLflow run `{trained.details['mlflow_run_id']}`, model `{trained.details['model_name']}` version "
        f"{trained.details['model_version']} (store: `{trained.details['mlflow_run_url']}`).",
    ]
    return "\n".join(lines) + "\n"


def evaluation_params(folder: Path) -> Path:
    """conf/model.yaml with the issue's evaluation split: train on 2019-01..10, test on 2019-11..12."""
    params = yaml.safe_load((CONF_DIR / "model.yaml").read_text())
    params["split"].update({"test_from": EVALUATION_TEST_FROM, "test_days": None})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model_evaluation.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake-root", default=None, help="where to build the lake (default: a new temp folder)")
    parser.add_argument("--samples", type=Path, default=SAMPLES, help=f"folder holding {SAMPLE_GLOB}")
    args = parser.parse_args(argv)
    files = sorted(args.samples.glob(SAMPLE_GLOB))
    if len(files) != 12:
        raise SystemExit(f"expected 12 files {SAMPLE_GLOB} in {args.samples}, found {len(files)}")
    root = args.lake_root or tempfile.mkdtemp(prefix="bench-model-")
    lake = Lake(
        load_conf(
            overrides={
                "lake.root": root,
                "mlflow.tracking_uri": None,
                "model.params": str(evaluation_params(Path(root))),
            }
        )
    )
    print(f"lake: {root}", flush=True)
    timings: dict[str, float] = {}
    timed("bronze", lambda: run_ingest(lake, [str(f) for f in files]), timings)
    timed("silver", lambda: run_silver(lake), timings)
    timed("gold", lambda: run_gold(lake), timings)
    trained = timed("train", lambda: run_train(lake), timings)
    command = "python bench/bench_train.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    RESULTS.write_text(report(command, lake, files, timings, trained))
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
