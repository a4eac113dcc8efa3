"""Gold: model features and analytics tables built from silver.trips, recomputed per touched day."""

from pipelines.gold.run import GOLD_TABLES, affected_days, build_gold, run_gold

__all__ = ["GOLD_TABLES", "affected_days", "build_gold", "run_gold"]
