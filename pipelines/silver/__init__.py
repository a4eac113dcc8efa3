"""The silver stage: typed, validated, deduplicated trips, with quarantine and row accounting."""

from pipelines.silver.run import run_silver

__all__ = ["run_silver"]
