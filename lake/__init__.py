"""Storage layer of taxi-lakehouse: Spark session, table catalog and Delta helpers. Imports nothing else of ours."""

from lake.catalog import Lake, TableSpec
from lake.config import Conf, load_conf

__all__ = ["Conf", "Lake", "TableSpec", "load_conf"]
