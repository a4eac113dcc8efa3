"""MLflow wiring: where runs go, how Delta inputs are pinned to a run, and the registry's champion alias."""

from __future__ import annotations

import logging
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import mlflow
import mlflow.spark
from mlflow.data.delta_dataset_source import DeltaDatasetSource
from mlflow.data.spark_dataset import SparkDataset
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from lake import Lake
from lake.config import is_uri, local_path
from lake.errors import ConfigError

CHAMPION = "champion"
MODEL_ARTIFACT = "model"
PARAMS_ARTIFACT = "model_params.json"  # the resolved parameters, read back by --reproduce
MLFLOW_DIR = "_mlflow"
STAGED_MODELS = "models"  # Lake.staging folder of a model's files between Spark and MLflow
STAGED_AT = "%Y%m%dT%H%M%SZ"  # a staged model's folder is <purpose>-<UTC start>-<hex>
STALE_STAGING = timedelta(hours=24)  # older than any train or score run: what a killed run left behind
WEB_SCHEMES = ("http://", "https://")
LOG = logging.getLogger(__name__)
EXPORTED_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")  # what mlflow's URI setters export


def input_tag(table: str, field: str) -> str:
    """Run tag holding one fact about an input table, e.g. input.gold.trip_features.version."""
    return f"input.{table}.{field}"


@dataclass(frozen=True)
class Tracking:
    """The MLflow server (or embedded store) a lake's runs go to, its experiment and registered model."""

    uri: str
    experiment_id: str
    model_name: str
    client: MlflowClient

    def run_url(self, run_id: str) -> str:
        """The run's web page on a tracking server; for a local store, where the run is stored."""
        if self.uri.startswith(WEB_SCHEMES):
            return run_page(self.uri, self.experiment_id, run_id)
        return f"{self.uri} experiment {self.experiment_id} run {run_id}"


