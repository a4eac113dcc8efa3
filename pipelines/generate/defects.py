"""Defects injected into generated trips, each breaking a known set of silver rules (conf/expectations/silver.yaml).

Every kind breaks exactly one rule, except where the rules themselves overlap: a dropoff before its pickup also
makes the duration negative (duration_within_bounds), and a pickup before the TLC era is also outside its file's
month. The rules a kind breaks are listed with it, so the expected count per rule is exact. `fail` rules
(bronze_lineage_present, taxi_type_known) are never broken: a raw file cannot break them, and they would stop the
run. `warn` kinds keep the row in silver and are counted by silver as warnings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lake.errors import InputError

# A row's last CSV field is followed by EXTRA_FIELD: replaced by a delimiter after writing, it adds a column.
EXTRA_FIELD_MARK = "\x01"
UNKNOWN_ZONES = (300, 400)  # zone ids the lookup (1-265) does not hold
ERA_START = np.datetime64("2005-01-01", "s")  # before the TLC record era of pickup_in_window (2009-2030)
DAY = np.timedelta64(1, "D")


@dataclass
class Edits:
    """Value changes that are not numbers: missing values (any format) and raw text (CSV only)."""

    nulls: dict[str, list[np.ndarray]] = field(default_factory=dict)
    texts: dict[str, list[tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]]] = field(default_factory=dict)

    def null(self, column: str, rows: np.ndarray) -> None:
        self.nulls.setdefault(column, []).append(rows)

    def text(self, column: str, rows: np.ndarray, make: Callable[[np.ndarray], np.ndarray]) -> None:
        """make: the column's written text at rows -> the text to write instead."""
        self.texts.setdefault(column, []).append((rows, make))


Apply = Callable[[dict[str, np.ndarray], np.ndarray, Edits, np.random.Generator], None]


@dataclass(frozen=True)
class Kind:
    name: str
    rules: tuple[str, ...]  # the silver rules a row with this defect breaks
    action: str  # drop (quarantined) or warn (kept, counted)
    apply: Apply
    text_only: bool = False  # needs raw text: CSV only


def _shift(trips: dict, rows: np.ndarray, by: np.ndarray) -> None:
    trips["pickup"][rows] += by
    trips["dropoff"][rows] += by


def _dropoff_before_pickup(trips: dict, rows: np.ndarray, edits: Edits, rng: np.random.Generator) -> None:
    took = trips["dropoff"][rows] - trips["pickup"][rows]
    trips["dropoff"][rows] = trips["pickup"][rows] - took


def _overlong(trips: dict, rows: np.ndarray, edits: Edits, rng: np.random.Generator) -> None:
    hours = rng.integers(13 * 3600, 20 * 3600, len(rows)).astype("timedelta64[s]")
    trips["dropoff"][rows] = trips["pickup"][rows] + hours


def _outside_month(trips: dict, rows: np.ndarray, edits: Edits, rng: np.random.Generator) -> None:
    _shift(trips, rows, np.full(len(rows), -35 * DAY).astype("timedelta64[s]"))  # always another month


def _before_era(trips: dict, rows: np.ndarray, edits: Edits, rng: np.random.Generator) -> None:
    start = trips["pickup"][rows].astype("datetime64[D]").astype("datetime64[s]")
    _shift(trips, rows, ERA_START - start)


def _set(column: str, low: float, high: float, integer: bool = True) -> Apply:
    def apply(trips: dict, rows: np.ndarray, edits: Edits, rng: np.random.Generator) -> None:
        if integer:
            trips[column][rows] = rng.integers(int(low), int(high), len(rows))
        else:
            trips[column][rows] = np.round(rng.uniform(low, high, len(rows)), 2)

    return apply


def _negate(column: str) -> Apply:
    def apply(trips: dict, rows: np.ndarray, edits: Edits, rng: np.random.Generator) -> None:
        trips[column][rows] = -np.maximum(trips[column][rows], 0.5)

    return apply


def _missing(column: str) -> Apply:
    def apply(trips: dict, rows: np.ndarray, edits: Edits, rng: np.random.Generator) -> None:
        edits.null(column, rows)

    return apply


def _constant(column: str, value: object) -> Apply:
    def apply(trips: dict, rows: np.ndarray, edits: Edits, rng: np.random.Generator) -> None:
        trips[column][rows] = value

    return apply


def _unparseable_tip(trips: dict, rows: np.ndarray, edits: Edits, rng: np.random.Generator) -> None:
    edits.text("tip_amount", rows, lambda text: np.char.add("$", text.astype(str)))  # "$1.95": not a number


def _extra_field(trips: dict, rows: np.ndarray, edits: Edits, rng: np.random.Generator) -> None:
    edits.text(LAST_COLUMN, rows, lambda text: np.char.add(text.astype(str), EXTRA_FIELD_MARK + "X"))


LAST_COLUMN = "congestion_surcharge"  # the last column of both TLC headers used here

