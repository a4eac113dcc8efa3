"""Maps the column names TLC has used over the years onto one canonical raw schema per taxi type."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lake.errors import InputError
from pipelines.schemas import RAW_TRIP_COLUMNS

# Normalised source name (lower case, letters and digits only) -> canonical raw column.
ALIASES: dict[str, str] = {
    "vendorid": "vendor_id",
    "vendorname": "vendor_id",
    "pickupdatetime": "pickup_datetime",
    "tpeppickupdatetime": "pickup_datetime",
    "lpeppickupdatetime": "pickup_datetime",
    "trippickupdatetime": "pickup_datetime",
    "dropoffdatetime": "dropoff_datetime",
    "tpepdropoffdatetime": "dropoff_datetime",
    "lpepdropoffdatetime": "dropoff_datetime",
    "tripdropoffdatetime": "dropoff_datetime",
    "passengercount": "passenger_count",
    "tripdistance": "trip_distance",
    "ratecodeid": "rate_code_id",
    "ratecode": "rate_code_id",
    "storeandfwdflag": "store_and_fwd_flag",
    "storeandforward": "store_and_fwd_flag",
    "pulocationid": "pickup_location_id",
    "pickuplocationid": "pickup_location_id",
    "dolocationid": "dropoff_location_id",
    "dropofflocationid": "dropoff_location_id",
    "paymenttype": "payment_type",
    "fareamount": "fare_amount",
    "fareamt": "fare_amount",
    "extra": "extra",
    "surcharge": "extra",
    "mtatax": "mta_tax",
    "tipamount": "tip_amount",
    "tipamt": "tip_amount",
    "tollsamount": "tolls_amount",
    "tollsamt": "tolls_amount",
    "ehailfee": "ehail_fee",
    "improvementsurcharge": "improvement_surcharge",
    "totalamount": "total_amount",
    "totalamt": "total_amount",
    "congestionsurcharge": "congestion_surcharge",
    "airportfee": "airport_fee",
    "triptype": "trip_type",
}
assert set(ALIASES.values()) <= set(RAW_TRIP_COLUMNS)

GREEN_MARKERS = {"lpeppickupdatetime", "lpepdropoffdatetime", "triptype", "ehailfee"}
YELLOW_MARKERS = {"tpeppickupdatetime", "tpepdropoffdatetime", "airportfee"}
REQUIRED = ("pickup_datetime", "dropoff_datetime")
UNSUPPORTED_FILE_KINDS = ("fhv", "fhvhv")


class SchemaMismatch(InputError):
    """A file whose columns match no known taxi schema."""


def normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass
class ColumnMapping:
    """How one file's columns land in bronze: canonical names by position, the rest rescued."""

    taxi_type: str
    canonical: dict[int, str] = field(default_factory=dict)  # column position -> canonical name
    rescued: dict[int, str] = field(default_factory=dict)  # column position -> key in the _rescued map

    def positional_names(self, width: int) -> list[str]:
        """One unique name per source column, in file order (canonical or a placeholder for rescued ones)."""
        return [self.canonical.get(i, f"_rescued_{i}") for i in range(width)]


def detect_taxi_type(normalised: set[str], file_name: str) -> str:
    lowered = file_name.lower().rsplit("/", 1)[-1]
    if any(kind in lowered for kind in UNSUPPORTED_FILE_KINDS):
        raise SchemaMismatch(f"{file_name}: for-hire-vehicle (fhv) files are not supported, only yellow and green")
    if normalised & GREEN_MARKERS or "green" in lowered:
        return "green"
    if normalised & YELLOW_MARKERS or "yellow" in lowered:
        return "yellow"
    return "yellow"  # the renamed samples carry no marker: both generic layouts are yellow's


def map_columns(header: list[str], file_name: str) -> ColumnMapping:
    """Maps a file's header onto the canonical raw schema; raises SchemaMismatch naming what is missing."""
    normalised = [normalise(name) for name in header]
    mapping = ColumnMapping(detect_taxi_type(set(normalised), file_name))
    for position, (original, norm) in enumerate(zip(header, normalised)):
        canonical = ALIASES.get(norm)
        if canonical and canonical not in mapping.canonical.values():
            mapping.canonical[position] = canonical
        else:
            mapping.rescued[position] = original.strip() or f"_c{position}"
    missing = [name for name in REQUIRED if name not in mapping.canonical.values()]
    if missing:
        shown = ", ".join(repr(h) for h in header[:12])
        raise SchemaMismatch(
            f"{file_name}: columns match no known taxi schema (no {' or '.join(missing)} column); header: {shown}"
        )
    return mapping