def run_page(base_url: str, experiment_id: str, run_id: str) -> str:
    """A run's page in the MLflow UI served at base_url (a tracking server, or `mlflow ui` over a local store).
    The one place that knows the UI's URL layout."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def tracking_uri(lake: Lake) -> str:
    """conf mlflow.tracking_uri (or MLFLOW_TRACKING_URI), else an SQLite store under the lake root."""
    configured = lake.conf.get("mlflow.tracking_uri")
    if configured:
        return str(configured)
    if is_uri(lake.root):
        raise ConfigError(
            f"the lake root {lake.root} is not a local folder: set mlflow.tracking_uri (or MLFLOW_TRACKING_URI)"
        )
    folder = Path(lake.root) / MLFLOW_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def point_mlflow_at(uri: str) -> None:
    """Sets MLflow's process-wide tracking and registry URIs for its fluent API. MLflow's setters also export
    MLFLOW_TRACKING_URI and MLFLOW_REGISTRY_URI, which our config reads as the user's choice: the next lake opened
    in this process (a served flow, a test) would write its runs into this lake's store. Both are put back."""
    before = {name: os.environ.get(name) for name in EXPORTED_ENV}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def open_tracking(lake: Lake) -> Tracking:
    """Points MLflow at the lake's tracking store and makes sure the experiment exists."""
    uri = tracking_uri(lake)
    point_mlflow_at(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = str(lake.conf.require("mlflow.experiment"))
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    elif lake.conf.get("mlflow.tracking_uri"):
        experiment_id = client.create_experiment(name)  # the server decides where artifacts go
    else:
        artifacts = (Path(lake.root) / MLFLOW_DIR / "artifacts").resolve()
        experiment_id = client.create_experiment(name, artifact_location=artifacts.as_uri())
    return Tracking(uri, experiment_id, str(lake.conf.require("mlflow.registered_model")), client)


class CountedDataset(SparkDataset):
    """A SparkDataset whose profile is a row count the run has already taken. SparkDataset's own profile sends every
    row through a Python worker (an RDD `mapPartitions` with a 5 s approximate sum) to count the rows again."""

    def __init__(self, df: DataFrame, source: DeltaDatasetSource, name: str, rows: int) -> None:
        super().__init__(df=df, source=source, name=name)
        self._rows = rows

    @property
    def profile(self) -> dict[str, int]:
        return {"approx_count": self._rows}  # exact: the key is MLflow's


def log_delta_input(lake: Lake, table: str, version: int, df: DataFrame, context: str, rows: int) -> None:
    """Pins a Delta table version to the active run: an MLflow dataset input (`rows`: df's row count, known to the
    caller) and input.<table>.* tags."""
    path = lake.path(table)
    # The source is built here, not by mlflow.data.from_spark(path=...): that recognises a Delta table by listing the
    # path with os.listdir, so a lake on object storage (s3a://...) fails with "does not refer to a Delta table".
    source = DeltaDatasetSource(path=path, delta_table_version=str(version))
    dataset = CountedDataset(df, source, f"{table}@v{version}", rows)
    mlflow.log_input(dataset, context=context)
    mlflow.set_tags({input_tag(table, "version"): str(version), input_tag(table, "path"): path})


def champion_version(tracking: Tracking) -> mlflow.entities.model_registry.ModelVersion | None:
    """The registered model version holding the champion alias, None when there is none yet."""
    try:
        return tracking.client.get_model_version_by_alias(tracking.model_name, CHAMPION)
    except MlflowException:
        return None


def champion_uri(tracking: Tracking) -> str:
    return f"models:/{tracking.model_name}@{CHAMPION}"


@contextmanager
def model_staging(lake: Lake, purpose: str) -> Iterator[tuple[str | None, str]]:
    """(dfs_tmpdir, dst_path) for MLflow's Spark flavor while a model's files go between Spark and MLflow; both are
    removed when the block ends, whatever it raised.

    Spark ML writes and reads a model's files from the executors (some lazily, when a transform runs), so on a
    cluster they are staged where every executor sees them (Lake.staging; None on a local master: MLflow's default).
    A root in a shared folder gets the download itself, which MLflow then gives Spark as it is.
    """
    now = datetime.now(timezone.utc)
    staging = lake.staging(f"{STAGED_MODELS}/{purpose}-{now:{STAGED_AT}}-{uuid.uuid4().hex[:16]}")
    if staging is not None:
        remove_stale_staging(lake, now)
    with tempfile.TemporaryDirectory(prefix="taxi-model-", ignore_cleanup_errors=True) as download:
        try:
            if staging is not None and (folder := local_path(staging)) is not None:
                download = os.path.join(folder, "download")
                os.makedirs(download)
            yield staging, download
        finally:
            if staging is not None:
                try:
                    lake.remove_staged(staging)
                except Exception as exc:  # a copy left behind is garbage, not an error: what the block raised matters
                    LOG.warning("could not remove the staged model %s: %s", staging, str(exc)[:300])


def remove_stale_staging(lake: Lake, now: datetime) -> list[str]:
    """Removes the staged models a killed run left behind (started over STALE_STAGING before now); returns them.
    Folders not named by model_staging are left alone, and a failed removal is only logged."""
    removed = []
    for location in lake.staged(STAGED_MODELS):
        started = re.search(r"-(\d{8}T\d{6}Z)-[0-9a-f]+$", location.rstrip("/"))
        if started is None:
            continue
        if now - datetime.strptime(started[1], STAGED_AT).replace(tzinfo=timezone.utc) > STALE_STAGING:
            try:
                lake.remove_staged(location)
                removed.append(location)
            except Exception as exc:  # the next run tries again
                LOG.warning("could not remove the stale staged model %s: %s", location, str(exc)[:300])
    if removed:
        LOG.info("removed %d staged model folder(s) older than %s: %s", len(removed), STALE_STAGING, removed)
    return removed


@contextmanager
def champion_model(lake: Lake, tracking: Tracking) -> Iterator[PipelineModel]:
    """The champion as a Spark pipeline, for the block's transforms (its files stay until the block ends)."""
    with model_staging(lake, "score") as (staging, download):
        yield mlflow.spark.load_model(champion_uri(tracking), dfs_tmpdir=staging, dst_path=download)


def set_champion(tracking: Tracking, version: str) -> None:
    tracking.client.set_registered_model_alias(tracking.model_name, CHAMPION, version)


def register_version(tracking: Tracking, model_uri: str) -> str:
    """Registers a logged model as a new version of the lake's registered model; returns the version."""
    return str(mlflow.register_model(model_uri, tracking.model_name).version)


def delete_version(tracking: Tracking, version: str) -> None:
    tracking.client.delete_model_version(tracking.model_name, version)
