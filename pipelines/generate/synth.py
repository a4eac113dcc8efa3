"""Clean synthetic yellow-taxi trips for one day, drawn from the fitted parameters (vectorised numpy, no row loop).

A trip is drawn in the order a real one happens: pickup time (hour-of-day by weekday), pickup zone, dropoff zone
given the pickup zone, distance given the zone pair, duration given distance, hour and pair, then the fare by the
metered formula (base + per mile + per minute), surcharges, tolls, and a tip when paid by card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.csv as pcsv

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "data" / "reference" / "generator_params.json"
ZONE_LOOKUP = ROOT / "data" / "reference" / "taxi_zone_lookup.csv"
MAX_ZONE = 1000  # zone ids are below this; a pair key is pickup * MAX_ZONE + dropoff
SECONDS_PER_DAY = 86_400
MIN_DURATION_S, MAX_DURATION_S = 30, 6 * 3600
MIN_DISTANCE, MAX_DISTANCE = 0.01, 120.0
RATE_JFK = 2
JFK = 132


@dataclass(frozen=True)
class Choice:
    """A discrete distribution: values and cumulative probabilities."""

    values: np.ndarray
    cumulative: np.ndarray

    @classmethod
    def of(cls, dist: dict, dtype: type = float) -> Choice:
        weights = np.asarray(dist["weights"], dtype=float)
        return cls(np.asarray(dist["values"], dtype=dtype), np.cumsum(weights) / weights.sum())

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        index = np.searchsorted(self.cumulative, rng.random(n), side="right")
        return self.values[np.minimum(index, len(self.values) - 1)]


class Model:
    """The fitted parameters as lookup arrays, built once per generation."""

    def __init__(self, params: dict, boroughs: dict[int, str]) -> None:
        self.params = params
        names = sorted(set(boroughs.values()))
        self.borough_of = np.zeros(MAX_ZONE, dtype=np.int64)
        for zone, name in boroughs.items():
            self.borough_of[zone] = names.index(name)
        zones = params["zones"]
        self.pickup = Choice.of(zones["pickup"], np.int64)
        self.dropoff = Choice.of(zones["dropoff"], np.int64)
        self.hour_by_weekday = [
            Choice.of({"values": list(range(24)), "weights": w}, np.int64)
            for w in params["calendar"]["hour_by_weekday"]
        ]
        self._dropoff_tables(zones["dropoff_by_pickup"])
        self._distance_tables(params, names)
        self.vendor = Choice.of(params["vendor"], np.int64)
        self.passengers = Choice.of(params["passenger_count"], np.int64)
        self.rate_jfk = Choice.of(params["rate_code_jfk"], np.int64)
        self.rate_other = Choice.of(params["rate_code_other"], np.int64)
        self.payment = Choice.of(params["payment_type"], np.int64)
        self.extra_by_hour = [Choice.of(d) for d in params["extra_by_hour"]]
        self.congestion = Choice.of(params["congestion"])
        self.toll_amount = Choice.of(params["toll_amount"])
        self.tip_quantiles = np.asarray(params["card_tip_share_quantiles"])

    def _dropoff_tables(self, by_pickup: dict) -> None:
        """Per pickup zone: cumulative probabilities of its top dropoff zones; beyond them, 'any other zone'."""
        width = max(len(d["values"]) for d in by_pickup.values())
        self.top_dropoffs = np.zeros((MAX_ZONE, width), dtype=np.int64)
        self.top_cumulative = np.ones((MAX_ZONE, width))  # 1.0: a column no draw reaches
        self.top_count = np.zeros(MAX_ZONE, dtype=np.int64)
        for zone, dist in by_pickup.items():
            k, weights = len(dist["values"]), np.asarray(dist["weights"], dtype=float)
            self.top_dropoffs[int(zone), :k] = dist["values"]
            self.top_cumulative[int(zone), :k] = np.cumsum(weights) / (weights.sum() + dist["other"])
            self.top_count[int(zone)] = k

    def _distance_tables(self, params: dict, names: list[str]) -> None:
        pairs = params["distance_pairs"]
        keys = np.array([int(k.split("-")[0]) * MAX_ZONE + int(k.split("-")[1]) for k in pairs], dtype=np.int64)
        values = np.array(list(pairs.values()), dtype=float).reshape(-1, 3)
        order = np.argsort(keys)
        self.pair_keys, self.pair_values = keys[order], values[order]
        overall = params["distance_overall"]
        nb = len(names)
        self.borough_pair = np.tile(np.asarray(overall, dtype=float), (nb, nb, 1))
        self.same_zone = np.tile(np.asarray(overall, dtype=float), (nb, 1))
        for label, value in params["distance_borough_pairs"].items():
            if label.startswith("same:"):
                if label[5:] in names:
                    self.same_zone[names.index(label[5:])] = value
            else:
                a, b = label.split(">")
                if a in names and b in names:
                    self.borough_pair[names.index(a), names.index(b)] = value

    def dropoffs(self, rng: np.random.Generator, pickups: np.ndarray) -> np.ndarray:
        column = (rng.random(len(pickups))[:, None] >= self.top_cumulative[pickups]).sum(axis=1)
        is_top = column < self.top_count[pickups]
        top = self.top_dropoffs[pickups, np.minimum(column, self.top_dropoffs.shape[1] - 1)]
        return np.where(is_top, top, self.dropoff.draw(rng, len(pickups)))

    def pair_distance_params(self, pu: np.ndarray, do: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, sd) of log distance and the duration offset of each trip's zone pair (borough pair fallback)."""
        keys = pu * MAX_ZONE + do
        at = np.minimum(np.searchsorted(self.pair_keys, keys), len(self.pair_keys) - 1)
        known = self.pair_keys[at] == keys
        bp, bd = self.borough_of[pu], self.borough_of[do]
        fallback = np.where((pu == do)[:, None], self.same_zone[bp], self.borough_pair[bp, bd])
        mean = np.where(known, self.pair_values[at, 0], fallback[:, 0])
        sd = np.where(known, self.pair_values[at, 1], fallback[:, 1])
        offset = np.where(known, self.pair_values[at, 2], 0.0)
        return mean, sd, offset


