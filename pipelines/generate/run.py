"""generate: TLC trip files with known defects, and `_expected.json` saying what silver should make of them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from lake.errors import InputError
from pipelines.generate import defects
from pipelines.generate.output import HEADERS, TripFile, file_name, to_table
from pipelines.generate.synth import PARAMS, ZONE_LOOKUP, load_model, rows_per_day, trips_for_day

EXPECTED = "_expected.json"
FORMATS = ("csv", "parquet")
LAYOUTS = ("day", "month")  # one file per day or per month
FIRST_DAY, LAST_DAY = date(2009, 1, 1), date(2030, 12, 31)  # the pickup_in_window rule's TLC era
DEFAULT_DEFECT_RATE = 0.01


def _check(rows: int, days: int, start: date, file_format: str, taxi: str, layout: str, rate: float) -> None:
    if rows < 0 or days < 1:
        raise InputError(f"--rows must be >= 0 and --days >= 1 (got rows={rows}, days={days})")
    if start < FIRST_DAY or start + timedelta(days=days - 1) > LAST_DAY:
        raise InputError(f"days must fall within {FIRST_DAY}..{LAST_DAY} (silver's pickup_in_window rule)")
    if file_format not in FORMATS or taxi not in HEADERS or layout not in LAYOUTS:
        raise InputError(f"format must be {FORMATS}, taxi {sorted(HEADERS)}, files {LAYOUTS}")
    if not 0 <= rate <= 1:
        raise InputError(f"--defect-rate must be between 0 and 1 (got {rate})")


def generate(
    out: str | Path,
    rows: int,
    start: date,
    days: int = 1,
    file_format: str = "csv",
    seed: int = 0,
    defect_rate: float = DEFAULT_DEFECT_RATE,
    taxi: str = "yellow",
    layout: str = "day",
    defect_kinds: list[str] | None = None,
    params: Path = PARAMS,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Writes `rows` trips picked up over `days` days from `start` into TLC-named files under `out`.

    Deterministic for (arguments, seed, parameter file). Returns and writes `<out>/_expected.json`: the files and
    their rows, the defects by kind, and what silver should do (quarantined rows and counts per rule).
    """
    _check(rows, days, start, file_format, taxi, layout, defect_rate)
    say = progress or (lambda message: None)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    model = load_model(params, ZONE_LOOKUP)
    calendar = [start + timedelta(days=i) for i in range(days)]
    per_day = rows_per_day(model, calendar, rows)
    kinds = defects.kinds_for(file_format, defect_kinds)
    positions, labels = defects.plan(rows, defect_rate, kinds, seed)
    files: dict[str, TripFile] = {}
    first_row = 0
    for day, n in zip(calendar, per_day):
        if n == 0:
            continue
        period = day.isoformat() if layout == "day" else day.isoformat()[:7]
        name = file_name(taxi, period, file_format)
        if name not in files:
            for done in files.values():  # days come in order: an earlier file is complete
                done.close()
            files[name] = TripFile(folder / name, taxi, file_format)
        trips = trips_for_day(model, day, n, np.random.default_rng([seed, 0, day.toordinal()]))
        lo, hi = np.searchsorted(positions, [first_row, first_row + n])
        edits = defects.inject(
            trips, kinds, positions[lo:hi] - first_row, labels[lo:hi], np.random.default_rng([seed, 2, day.toordinal()])
        )
        files[name].write(to_table(trips, taxi, file_format, edits))
        first_row += n
        say(f"{day}: {n:,} trips -> {name}")
    for trip_file in files.values():
        trip_file.close()
    outcome = defects.expected(kinds, labels)
    summary = {
        "generator": {
            "rows": rows,
            "start": start.isoformat(),
            "days": days,
            "format": file_format,
            "seed": seed,
            "defect_rate": defect_rate,
            "taxi": taxi,
            "files": layout,
            "defect_kinds": [k.name for k in kinds],
            "params_sha256": hashlib.sha256(Path(params).read_bytes()).hexdigest(),
        },
        "rows": rows,
        "files": [{"name": name, "rows": f.rows} for name, f in files.items()],
        **outcome,
        "silver_rows": rows - outcome["quarantined_rows"],  # if no two generated trips share every key value
    }
    (folder / EXPECTED).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
