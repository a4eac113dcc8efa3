"""Single-node peer: scikit-learn's HistGradientBoostingRegressor against the MLlib model, same run, same data.

Both see the same gold.trip_features rows, the same features, the same rolling windows, the same label bounds
and the same target (log1p or minutes, from conf/model.yaml); both are scored by the same metrics on every
labelled test trip. The peer's frames come to the driver with DataFrame.toArrow() here only (a benchmark on the
samples); the pipeline itself never collects data-sized results. Writes the "peer" section of
bench/results/model.md.

    .venv/bin/python bench/bench_peer.py --lake-root DIR [--set key=value ...] [--samples DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from bench_train import (
    FEATURES_TABLE,
    RESULTS,
    SAMPLE_GLOB,
    SAMPLES,
    bench_params,
    build_lake,
    machine,
    open_bench_lake,
    write_section,
)
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.preprocessing import OrdinalEncoder

from pipelines.train.evaluate import LINEAR, MODEL, PAIR_MEDIAN
from pipelines.train.fit import evaluate_window
from pipelines.train.params import ModelParams
from pipelines.train.windows import choose_windows, labelled, test_rows, train_rows

PEER = "peer"
MAX_CATEGORIES = 254  # HistGradientBoosting: a categorical feature has at most max_bins (255) categories


def metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The pipeline's metrics (pipelines/train/evaluate.py), in numpy: predictions floored at 0."""
    predicted = np.maximum(predicted, 0.0)
    error = predicted - actual
    log_error = np.log1p(predicted) - np.log1p(np.maximum(actual, 0.0))
    total = float(np.sum((actual - actual.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float(np.sum(error**2)) / total,
        "rmsle": float(np.sqrt(np.mean(log_error**2))),
    }


def matrices(train, test, params: ModelParams) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """Feature matrices: categoricals as ordinal codes (unknown and null -> NaN), numerics as floats."""
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=np.nan, max_categories=MAX_CATEGORIES, dtype=np.float64
    )
    categorical = list(params.categorical)
    train_cat = train[categorical].astype("string").fillna("unknown").to_numpy()
    test_cat = test[categorical].astype("string").fillna("unknown").to_numpy()
    numeric = list(params.numeric)
    x_train = np.hstack([encoder.fit_transform(train_cat), train[numeric].astype("float64").to_numpy()])
    x_test = np.hstack([encoder.transform(test_cat), test[numeric].astype("float64").to_numpy()])
    return x_train, x_test, [True] * len(categorical) + [False] * len(numeric)


def peer_window(train, test, params: ModelParams) -> tuple[dict[str, float], float]:
    """Fits the peer on the window's training rows; returns its test metrics and fit seconds."""
    x_train, x_test, mask = matrices(train, test, params)
    label = train[params.label].to_numpy(dtype=np.float64)
    target = np.log1p(label) if params.target == "log1p" else label
    peer = HistGradientBoostingRegressor(categorical_features=mask, early_stopping=False, random_state=params.seed)
    started = time.perf_counter()
    peer.fit(x_train, target)
    seconds = time.perf_counter() - started
    predicted = peer.predict(x_test)
    predicted = np.expm1(predicted) if params.target == "log1p" else predicted
    return metrics(test[params.label].to_numpy(dtype=np.float64), predicted), seconds


def report(command: str, params: ModelParams, per_window: list[dict]) -> str:
    names = ("rmse", "mae", "rmsle", "r2")
    approaches = {
        MODEL: "MLlib GBT (this project)",
        PEER: "scikit-learn HistGradientBoostingRegressor (defaults, 100 iterations)",
        PAIR_MEDIAN: "baseline: zone-pair median",
        LINEAR: "baseline: linear regression",
    }
    mean = {a: {m: float(np.mean([w["results"][a][m] for w in per_window])) for m in names} for a in approaches}
    lines = [
        "## Single-node peer (`bench_peer.py`)",
        "",
        f"Command: `{command}` ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC). Machine: {machine()}",
        "",
        f"Same rows, features ({len(params.features)}), windows, label bounds "
        f"[{params.label_bounds.min_minutes}, {params.label_bounds.max_minutes}] and target `{params.target}`; "
        f"MLlib GBT {params.regressor_kwargs}. Mean over the windows "
        f"{', '.join(w['window'] for w in per_window)}:",
        "",
        "| approach | RMSE | MAE | RMSLE | R2 |",
        "|---|---:|---:|---:|---:|",
        *[f"| {label} | " + " | ".join(f"{mean[a][m]:.3f}" for m in names) + " |" for a, label in approaches.items()],
        "",
        "| window | MLlib RMSE | peer RMSE | MLlib / peer | MLlib fit s (rows/s) | peer fit s (rows/s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for w in per_window:
        ours, theirs = w["results"][MODEL]["rmse"], w["results"][PEER]["rmse"]
        mllib_rate, peer_rate = w["rows"] / w["mllib_seconds"], w["rows"] / w["peer_seconds"]
        lines.append(
            f"| {w['window']} | {ours:.3f} | {theirs:.3f} | {ours / theirs:.3f} | {w['mllib_seconds']:.1f} "
            f"({mllib_rate:,.0f}) | {w['peer_seconds']:.1f} ({peer_rate:,.0f}) |"
        )
    ratio = mean[MODEL]["rmse"] / mean[PEER]["rmse"]
    beats = all(mean[MODEL][m] < mean[b][m] for b in (PAIR_MEDIAN, LINEAR) for m in ("rmse", "mae", "rmsle"))
    lines += [
        "",
        f"Goal 1, MLlib mean test RMSE within 5% of the peer: ratio {ratio:.3f} "
        f"({'met' if ratio <= 1.05 else 'missed'}). Goal 2, better than both baselines on mean RMSE, MAE and "
        f"RMSLE: {'met' if beats else 'missed'}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake-root", default=None, help="the lake to build or reuse (default: a new temp folder)")
    parser.add_argument("--samples", type=Path, default=SAMPLES, help=f"folder holding {SAMPLE_GLOB}")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="change conf/model.yaml")
    args = parser.parse_args(argv)
    root = args.lake_root or tempfile.mkdtemp(prefix="bench-peer-")
    params_path, raw = bench_params(Path(root) / "_bench_conf", args.set)
    lake = open_bench_lake(root, params_path)
    build_lake(lake, sorted(args.samples.glob(SAMPLE_GLOB)), {})
    params = ModelParams.from_dict(raw).resolved(lake.spark.sparkContext.defaultParallelism)
    rows = labelled(lake.read(FEATURES_TABLE), params).persist()
    per_window = []
    for window in choose_windows(rows, params):
        result, _ = evaluate_window(rows, window, params)
        columns = [params.label, *params.features]
        train = train_rows(rows, params, before=window.test_from).select(*columns).toArrow().to_pandas()
        test = test_rows(rows, params, window).select(*columns).toArrow().to_pandas()
        result.results[PEER], peer_seconds = peer_window(train, test, params)
        print(window.name, {a: round(r["rmse"], 3) for a, r in result.results.items()}, flush=True)
        per_window.append(
            {
                "window": window.name,
                "results": result.results,
                "rows": len(train),
                "mllib_seconds": result.fit_seconds,
                "peer_seconds": peer_seconds,
            }
        )
    command = "python bench/bench_peer.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    write_section("peer", report(command, params, per_window))
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
