"""The trip-duration model: Spark MLlib on gold.trip_features, tracked in MLflow, pinned to Delta versions."""

from pipelines.train.runner import run_train

__all__ = ["run_train"]
