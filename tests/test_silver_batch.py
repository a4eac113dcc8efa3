"""Silver's persisted typed batch: what it keeps of the raw bronze rows, and the Columns it is built from."""

from __future__ import annotations

from test_silver import GOOD, T2, bronze_rows  # tests/ is on sys.path under pytest

from lake import expressions
from pipelines.silver.build import build_silver
from pipelines.silver.run import ZONE_REFERENCE, load_zones, rules_for


def test_the_persisted_batch_keeps_raw_text_only_on_rejected_rows_and_columns_are_built_once(lake):
    zones = load_zones(lake)
    ids = [row.zone_id for row in zones.select("zone_id").collect()]
    rules = [rule.bound({ZONE_REFERENCE: ids}) for rule in rules_for(lake)]
    bronze = bronze_rows(
        lake.spark, [GOOD, GOOD | {"fare_amount": "-6.5"}, GOOD | T2 | {"passenger_count": "0"}], "r.csv"
    )
    expressions.clear()
    _, quarantine, stats = build_silver(bronze, zones, rules, "silver-raw")
    built = dict(expressions._cache)
    try:
        raw = {r._row_number: r._raw for r in stats.flagged.select("_row_number", "_raw").collect()}
        assert raw[1] is None and raw[3] is None  # passed (row 3 only breaks a warn rule): no raw copy kept
        assert raw[2]["fare_amount"] == "-6.5" and raw[2]["_source_file"] == "r.csv"
        assert [(r._row_number, r.fare_amount) for r in quarantine.collect()] == [(2, "-6.5")]
        build_silver(bronze, zones, rules, "silver-raw-again")[2].release()
        assert len(built) > 5 and set(expressions._cache) == set(built)  # the second batch reused every Column
        assert all(expressions._cache[key] is value for key, value in built.items())
    finally:
        stats.release()
