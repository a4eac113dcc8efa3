"""Bronze: raw TLC trip files (CSV or Parquet, yellow or green, any historical naming) landed as Delta rows."""

from pipelines.bronze.ingest import run_ingest
from pipelines.bronze.schema_map import ColumnMapping, map_columns

__all__ = ["ColumnMapping", "map_columns", "run_ingest"]
