"""The trip-duration model on the real TLC samples: rolling-window metrics next to the baselines, fit time, rows/s.

Builds a lake from the 12 monthly yellow samples of 2019 (bronze -> silver -> gold, 10,000 rows each; an existing
--lake-root that already holds gold.trip_features is reused), then

- default: runs `lake train` (optionally `--tune`) with conf/model.yaml and writes the "train" section of
  bench/results/model.md: per-window and mean/worst test metrics of the model and both baselines, fit time, rows/s;
- `--ablation`: evaluates variants of the parameters on *validation* windows (the three months before the last
  three, which stay the test windows) and writes the "ablation" section. `--extra-numeric a,b` adds variants
  with extra gold.trip_features columns (e.g. pair_hour_median_duration,pickup_zone_trips_prev_hour);
- `--set key=value` changes conf/model.yaml for the run (e.g. --set regressor.params.maxDepth=7).

    .venv/bin/python bench/bench_train.py [--lake-root DIR] [--tune] [--ablation] [--extra-numeric a,b]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import platform
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mlflow
import pyspark
import yaml
from bench_scale import cpu_model  # bench/ is on the path when run as a script
from pyspark.sql import functions as F

from lake import Lake, load_conf
from pipelines.train.evaluate import APPROACHES, LINEAR, MODEL, PAIR_MEDIAN, PREFIX
from pipelines.train.fit import evaluate_windows
from pipelines.train.params import ModelParams
from pipelines.train.windows import choose_windows, labelled

PROJECT = Path(__file__).resolve().parents[1]
CONF_DIR = PROJECT / "conf"
RESULTS = PROJECT / "bench" / "results" / "model.md"
SAMPLES = PROJECT.parent / "shared" / "data" / "nyc_tlc" / "csv" / "yellow"
SAMPLE_GLOB = "yellow_tripdata_sample_2019-*.csv"
FEATURES_TABLE = "gold.trip_features"
LABELS = {
    MODEL: "model (Spark MLlib GBT)",
    PAIR_MEDIAN: "baseline: zone-pair median duration",
    LINEAR: "baseline: linear regression",
}
# Ablation: decide on the three months before the test months (2019-07..09), never on the test months.
VALIDATION_UNTIL = dt.date(2019, 10, 1)
SECTION_ORDER = ["train", "peer", "ablation"]


def machine() -> str:
    cpu = cpu_model()
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory_kb = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    load = os.getloadavg()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory_kb / 2**20:.0f} GiB RAM, load average {load:.1f} at the end "
        f"(shared with other jobs); Python {platform.python_version()}, Spark {pyspark.__version__}, "
        f"MLflow {mlflow.__version__}"
    )


def write_section(name: str, text: str, path: Path = RESULTS) -> None:
    """Replaces one marked section of the results file (train, peer, ablation), keeping the others."""
    sections: dict[str, str] = {}
    if path.exists():
        found = re.findall(r"<!-- section:(\w+) -->\n(.*?)<!-- /section:\1 -->", path.read_text(), flags=re.S)
        sections = {key: body for key, body in found}
    sections[name] = text.rstrip() + "\n"
    names = [n for n in SECTION_ORDER if n in sections] + sorted(set(sections) - set(SECTION_ORDER))
    body = "\n".join(f"<!-- section:{n} -->\n{sections[n]}<!-- /section:{n} -->\n" for n in names)
    path.write_text("# Trip-duration model on the real TLC samples\n\n" + body)


def set_value(raw: dict[str, Any], assignment: str) -> None:
    """key.path=value (value parsed as YAML) into the raw parameters."""
    key, value = assignment.split("=", 1)
    node = raw
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = yaml.safe_load(value)


def bench_params(folder: Path, assignments: list[str]) -> tuple[Path, dict[str, Any]]:
    """conf/model.yaml with the --set changes, written where the lake's conf points."""
    raw = yaml.safe_load((CONF_DIR / "model.yaml").read_text())
    for assignment in assignments:
        set_value(raw, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model_bench.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, raw


def open_bench_lake(root: str, params_path: Path) -> Lake:
    return Lake(load_conf(overrides={"lake.root": root, "mlflow.tracking_uri": None, "model.params": str(params_path)}))


def build_lake(lake: Lake, files: list[Path], timings: dict[str, float]) -> None:
    """bronze -> silver -> gold from the sample files, unless the lake already has gold.trip_features."""
    if lake.exists(FEATURES_TABLE):
        print(f"reusing {FEATURES_TABLE} in {lake.root}", flush=True)
        return
    from pipelines.bronze import run_ingest
    from pipelines.gold import run_gold
    from pipelines.silver import run_silver

    for stage, action in (
        ("bronze", lambda: run_ingest(lake, [str(f) for f in files])),
        ("silver", lambda: run_silver(lake)),
        ("gold", lambda: run_gold(lake)),
    ):
        started = time.perf_counter()
        result = action()
        timings[stage] = time.perf_counter() - started
        print(f"{stage}: {timings[stage]:.1f} s {result.counts}", flush=True)


def metric_table(rows: list[tuple[str, dict[str, float]]], metric_names: list[str]) -> list[str]:
    lines = ["| " + " | ".join(["approach", *metric_names]) + " |", "|---" + "|---:" * len(metric_names) + "|"]
    lines += [f"| {label} | " + " | ".join(f"{values[m]:.3f}" for m in metric_names) + " |" for label, values in rows]
    return lines


def train_report(command: str, trained, timings: dict[str, float], params: dict[str, Any]) -> str:
    metrics, details = trained.details["metrics"], trained.details
    summary_names = ["rmse_mean", "rmse_worst", "mae_mean", "mae_worst", "rmsle_mean", "rmsle_worst", "r2_mean"]
    summary = [(LABELS[a], {name: metrics[f"{PREFIX[a]}_{name}"] for name in summary_names}) for a in APPROACHES]
    client = mlflow.tracking.MlflowClient()
    run_metrics = client.get_run(details["mlflow_run_id"]).data.metrics
    per_window = []
    for number, window in enumerate(details["windows"], start=1):
        for a in APPROACHES:
            values = {m: run_metrics[f"window{number}_{PREFIX[a]}_{m}"] for m in ("rmse", "mae", "rmsle", "r2")}
            per_window.append((f"{window} {LABELS[a]}", values))
    regressor = params["regressor"]["params"]
    bounds = params["label_bounds"]
    lines = [
        "## Model vs baselines on rolling windows (`lake train`)",
        "",
        f"Command: `{command}` ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {machine()}",
        "",
        f"Data: gold.trip_features version {trained.versions[FEATURES_TABLE]} from the 12 monthly yellow samples "
        f"of 2019. Parameters: target `{params['target']}`, training labels within "
        f"[{bounds['min_minutes']}, {bounds['max_minutes']}] min, GBT {regressor}"
        + (", tuned (`--tune`)" if details.get("tuned") else "")
        + f". Windows: each trains on every earlier pickup day and tests on one month: {', '.join(details['windows'])}"
        f". Test metrics in minutes over every labelled test trip (RMSLE on log1p minutes).",
        "",
        "Mean and worst over the windows:",
        "",
        *metric_table(summary, summary_names),
        "",
        "Per window:",
        "",
        *metric_table(per_window, ["rmse", "mae", "rmsle", "r2"]),
        "",
        f"Label hygiene: {trained.counts['excluded_under_floor']:,} training rows under the floor and "
        f"{trained.counts['excluded_over_cap']:,} over the cap left out of {run_metrics['labelled_rows']:,.0f}.",
        "",
        f"Final fit (every in-bounds row, preparation + GBT): {details['train_seconds']:.1f} s for "
        f"{trained.counts['train_rows']:,} rows = {details['train_rows_per_second']:,.0f} rows/s. Window fits: "
        + ", ".join(
            f"{run_metrics[f'window{n}_train_rows']:,.0f} rows in {run_metrics[f'window{n}_fit_seconds']:.1f} s"
            for n in range(1, len(details["windows"]) + 1)
        )
        + f". Whole `lake train` stage: {timings['train']:.1f} s.",
        "",
        f"MLflow run `{details['mlflow_run_id']}`, model `{details['model_name']}` version {details['model_version']}.",
    ]
    return "\n".join(lines)


def ablation_variants(raw: dict[str, Any], extra_numeric: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Each variant changes one thing on top of the previous kept ones (see docs/model.md)."""
    base = copy.deepcopy(raw)
    base.update({"target": "identity", "label_bounds": {"min_minutes": None, "max_minutes": None}})
    base["regressor"]["params"].update({"maxIter": 20, "maxDepth": 5})
    variants = [("identity target, all labels, 20 trees depth 5 (before)", base)]

    def variant(name: str, parent: dict[str, Any], **changes: Any) -> dict[str, Any]:
        changed = copy.deepcopy(parent)
        for key, value in changes.items():
            set_value(changed, f"{key.replace('__', '.')}={yaml.safe_dump(value).strip()}")
        variants.append((name, changed))
        return changed

    bounded = variant("+ labels within [1, 180] min", base, label_bounds={"min_minutes": 1, "max_minutes": 180})
    logged = variant("+ log1p target", bounded, target="log1p")
    variant("log1p target, all labels", base, target="log1p")
    variant("+ depth 7, 40 trees", logged, regressor__params__maxDepth=7, regressor__params__maxIter=40)
    variant("+ 60 trees", logged, regressor__params__maxIter=60)
    variant("+ 100 trees", logged, regressor__params__maxIter=100)
    leafy = {"regressor__params__minInstancesPerNode": 50}
    variant("+ depth 7, 40 trees, >= 50 rows per leaf", logged, regressor__params__maxDepth=7, **leafy,
            regressor__params__maxIter=40)  # fmt: skip
    variant("+ depth 6, 100 trees, >= 50 rows per leaf", logged, regressor__params__maxDepth=6, **leafy,
            regressor__params__maxIter=100)  # fmt: skip
    if extra_numeric:  # on the best so far (validation RMSE, 2026-11-22): bounds + log1p, 20 trees of depth 5
        numeric = list(logged["features"]["numeric"]) + extra_numeric
        variant(f"bounds + log1p + {', '.join(extra_numeric)}", logged, features__numeric=numeric)
    rare = variant("+ categories under 50 training rows -> unknown", logged, features__min_category_rows=50)
    variant("+ categories under 50 rows -> unknown, 60 trees", rare, regressor__params__maxIter=60)
    variant("+ categories under 50 rows -> unknown, 100 trees", rare, regressor__params__maxIter=100)
    variant("+ categories under 200 rows -> unknown, 100 trees", rare, features__min_category_rows=200,
            regressor__params__maxIter=100)  # fmt: skip
    # Fewer, larger steps: the fit's time is linear in trees (bench/results/scale.md), so half the trees is twice the
    # rows/s; kept only if the validation metrics hold (2026-11-30).
    variant("+ categories under 50 rows -> unknown, 50 trees, step 0.2", rare, regressor__params__maxIter=50,
            regressor__params__stepSize=0.2)  # fmt: skip
    variant("+ categories under 50 rows -> unknown, 40 trees, step 0.25", rare, regressor__params__maxIter=40,
            regressor__params__stepSize=0.25)  # fmt: skip
    # Deeper trees, fewer of them: a tree's fit is one pass over the rows per level, so 35 trees of depth 6 cost about
    # what 40 of depth 5 do; kept only if they recover the 100-tree model's validation metrics (2026-11-30).
    variant("+ categories under 50 rows -> unknown, depth 6, 35 trees, step 0.25", rare, regressor__params__maxDepth=6,
            regressor__params__maxIter=35, regressor__params__stepSize=0.25)  # fmt: skip
    variant("+ categories under 50 rows -> unknown, depth 6, 40 trees, step 0.2", rare, regressor__params__maxDepth=6,
            regressor__params__maxIter=40, regressor__params__stepSize=0.2)  # fmt: skip
    variant("+ categories under 50 rows -> unknown, depth 7, 28 trees, step 0.25, >= 20 rows per leaf", rare,
            regressor__params__maxDepth=7, regressor__params__maxIter=28, regressor__params__stepSize=0.25,
            regressor__params__minInstancesPerNode=20)  # fmt: skip
    variant("+ categories under 50 rows -> unknown, depth 6, 33 trees, step 0.3", rare, regressor__params__maxDepth=6,
            regressor__params__maxIter=33, regressor__params__stepSize=0.3)  # fmt: skip
    # Random forests: a level pass grows every tree of a group at once, each row on a third of the features, so many
    # deep trees can cost less than 100 boosted ones; kept only if they recover the shipped validation metrics.
    for trees, depth, leaf in ((40, 10, 1), (60, 12, 5), (40, 14, 20)):
        forest = {"numTrees": trees, "maxDepth": depth, "minInstancesPerNode": leaf, "maxBins": 270,
                  "featureSubsetStrategy": "onethird", "maxMemoryInMB": 1024}  # fmt: skip
        variant(f"+ categories under 50 rows -> unknown, random forest: {trees} trees of depth {depth}, >= {leaf} "
                "rows per leaf", rare, regressor={"type": "random_forest", "params": forest})  # fmt: skip
    return variants


def ablation_report(
    lake: Lake,
    raw: dict[str, Any],
    extra_numeric: list[str],
    command: str,
    only: list[int],
    windows: int,
    section: str = "ablation",
) -> str:
    cores = lake.spark.sparkContext.defaultParallelism
    features = lake.read(FEATURES_TABLE).where(F.col("pickup_date") < F.lit(VALIDATION_UNTIL))
    rows_out = []
    for number, (name, variant) in enumerate(ablation_variants(raw, extra_numeric)):
        if only and number not in only:
            continue
        variant["split"].update({"windows": windows, "window": "month", "test_from": None})
        params = ModelParams.from_dict(variant).resolved(cores)
        rows = labelled(features, params).persist()
        chosen = choose_windows(rows, params)
        started = time.perf_counter()
        evaluation = evaluate_windows(rows, chosen, params, keep_predictions=False, baselines=number < 2)
        seconds = time.perf_counter() - started
        rows.unpersist()
        summary = evaluation.summary
        print(name, {a: {k: round(v, 3) for k, v in s.items()} for a, s in summary.items()}, flush=True)
        rows_out.append((name, summary, evaluation.fit_rows / evaluation.fit_seconds, seconds, chosen))
        write_section(section, ablation_table(rows_out, command))  # after each variant: a stopped run keeps its rows
    return ablation_table(rows_out, command)


def ablation_table(rows_out: list, command: str) -> str:
    names = ["rmse_mean", "rmse_worst", "mae_mean", "rmsle_mean"]
    lines = [
        "## Ablation on validation windows (`bench_train.py --ablation`)",
        "",
        f"Command: `{command}` ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC). Machine: {machine()}",
        "",
        f"Windows: {', '.join(w.name for w in rows_out[0][4])} (pickup days before {VALIDATION_UNTIL} only: the "
        "test months 2019-10..12 play no part in these choices). Model metrics, minutes; the baselines' in the "
        "last columns (they change with the label bounds only).",
        "",
        "| variant | RMSE mean | RMSE worst | MAE mean | RMSLE mean | fit rows/s | pair median RMSE / MAE / RMSLE "
        "| linear RMSE / MAE / RMSLE |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, summary, rate, _, _ in rows_out:
        model = " | ".join(f"{summary[MODEL][n]:.3f}" for n in names)
        base = [
            " / ".join(f"{summary[a][n]:.3f}" for n in ("rmse_mean", "mae_mean", "rmsle_mean")) if a in summary else ""
            for a in (PAIR_MEDIAN, LINEAR)
        ]
        lines.append(f"| {name} | {model} | {rate:,.0f} | {base[0]} | {base[1]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake-root", default=None, help="the lake to build or reuse (default: a new temp folder)")
    parser.add_argument("--samples", type=Path, default=SAMPLES, help=f"folder holding {SAMPLE_GLOB}")
    parser.add_argument("--tune", action="store_true", help="train with --tune (grid from conf/model.yaml)")
    parser.add_argument("--ablation", action="store_true", help="evaluate parameter variants on validation windows")
    parser.add_argument("--variants", default="", help="comma-separated variant numbers to run (default: all)")
    parser.add_argument("--validation-windows", type=int, default=3, help="ablation: months before 2019-10")
    parser.add_argument("--section", default="ablation", help="ablation: the results section to write")
    parser.add_argument("--extra-numeric", default="", help="comma-separated extra numeric features to ablate")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="change conf/model.yaml")
    args = parser.parse_args(argv)
    files = sorted(args.samples.glob(SAMPLE_GLOB))
    if len(files) != 12:
        raise SystemExit(f"expected 12 files {SAMPLE_GLOB} in {args.samples}, found {len(files)}")
    root = args.lake_root or tempfile.mkdtemp(prefix="bench-model-")
    params_path, raw = bench_params(Path(root) / "_bench_conf", args.set)
    lake = open_bench_lake(root, params_path)
    print(f"lake: {root}", flush=True)
    timings: dict[str, float] = {}
    build_lake(lake, files, timings)
    command = "python bench/bench_train.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    if args.ablation:
        extra = [name for name in args.extra_numeric.split(",") if name]
        only = [int(n) for n in args.variants.split(",") if n]
        report = ablation_report(lake, raw, extra, command, only, args.validation_windows, args.section)
        write_section(args.section, report)
    else:
        from pipelines.train import run_train

        started = time.perf_counter()
        trained = run_train(lake, tune=args.tune)
        timings["train"] = time.perf_counter() - started
        trained.details["tuned"] = args.tune
        write_section("train", train_report(command, trained, timings, trained.details["params"]))
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
