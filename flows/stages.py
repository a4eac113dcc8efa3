"""One flow per stage, for running or re-running a single stage from the UI or `lake run <flow>`."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow

from flows.runtime import landing_source, open_lake, resolve_run_date
from flows.tasks import gold_task, ingest_with_retries, score_task, silver_task, train_task


@flow(name="ingest")
def ingest(
    paths: list[str] | None = None,
    run_date: date | None = None,
    landing: str | None = None,
    env: str | None = None,
    lake_root: str | None = None,
) -> dict[str, Any]:
    """Lands raw TLC files in bronze.trips: the given paths (files, folders, globs), else the landing folder."""
    lake = open_lake(env, lake_root)
    sources = paths or [landing_source(lake.conf, resolve_run_date(run_date, lake.conf), landing)]
    return ingest_with_retries(lake.conf)(lake, sources).to_dict()


@flow(name="silver")
def silver(reprocess_quarantine: bool = False, env: str | None = None, lake_root: str | None = None) -> dict[str, Any]:
    """Cleans and validates the bronze rows not processed yet; reprocess_quarantine re-checks quarantined rows."""
    return silver_task(open_lake(env, lake_root), reprocess_quarantine).to_dict()


@flow(name="gold")
def gold(full_refresh: bool = False, env: str | None = None, lake_root: str | None = None) -> dict[str, Any]:
    """Updates the features and analytics tables from new silver rows (all of them with full_refresh)."""
    return gold_task(open_lake(env, lake_root), full_refresh).to_dict()


@flow(name="train")
def train(
    promote: bool = False, reproduce_run_id: str | None = None, env: str | None = None, lake_root: str | None = None
) -> dict[str, Any]:
    """Trains the model on the current gold tables (or reproduces an MLflow run's data versions)."""
    return train_task(open_lake(env, lake_root), promote, reproduce_run_id).to_dict()


@flow(name="score")
def score(rescore: bool = False, env: str | None = None, lake_root: str | None = None) -> dict[str, Any]:
    """Scores the trips of gold.trip_features not scored yet with the champion; rescore re-predicts every trip."""
    return score_task(open_lake(env, lake_root), rescore).to_dict()
