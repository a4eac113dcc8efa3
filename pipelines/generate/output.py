"""Generated trips as TLC files: the real TLC headers, CSV as TLC writes it (no quotes) or typed Parquet."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from pipelines.generate.defects import EXTRA_FIELD_MARK, Edits

# The 2019 TLC headers (yellow: also the header of the current yellow CSV exports up to 2021).
YELLOW_HEADER = [
    "VendorID", "tpep_pickup_datetime", "tpep_dropoff_datetime", "passenger_count", "trip_distance", "RatecodeID",
    "store_and_fwd_flag", "PULocationID", "DOLocationID", "payment_type", "fare_amount", "extra", "mta_tax",
    "tip_amount", "tolls_amount", "improvement_surcharge", "total_amount", "congestion_surcharge",
]  # fmt: skip
GREEN_HEADER = [
    "VendorID", "lpep_pickup_datetime", "lpep_dropoff_datetime", "store_and_fwd_flag", "RatecodeID", "PULocationID",
    "DOLocationID", "passenger_count", "trip_distance", "fare_amount", "extra", "mta_tax", "tip_amount",
    "tolls_amount", "ehail_fee", "improvement_surcharge", "total_amount", "payment_type", "trip_type",
    "congestion_surcharge",
]  # fmt: skip
HEADERS = {"yellow": YELLOW_HEADER, "green": GREEN_HEADER}
# Header name -> generated column (the rest of the name is the same).
SOURCE = {
    "VendorID": "vendor_id", "RatecodeID": "rate_code_id", "PULocationID": "pickup_location_id",
    "DOLocationID": "dropoff_location_id", "tpep_pickup_datetime": "pickup", "tpep_dropoff_datetime": "dropoff",
    "lpep_pickup_datetime": "pickup", "lpep_dropoff_datetime": "dropoff",
}  # fmt: skip
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
# Parquet types of the TLC Parquet files (codes TLC stores as doubles stay doubles).
PARQUET_DOUBLE_CODES = {"passenger_count", "rate_code_id", "trip_type"}


def file_name(taxi: str, period: str, file_format: str) -> str:
    """TLC naming: yellow_tripdata_2019-01.csv for a month, yellow_tripdata_2019-01-05.csv for a day."""
    return f"{taxi}_tripdata_{period}.{file_format}"


def _column(trips: dict[str, np.ndarray], name: str, n: int, file_format: str) -> pa.Array:
    source = SOURCE.get(name, name)
    if name == "ehail_fee":
        return pa.nulls(n, pa.float64())
    if name == "trip_type":
        values = np.ones(n, dtype=np.int64)
    else:
        values = trips[source]
    if source in ("pickup", "dropoff"):
        stamps = pa.array(values.astype("datetime64[s]"))
        return stamps.cast(pa.timestamp("us")) if file_format == "parquet" else pc.strftime(stamps, TIMESTAMP_FORMAT)
    if values.dtype.kind == "f":
        return pa.array(values, mask=np.isnan(values))
    if file_format == "parquet" and source in PARQUET_DOUBLE_CODES:
        return pa.array(values.astype(np.float64))
    return pa.array(values)


def _edited(column: pa.Array, name: str, edits: Edits) -> pa.Array:
    nulls = edits.nulls.get(name, [])
    texts = edits.texts.get(name, [])
    if texts:
        column = column.cast(pa.string())
        for rows, make in texts:
            written = column.take(pa.array(rows)).fill_null("").to_numpy(zero_copy_only=False)
            mask = np.zeros(len(column), dtype=bool)
            mask[rows] = True
            column = pc.replace_with_mask(column, pa.array(mask), pa.array(make(written), pa.string()))
    if nulls:
        mask = np.zeros(len(column), dtype=bool)
        mask[np.concatenate(nulls)] = True
        column = pc.if_else(pa.array(mask), pa.nulls(len(column), column.type), column)
    return column


def to_table(trips: dict[str, np.ndarray], taxi: str, file_format: str, edits: Edits) -> pa.Table:
    """One day's trips under the taxi type's TLC header, with the defect edits applied."""
    n = len(trips["pickup"])
    columns = {}
    for name in HEADERS[taxi]:
        source = SOURCE.get(name, name)
        columns[name] = _edited(_column(trips, name, n, file_format), source, edits)
    return pa.table(columns)


class TripFile:
    """One output file, written a day at a time (a month file receives several days)."""

    def __init__(self, path: Path, taxi: str, file_format: str) -> None:
        self.path, self.taxi, self.file_format = path, taxi, file_format
        self.rows = 0
        self._parquet: pq.ParquetWriter | None = None
        self._csv = None

    def write(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        if self.file_format == "parquet":
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table)
            return
        if self._csv is None:
            self._csv = open(self.path, "wb")
            self._csv.write((",".join(HEADERS[self.taxi]) + "\n").encode())
        buffer = io.BytesIO()
        pcsv.write_csv(table, buffer, pcsv.WriteOptions(include_header=False, quoting_style="none"))
        self._csv.write(buffer.getvalue().replace(EXTRA_FIELD_MARK.encode(), b","))

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()
