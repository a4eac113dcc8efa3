"""What logging a training input to MLflow costs: SparkDataset's own profile against the row count the run has.

`lake train` logs its training and testing rows as MLflow dataset inputs. MLflow's SparkDataset profiles a frame
by sending every row through a Python worker (an RDD `mapPartitions`) under a 5 s approximate sum; the job goes on
in the background after that. pipelines.train.tracking.CountedDataset reports the count the run already took.

    .venv/bin/python bench/bench_mlflow_input.py --lake-root /tmp/bench_scale_lake
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlflow.data.delta_dataset_source import DeltaDatasetSource  # noqa: E402
from mlflow.data.spark_dataset import SparkDataset  # noqa: E402

from lake import Lake, load_conf  # noqa: E402
from pipelines.train.params import load_params  # noqa: E402
from pipelines.train.tracking import CountedDataset  # noqa: E402
from pipelines.train.windows import labelled, train_rows  # noqa: E402

TABLE = "gold.trip_features"


def background_seconds(lake: Lake) -> float:
    """How long Spark jobs started before this call keep running."""
    started = time.perf_counter()
    while lake.spark.sparkContext.statusTracker().getActiveJobsIds():
        time.sleep(0.2)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake-root", required=True, help="a lake holding gold.trip_features")
    args = parser.parse_args(argv)
    lake = Lake(load_conf(overrides={"lake.root": args.lake_root, "silver.data_docs": False}))
    params = load_params(lake).resolved(lake.spark.sparkContext.defaultParallelism)
    version = lake.version(TABLE)
    rows = train_rows(labelled(lake.read(TABLE, version=version), params), params)
    started = time.perf_counter()
    count = rows.count()
    print(f"training rows: {count:,}, counted in {time.perf_counter() - started:.1f} s (the run counts them anyway)")
    print("| profile | reported | seconds | background job after it (s) | load |\n|---|---|---:|---:|---|")
    source = DeltaDatasetSource(path=lake.path(TABLE), delta_table_version=str(version))
    for label, make in (
        ("CountedDataset (shipped)", lambda: CountedDataset(rows, source, "bench", count)),
        ("SparkDataset (MLflow's)", lambda: SparkDataset(df=rows, source=source, name="bench")),
        ("SparkDataset (MLflow's), again", lambda: SparkDataset(df=rows, source=source, name="bench")),
    ):
        started = time.perf_counter()
        profile = make().profile
        seconds = time.perf_counter() - started
        after = background_seconds(lake)
        print(f"| {label} | {profile} | {seconds:.2f} | {after:.1f} | load {os.getloadavg()[0]:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
