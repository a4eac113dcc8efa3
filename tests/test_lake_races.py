"""Writers racing on one table: a commit that loses a race is retried and lands once, a table two first writers
create (by Spark, or by delta-rs on a local root) holds each log row once and reference rows once."""

from __future__ import annotations

from datetime import datetime

import pytest

from lake import Lake, load_conf
from lake.catalog import WATERMARKS


def test_an_append_that_loses_a_commit_race_is_retried_and_lands_once(lake, spark, monkeypatch):
    """Two first writers race to create a table; the loser's commit fails with ProtocolChangedException."""
    from lake import delta

    real_write, calls = delta.write, []
    row = "consumer string, source string, source_version bigint, updated_at timestamp"
    now = datetime(2026, 1, 1)

    def loses_the_first_race(df, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 1:  # the other writer commits first
            real_write(lake.conform(WATERMARKS, spark.createDataFrame([("other", "s", 1, now)], row)), path, "append")
            raise RuntimeError("ProtocolChangedException: [DELTA_PROTOCOL_CHANGED] changed by a concurrent update")
        return real_write(df, path, *args, **kwargs)

    monkeypatch.setattr(delta, "write", loses_the_first_race)
    lake.append(WATERMARKS, spark.createDataFrame([("mine", "s", 2, now)], row))
    assert len(calls) == 2
    assert sorted(r[0] for r in lake.read(WATERMARKS).collect()) == ["mine", "other"]


def test_an_append_does_not_retry_errors_that_are_not_conflicts(lake, spark, monkeypatch):
    from lake import delta

    calls = []

    def fails(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("disk full")

    monkeypatch.setattr(delta, "write", fails)
    with pytest.raises(RuntimeError, match="disk full"):
        lake.append(WATERMARKS, lake.empty(WATERMARKS))
    assert len(calls) == 1


def test_two_first_watermarks_at_once_both_land(lake, spark, monkeypatch):
    """The first append creates the table; the writer that loses that race appends again, beside the winner's row.
    Spark's writes here (an object store's root): delta-rs creates it on a local root (the test after this one)."""
    from lake import delta

    monkeypatch.setattr(Lake, "_delta_rs_writes", property(lambda self: False))
    real_write, calls = delta.write, []

    def loses_the_race_to_create(df, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 1:  # another consumer's first watermark creates the table first
            monkeypatch.setattr(delta, "write", real_write)
            lake.set_watermark("gold", "silver.trips", 7)
            raise RuntimeError("ProtocolChangedException: [DELTA_PROTOCOL_CHANGED] changed by a concurrent update")
        return real_write(df, path, *args, **kwargs)

    monkeypatch.setattr(delta, "write", loses_the_race_to_create)
    lake.set_watermark("silver", "bronze.trips", 3)
    assert len(calls) == 1
    assert (lake.watermark("silver", "bronze.trips"), lake.watermark("gold", "silver.trips")) == (3, 7)


def another_writer_first(monkeypatch, other) -> list[str]:
    """Makes delta-rs' next write run other() (another writer creating the table) just before it; returns the paths
    of the writes seen."""
    from lake import bookkeeping

    real_write, calls = bookkeeping.write_deltalake, []

    def write(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 1:
            monkeypatch.setattr(bookkeeping, "write_deltalake", real_write)
            other()
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(bookkeeping, "write_deltalake", write)
    return calls


def test_a_first_watermark_delta_rs_creates_beside_another_lands_too(spark, tmp_path, monkeypatch):
    """A local root's bookkeeping table is created by delta-rs: another writer creating it first (between this one's
    look and its write) leaves this one's row appended beside it, in a commit of its own."""
    lake = Lake(load_conf("test", overrides={"lake.root": str(tmp_path / "lake")}), spark)
    calls = another_writer_first(monkeypatch, lambda: lake.set_watermark("gold", "silver.trips", 7))
    lake.set_watermark("silver", "bronze.trips", 3)
    assert len(calls) == 1
    assert (lake.watermark("silver", "bronze.trips"), lake.watermark("gold", "silver.trips")) == (3, 7)
    assert lake.version(WATERMARKS) == 1
    properties = lake.spark.sql(f"SHOW TBLPROPERTIES delta.`{lake.path(WATERMARKS)}`").collect()
    assert {row.key: row.value for row in properties}["delta.enableChangeDataFeed"] == "true"  # the session default


def test_reference_rows_another_writer_created_first_are_not_written_twice(spark, tmp_path, monkeypatch):
    """Lake.create with records (silver.zones) writes them once: a writer that finds the table created by another
    between its look and its write, or at its commit, leaves the other's rows alone (a log would append beside)."""
    zones = [{"zone_id": 1, "borough": "EWR", "zone": "Newark Airport", "service_zone": "EWR"}]
    lake = Lake(load_conf("test", overrides={"lake.root": str(tmp_path / "lake")}), spark)
    calls = another_writer_first(monkeypatch, lambda: lake.create("silver.zones", zones))
    lake.create("silver.zones", zones)
    assert len(calls) == 1
    assert lake.read("silver.zones").count() == 1 and lake.version("silver.zones") == 0
    lake.create("silver.zones", zones)  # there: nothing
    assert lake.version("silver.zones") == 0