def load_model(params_path: Path = PARAMS, lookup: Path = ZONE_LOOKUP) -> Model:
    params = json.loads(Path(params_path).read_text())
    table = pcsv.read_csv(lookup)
    boroughs = dict(zip(table["LocationID"].to_pylist(), table["Borough"].to_pylist()))
    return Model(params, boroughs)


def rows_per_day(model: Model, days: list[date], rows: int) -> list[int]:
    """`rows` split over the days in proportion to each weekday's trips (largest remainder: the sum is exact)."""
    weights = np.array([model.params["calendar"]["trips_per_weekday"][d.weekday()] for d in days], dtype=float)
    share = rows * weights / weights.sum()
    counts = np.floor(share).astype(np.int64)
    remainder = rows - int(counts.sum())
    counts[np.argsort(-(share - counts), kind="stable")[:remainder]] += 1
    return counts.tolist()


def money(values: np.ndarray) -> np.ndarray:
    return np.round(values, 2)


def trips_for_day(model: Model, day: date, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """n clean trips picked up on `day`, sorted by pickup time; every value passes the silver rules."""
    p = model.params
    hours = model.hour_by_weekday[day.weekday()].draw(rng, n)
    offsets = np.sort(hours * 3600 + rng.integers(0, 3600, n))
    hours = offsets // 3600
    pickup = np.datetime64(day, "s") + offsets.astype("timedelta64[s]")
    pu = model.pickup.draw(rng, n)
    do = model.dropoffs(rng, pu)
    mean, sd, pair_offset = model.pair_distance_params(pu, do)
    distance = np.clip(np.round(np.exp(mean + sd * rng.standard_normal(n)), 2), MIN_DISTANCE, MAX_DISTANCE)
    d = p["duration"]
    weekend = 1.0 if day.weekday() >= 5 else 0.0
    log_minutes = (
        d["intercept"]
        + d["log_distance"] * np.log(distance)
        + np.asarray(d["hour"])[hours]
        + d["weekend"] * weekend
        + pair_offset
        + d["sigma"] * rng.standard_normal(n)
    )
    seconds = np.clip(np.round(np.exp(log_minutes) * 60), MIN_DURATION_S, MAX_DURATION_S).astype(np.int64)
    minutes = seconds / 60.0
    touches_jfk = (pu == JFK) | (do == JFK)
    rate = np.where(touches_jfk, model.rate_jfk.draw(rng, n), model.rate_other.draw(rng, n))
    f = p["fare"]
    metered = f["base"] + f["per_mile"] * distance + f["per_minute"] * minutes + f["sigma"] * rng.standard_normal(n)
    metered = np.maximum(np.round(metered / f["increment"]) * f["increment"], f["minimum"])
    fare = np.where(rate == RATE_JFK, f["jfk_flat"], metered)
    extra = np.zeros(n)
    for hour in range(24):
        at_hour = hours == hour
        extra[at_hour] = model.extra_by_hour[hour].draw(rng, int(at_hour.sum()))
    mta_tax = np.where(rng.random(n) < p["mta_tax_rate"], 0.5, 0.0)
    crossing = model.borough_of[pu] != model.borough_of[do]
    toll_rate = np.where(crossing, p["toll_rate"]["crossing"], p["toll_rate"]["within"])
    tolls = np.where(rng.random(n) < toll_rate, model.toll_amount.draw(rng, n), 0.0)
    payment = model.payment.draw(rng, n)
    share = np.interp(rng.random(n), np.linspace(0, 1, len(model.tip_quantiles)), model.tip_quantiles)
    tip = money(np.where(payment == 1, fare * share, 0.0))
    congestion = np.where(rng.random(n) < p["congestion"]["null_rate"], np.nan, model.congestion.draw(rng, n))
    improvement = np.full(n, p["improvement_surcharge"])
    total = money(fare + extra + mta_tax + tip + tolls + improvement + np.nan_to_num(congestion))
    return {
        "vendor_id": model.vendor.draw(rng, n),
        "pickup": pickup,
        "dropoff": pickup + seconds.astype("timedelta64[s]"),
        "passenger_count": model.passengers.draw(rng, n),
        "trip_distance": distance,
        "rate_code_id": rate,
        "store_and_fwd_flag": np.where(rng.random(n) < p["store_and_fwd_y_rate"], "Y", "N"),
        "pickup_location_id": pu,
        "dropoff_location_id": do,
        "payment_type": payment,
        "fare_amount": fare,
        "extra": extra,
        "mta_tax": mta_tax,
        "tip_amount": tip,
        "tolls_amount": tolls,
        "improvement_surcharge": improvement,
        "total_amount": total,
        "congestion_surcharge": congestion,
    }
