"""Fits the trip generator's parameters on the real TLC yellow samples; writes data/reference/generator_params.json.

    python -m pipelines.generate.calibrate [--samples FOLDER] [--out FILE]

The file keeps fitted parameters only (distributions, regression coefficients, quantiles), never the sample rows.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

ROOT = Path(__file__).resolve().parents[2]
# ../shared beside the repo (as tests/conftest.py expects); from a worktree one level deeper, ../../shared.
SHARED = next(
    (p / "shared" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared").is_dir()), ROOT.parent / "shared"
)
DEFAULT_SAMPLES = SHARED / "data" / "nyc_tlc" / "csv" / "yellow"
PARAMS = ROOT / "data" / "reference" / "generator_params.json"
SAMPLE_GLOB = "yellow_tripdata_sample_2019-??.csv"
TOP_DROPOFFS = 12  # per pickup zone: the most frequent dropoff zones; the rest follows the overall dropoffs
MIN_PAIR_TRIPS = 20  # a zone pair with fewer sample trips uses its borough pair's distance distribution
MIN_SD = 0.08  # floor of a fitted log-normal spread, so a pair of near-identical trips still varies
JFK = 132
TIP_QUANTILES = 41


def load_samples(folder: Path) -> pa.Table:
    files = sorted(folder.glob(SAMPLE_GLOB))
    if not files:
        raise SystemExit(f"no {SAMPLE_GLOB} under {folder}")
    return pa.concat_tables([pcsv.read_csv(f) for f in files])


def usable(t: pa.Table) -> dict[str, np.ndarray]:
    """The sample trips a clean generated trip should look like, as numpy arrays."""
    cols = {name: t[name].to_numpy(zero_copy_only=False) for name in t.column_names if name != "store_and_fwd_flag"}
    cols["store_and_fwd_flag"] = np.asarray(t["store_and_fwd_flag"].to_pylist(), dtype=object)
    pickup = cols["pickup_datetime"].astype("datetime64[s]")
    seconds = (cols["dropoff_datetime"].astype("datetime64[s]") - pickup).astype(np.int64)
    keep = (
        (pickup >= np.datetime64("2019-01-01"))
        & (pickup < np.datetime64("2020-01-01"))
        & (seconds >= 30)
        & (seconds <= 6 * 3600)
        & (np.nan_to_num(cols["trip_distance"]) > 0)
        & (np.nan_to_num(cols["trip_distance"]) <= 100)
        & (np.nan_to_num(cols["fare_amount"]) > 0)
        & (np.nan_to_num(cols["passenger_count"].astype(float)) >= 1)
        & (np.nan_to_num(cols["pickup_location_id"].astype(float)) >= 1)
        & (np.nan_to_num(cols["dropoff_location_id"].astype(float)) >= 1)
    )
    out = {k: v[keep] for k, v in cols.items()}
    out["pickup"] = pickup[keep]
    out["duration_min"] = seconds[keep] / 60.0
    out["hour"] = ((out["pickup"] - out["pickup"].astype("datetime64[D]")).astype(np.int64) // 3600).astype(int)
    out["weekday"] = ((out["pickup"].astype("datetime64[D]").astype(np.int64) + 3) % 7).astype(int)  # Monday 0
    for name in (
        "pickup_location_id",
        "dropoff_location_id",
        "vendor_id",
        "passenger_count",
        "rate_code_id",
        "payment_type",
    ):
        out[name] = out[name].astype(np.int64)
    return out


def distribution(values: np.ndarray, top: int | None = None) -> dict[str, list]:
    counts = Counter(values.tolist()).most_common(top)
    return {"values": [v for v, _ in counts], "weights": [c for _, c in counts]}


def zone_boroughs(lookup: Path) -> dict[int, str]:
    table = pcsv.read_csv(lookup)
    return dict(zip(table["LocationID"].to_pylist(), table["Borough"].to_pylist()))


def fit_zones(s: dict[str, np.ndarray]) -> dict:
    """Pickup zone frequencies and, per pickup zone, its most frequent dropoff zones."""
    pickups = distribution(s["pickup_location_id"])
    dropoffs = distribution(s["dropoff_location_id"])
    conditional = {}
    for zone in pickups["values"]:
        chosen = s["dropoff_location_id"][s["pickup_location_id"] == zone]
        top = distribution(chosen, TOP_DROPOFFS)
        conditional[str(zone)] = {**top, "other": int(len(chosen) - sum(top["weights"]))}
    return {"pickup": pickups, "dropoff": dropoffs, "dropoff_by_pickup": conditional}


def fit_calendar(s: dict[str, np.ndarray]) -> dict:
    """Hour-of-day counts per weekday, and the mean trips per calendar day of each weekday."""
    by_weekday_hour = np.zeros((7, 24), dtype=np.int64)
    np.add.at(by_weekday_hour, (s["weekday"], s["hour"]), 1)
    days = s["pickup"].astype("datetime64[D]")
    unique_days, per_day = np.unique(days, return_counts=True)
    day_weekday = (unique_days.astype(np.int64) + 3) % 7
    per_weekday = [float(per_day[day_weekday == w].mean()) for w in range(7)]
    return {"hour_by_weekday": by_weekday_hour.tolist(), "trips_per_weekday": per_weekday}


def fit_distance_duration(s: dict[str, np.ndarray], boroughs: dict[int, str]) -> dict:
    """Log-normal distance per zone pair (or borough pair), and log duration regressed on log distance and hour.

    log(duration) = intercept + slope * log(distance) + hour effect + weekend effect + pair offset + noise.
    """
    log_d, log_t = np.log(s["trip_distance"]), np.log(s["duration_min"])
    pu, do = s["pickup_location_id"], s["dropoff_location_id"]
    hours = np.eye(24)[s["hour"]][:, 1:]
    weekend = (s["weekday"] >= 5).astype(float)[:, None]
    design = np.hstack([np.ones((len(log_d), 1)), log_d[:, None], hours, weekend])
    coef, *_ = np.linalg.lstsq(design, log_t, rcond=None)
    residual = log_t - design @ coef
    keys = pu * 1000 + do
    pairs = {}
    order = np.argsort(keys, kind="stable")
    unique, starts, counts = np.unique(keys[order], return_index=True, return_counts=True)
    for key, start, n in zip(unique, starts, counts):
        if n < MIN_PAIR_TRIPS:
            continue
        rows = order[start : start + n]
        offset = float(residual[rows].mean()) * n / (n + 10.0)  # shrunk towards 0 for thin pairs
        pairs[f"{key // 1000}-{key % 1000}"] = [
            round(float(log_d[rows].mean()), 4),
            round(max(float(log_d[rows].std()), MIN_SD), 4),
            round(offset, 4),
        ]
    borough_pairs = {}
    pu_b = np.array([boroughs.get(int(z), "Unknown") for z in pu], dtype=object)
    do_b = np.array([boroughs.get(int(z), "Unknown") for z in do], dtype=object)
    same = pu == do
    labels = np.where(same, "same:" + pu_b, pu_b + ">" + do_b)
    for label in np.unique(labels):
        rows = labels == label
        borough_pairs[str(label)] = [
            round(float(log_d[rows].mean()), 4),
            round(max(float(log_d[rows].std()), MIN_SD), 4),
        ]
    all_offsets = np.array([p[2] for p in pairs.values()])
    return {
        "distance_pairs": pairs,
        "distance_borough_pairs": borough_pairs,
        "distance_overall": [round(float(log_d.mean()), 4), round(float(log_d.std()), 4)],
        "duration": {
            "intercept": float(coef[0]),
            "log_distance": float(coef[1]),
            "hour": [0.0, *[float(c) for c in coef[2:25]]],
            "weekend": float(coef[25]),
            "sigma": float(np.sqrt(max(residual.var() - all_offsets.var(), 0.01))),
        },
    }


def fit_fares(s: dict[str, np.ndarray], boroughs: dict[int, str]) -> dict:
    """The metered fare as base + per mile + per minute (standard rate trips), surcharges, tolls and card tips."""
    standard = (s["rate_code_id"] == 1) & (s["duration_min"] <= 180)
    design = np.column_stack([np.ones(standard.sum()), s["trip_distance"][standard], s["duration_min"][standard]])
    coef, *_ = np.linalg.lstsq(design, s["fare_amount"][standard], rcond=None)
    residual = s["fare_amount"][standard] - design @ coef
    jfk = (s["pickup_location_id"] == JFK) | (s["dropoff_location_id"] == JFK)
    pu_b = np.array([boroughs.get(int(z), "Unknown") for z in s["pickup_location_id"]], dtype=object)
    do_b = np.array([boroughs.get(int(z), "Unknown") for z in s["dropoff_location_id"]], dtype=object)
    crossing = pu_b != do_b
    tolled = s["tolls_amount"] > 0
    card = (s["payment_type"] == 1) & (s["fare_amount"] > 0)
    tip_share = np.clip(s["tip_amount"][card] / s["fare_amount"][card], 0, 1.0)
    flat = s["fare_amount"][s["rate_code_id"] == 2]
    congestion = s["congestion_surcharge"]
    return {
        "fare": {
            "base": float(coef[0]),
            "per_mile": float(coef[1]),
            "per_minute": float(coef[2]),
            "sigma": float(1.4826 * np.median(np.abs(residual - np.median(residual)))),  # robust to disputes
            "increment": 0.5,
            "minimum": 2.5,
            "jfk_flat": float(np.median(flat)) if len(flat) else 52.0,
        },
        "rate_code_jfk": distribution(s["rate_code_id"][jfk]),
        "rate_code_other": distribution(s["rate_code_id"][~jfk]),
        "extra_by_hour": [distribution(s["extra"][(s["hour"] == h) & (s["extra"] >= 0)], 6) for h in range(24)],
        "mta_tax_rate": float((s["mta_tax"] == 0.5).mean()),
        "improvement_surcharge": 0.3,
        "congestion": {
            "null_rate": float(np.isnan(congestion).mean()),
            **distribution(congestion[~np.isnan(congestion) & (congestion >= 0)], 3),
        },
        "toll_rate": {"crossing": float(tolled[crossing].mean()), "within": float(tolled[~crossing].mean())},
        "toll_amount": distribution(s["tolls_amount"][tolled], 8),
        "payment_type": distribution(s["payment_type"]),
        "card_tip_share_quantiles": [
            round(float(q), 4) for q in np.quantile(tip_share, np.linspace(0, 1, TIP_QUANTILES))
        ],
    }


def fit(samples: Path, lookup: Path) -> dict:
    table = load_samples(samples)
    s = usable(table)
    boroughs = zone_boroughs(lookup)
    return {
        "about": "Fitted on the 12 monthly TLC yellow samples of 2019 by pipelines/generate/calibrate.py; "
        "parameters only, no sample rows.",
        "sample_rows": table.num_rows,
        "fitted_rows": int(len(s["pickup"])),
        "vendor": distribution(s["vendor_id"]),
        "passenger_count": distribution(s["passenger_count"][s["passenger_count"] <= 6]),
        "store_and_fwd_y_rate": float((s["store_and_fwd_flag"] == "Y").mean()),
        "zones": fit_zones(s),
        "calendar": fit_calendar(s),
        **fit_distance_duration(s, boroughs),
        **fit_fares(s, boroughs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--lookup", type=Path, default=ROOT / "data" / "reference" / "taxi_zone_lookup.csv")
    parser.add_argument("--out", type=Path, default=PARAMS)
    args = parser.parse_args(argv)
    params = fit(args.samples, args.lookup)
    args.out.write_text(json.dumps(params, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes) from {params['fitted_rows']:,} sample trips")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
