"""The model's final fit alone (GBT on every in-bounds labelled row), as shipped and with changed parameters.

Reads gold.trip_features of an existing lake (for example the one `bench_scale.py --rows 1000000 --no-duckdb` leaves
in /tmp/bench_scale_lake), fits the feature preparation once, caches the assembled frame and times the regressor's
fit for each parameter set in one session, so the rows/s are comparable. Accuracy is not measured here: see
`bench_train.py --ablation` (validation windows of the real samples).

    .venv/bin/python bench/bench_fit.py --lake-root /tmp/bench_scale_lake --variant maxIter=40,stepSize=0.25
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lake import Lake, load_conf  # noqa: E402
from pipelines.train.model import FEATURES_COL, build_regressor, fit_preparation, target_column  # noqa: E402
from pipelines.train.params import load_params  # noqa: E402
from pipelines.train.windows import labelled, train_rows  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "fit.md"
SHOWN = ("maxIter", "numTrees", "maxDepth", "stepSize", "maxBins", "featureSubsetStrategy", "minInstancesPerNode")


STRING_PARAMS = {"featureSubsetStrategy", "lossType", "impurity", "type"}


def parse_variant(text: str) -> dict[str, float | int | str]:
    """ "maxIter=40,stepSize=0.25" -> {"maxIter": 40, "stepSize": 0.25}; string parameters stay strings. A `type`
    (random_forest, gbt) fits that regressor with only the variant's parameters."""
    changes: dict[str, float | int | str] = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=", 1)
        changes[key] = value if key in STRING_PARAMS else float(value) if "." in value else int(value)
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake-root", required=True, help="a lake holding gold.trip_features")
    parser.add_argument("--variant", action="append", default=[], help="e.g. maxIter=40,stepSize=0.25")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    lake = Lake(load_conf(overrides={"lake.root": args.lake_root, "silver.data_docs": False}))
    params = load_params(lake).resolved(lake.spark.sparkContext.defaultParallelism)
    train = train_rows(labelled(lake.read("gold.trip_features"), params), params).persist()
    rows = train.count()
    preparation = fit_preparation(train, params)
    assembled = preparation.transform(train).select(FEATURES_COL, target_column(params)).persist()
    assembled.count()
    load_before = os.getloadavg()
    lines = []
    for changes in [{}] + [parse_variant(v) for v in args.variant]:
        if "type" in changes:
            own = tuple((k, v) for k, v in changes.items() if k != "type")
            regressor = build_regressor(replace(params, regressor_type=changes["type"], regressor_params=own))
        else:
            regressor = build_regressor(params)
            if changes:
                regressor.setParams(**changes)
        started = time.perf_counter()
        regressor.fit(assembled)
        seconds = time.perf_counter() - started
        shown = {name: regressor.getOrDefault(name) for name in SHOWN if regressor.hasParam(name)}
        label = "as shipped (conf/model.yaml)" if not changes else f"changed: {changes}"
        lines.append(f"| {label} | {shown} | {seconds:.1f} | {rows / seconds:,.0f} |")
        print(lines[-1], f"load {os.getloadavg()[0]:.1f}", flush=True)
    command = "python bench/bench_fit.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "# The model's final fit alone (`bench_fit.py`)",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs; spark "
        f"{lake.spark.conf.get('spark.master')}; load average at the start {load_before[0]:.1f}, at the end "
        f"{os.getloadavg()[0]:.1f}",
        f"- rows: {rows:,} (every in-bounds labelled row of gold.trip_features); the preparation is fitted once and "
        "the assembled frame cached, so each line times the regressor's fit only, in one session",
        "",
        "| parameters | regressor | fit (s) | rows/s |",
        "|---|---|---:|---:|",
        *lines,
    ])  # fmt: skip
    Path(args.output).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
