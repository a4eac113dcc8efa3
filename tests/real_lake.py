"""The suite's one real-sample lake: three real TLC months through every stage, built once per test session and
shared (read-only) by the query, real-model and cluster tests. January lands first (from its own folder) and
February + March after it, so the lake has a January-only version of every table to time-travel to, and its latest
tables are incremental runs' results."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from test_train_support import make_lake, write_params

from lake import Lake
from pipelines.bronze import run_ingest
from pipelines.common import StageResult
from pipelines.gold import run_gold
from pipelines.score import run_score
from pipelines.silver import run_silver
from pipelines.train import run_train
from pipelines.train.tracking import open_tracking

MONTHS = ("2019-01", "2019-02", "2019-03")
ROWS_PER_MONTH = 1500  # the samples are in random order: the first rows are a random sample of the month
LABEL_FLOOR, LABEL_CAP = 1.0, 180.0
FIRST, LATER = "january", "later"  # the landing's subfolders, one per ingest
FIXTURE = "real_sample_lake"  # the fixture's name
# The files using it: conftest's xdist scheduler runs them on one worker, so the lake is built once.
SHARED_LAKE_FILES = ("tests/test_cluster.py", "tests/test_query.py", "tests/test_train_real.py")
# Folders whose files are one unit of work as well: tests/flows shares one Prefect test server (its conftest).
SHARED_FOLDERS = ("tests/flows/",)


@dataclass
class RealLake:
    lake: Lake
    landing: Path  # the month files the lake ingested: January in FIRST, February and March in LATER
    january: dict[str, Any]  # every table's version once January alone had gone through ingest, silver and gold
    train: StageResult  # the one training run (promoted: its model is the champion)
    tracking: Any  # the lake's MLflow tracking (pipelines.train.tracking.Tracking)
    run: Any  # that run as MLflow records it


def landed_months(samples: Path, folder: Path) -> list[Path]:
    """The first ROWS_PER_MONTH trips of each month's real sample, as files named like TLC's: the first month in
    folder/FIRST, the others in folder/LATER."""
    files = []
    for month in MONTHS:
        source = samples / "yellow" / f"yellow_tripdata_sample_{month}.csv"
        lines = source.read_text().splitlines()[: ROWS_PER_MONTH + 1]
        target = folder / (FIRST if not files else LATER) / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n")
        files.append(target)
    return files


def build(spark: SparkSession, samples: Path, folder: Path) -> RealLake:
    landing = folder / "landing"
    january, *later = landed_months(samples, landing)
    params = write_params(
        folder / "conf",
        target="log1p",
        label_bounds={"min_minutes": LABEL_FLOOR, "max_minutes": LABEL_CAP},
        regressor={"type": "gbt", "params": {"maxIter": 10, "maxDepth": 4, "maxBins": 270}},
        split={"windows": 2, "window": "month", "test_days": 14, "min_train_rows": 500, "min_test_rows": 200},
    )
    lake = make_lake(spark, folder / "lake", params)
    run_ingest(lake, [str(january)])
    run_silver(lake)
    run_gold(lake)
    january_versions = {table: version for table in lake.specs if (version := lake.version(table)) is not None}
    run_ingest(lake, [str(path) for path in later])
    run_silver(lake)
    run_gold(lake)
    trained = run_train(lake, promote=True)
    run_score(lake)
    tracking = open_tracking(lake)
    run = tracking.client.get_run(trained.details["mlflow_run_id"])
    return RealLake(lake, landing, january_versions, trained, tracking, run)


def make_scheduler(config: Any, log: Any) -> Any:
    """`--dist loadfile` (what `make test` runs), except that SHARED_LAKE_FILES are one unit of work, so one worker
    builds the lake once, and so is each of SHARED_FOLDERS; None (xdist's own scheduler) for other modes. (xdist's
    `loadgroup` marks do not group under pytest 9.2: xdist 3.8 renames `item._nodeid`, which pytest 9 no longer
    reads.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedLakeScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = super()._split_scope(nodeid)
            if file in SHARED_LAKE_FILES:
                return FIXTURE
            return next((folder for folder in SHARED_FOLDERS if file.startswith(folder)), file)

    return SharedLakeScheduling(config, log)