KINDS: list[Kind] = [
    Kind("extra_csv_field", ("well_formed_row",), "drop", _extra_field, text_only=True),
    Kind("unparseable_tip", ("values_parse",), "drop", _unparseable_tip, text_only=True),
    Kind("missing_pickup_time", ("pickup_not_null",), "drop", _missing("pickup")),
    Kind("missing_dropoff_time", ("dropoff_not_null",), "drop", _missing("dropoff")),
    Kind("dropoff_before_pickup", ("dropoff_after_pickup", "duration_within_bounds"), "drop", _dropoff_before_pickup),
    Kind("trip_over_12_hours", ("duration_within_bounds",), "drop", _overlong),
    Kind("distance_over_250_miles", ("distance_within_bounds",), "drop", _set("trip_distance", 250.5, 999.0, False)),
    Kind("passengers_over_9", ("passenger_count_range",), "drop", _set("passenger_count", 10, 100)),
    Kind("missing_pickup_zone", ("pickup_zone_present",), "drop", _missing("pickup_location_id")),
    Kind("missing_dropoff_zone", ("dropoff_zone_present",), "drop", _missing("dropoff_location_id")),
    Kind("unknown_pickup_zone", ("known_pickup_zone",), "drop", _set("pickup_location_id", *UNKNOWN_ZONES)),
    Kind("unknown_dropoff_zone", ("known_dropoff_zone",), "drop", _set("dropoff_location_id", *UNKNOWN_ZONES)),
    Kind("negative_fare", ("fare_non_negative",), "drop", _negate("fare_amount")),
    Kind("negative_total", ("total_non_negative",), "drop", _negate("total_amount")),
    Kind("unknown_payment_type", ("payment_type_code",), "drop", _set("payment_type", 7, 10)),
    Kind("unknown_rate_code", ("rate_code_code",), "drop", _set("rate_code_id", 7, 10)),
    Kind("pickup_outside_file_month", ("pickup_in_source_month",), "drop", _outside_month),
    Kind("pickup_before_tlc_era", ("pickup_in_source_month", "pickup_in_window"), "drop", _before_era),
    Kind("zero_distance", ("distance_positive",), "warn", _constant("trip_distance", 0.0)),
    Kind("zero_passengers", ("passenger_count_positive",), "warn", _constant("passenger_count", 0)),
    Kind("unknown_vendor", ("vendor_known",), "warn", _set("vendor_id", 8, 10)),
    Kind("bad_store_and_fwd_flag", ("store_and_fwd_flag_code",), "warn", _constant("store_and_fwd_flag", "X")),
]
BY_NAME = {kind.name: kind for kind in KINDS}


def kinds_for(file_format: str, names: list[str] | None = None) -> list[Kind]:
    """The defect kinds to inject: the named ones (default all) that the file format can hold."""
    if names is not None:
        unknown = sorted(set(names) - set(BY_NAME))
        if unknown:
            raise InputError(f"unknown defect kind(s) {unknown}; known: {sorted(BY_NAME)}")
    chosen = [k for k in KINDS if names is None or k.name in names]
    if file_format != "csv":
        text = [k.name for k in chosen if k.text_only]
        if names is not None and text:
            raise InputError(f"defect kind(s) {text} need CSV text; use --format csv")
        chosen = [k for k in chosen if not k.text_only]
    return chosen


def plan(rows: int, rate: float, kinds: list[Kind], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Which rows get a defect and which kind (index into kinds): round(rate * rows) rows, kinds split evenly."""
    if not kinds or rate <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    rng = np.random.default_rng([seed, 1])
    total = min(int(round(rate * rows)), rows)
    positions = np.sort(rng.choice(rows, total, replace=False)).astype(np.int64)
    counts = np.full(len(kinds), total // len(kinds))
    counts[: total % len(kinds)] += 1
    labels = np.repeat(np.arange(len(kinds)), counts)
    rng.shuffle(labels)
    return positions, labels


def expected(kinds: list[Kind], labels: np.ndarray) -> dict:
    """Counts per kind and per rule, split by the silver action (drop: quarantined, warn: kept and counted)."""
    per_kind = Counter(labels.tolist())
    by_kind = {kinds[i].name: per_kind.get(i, 0) for i in range(len(kinds))}
    by_rule: dict[str, Counter] = {"drop": Counter(), "warn": Counter()}
    for kind in kinds:
        for rule in kind.rules:
            by_rule[kind.action][rule] += by_kind[kind.name]
    return {
        "defects_by_kind": by_kind,
        "quarantined_rows": sum(by_kind[k.name] for k in kinds if k.action == "drop"),
        "quarantined_by_rule": {rule: n for rule, n in sorted(by_rule["drop"].items()) if n},
        "warned_by_rule": {rule: n for rule, n in sorted(by_rule["warn"].items()) if n},
    }


def inject(
    trips: dict[str, np.ndarray], kinds: list[Kind], rows: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> Edits:
    """Applies each kind to its rows of one day's trips (numbers in place); returns the null and text edits."""
    edits = Edits()
    for index, kind in enumerate(kinds):
        chosen = rows[labels == index]
        if len(chosen):
            kind.apply(trips, chosen, edits, rng)
    return edits
