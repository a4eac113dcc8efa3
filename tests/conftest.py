"""One Spark session for the whole suite (local[2], 2 shuffle partitions, UI off) and a fresh lake per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lake import Lake, load_conf
from lake.session import build_spark

SHARED_SAMPLES = Path(os.environ.get("TLC_SAMPLES") or Path(__file__).resolve().parents[2] / "shared/data/nyc_tlc/csv")
BUNDLED_SAMPLES = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="session")
def spark():
    session = build_spark(load_conf("test"))
    yield session
    session.stop()


@pytest.fixture
def lake(spark, tmp_path) -> Lake:
    """An empty lake under a temporary folder."""
    return Lake(load_conf("test", overrides={"lake.root": str(tmp_path / "lake")}), spark)


@pytest.fixture(scope="session")
def samples() -> Path:
    """The real TLC samples in ../shared/data/nyc_tlc/csv. Outside CI, tests using them skip when the folder is absent;
    in CI (CI set) a missing folder fails them: real-data tests must run there, not skip silently."""
    if not SHARED_SAMPLES.is_dir():
        message = f"real TLC samples not found at {SHARED_SAMPLES} (expected ../shared/data/nyc_tlc beside the repo)"
        if os.environ.get("CI"):
            pytest.fail(f"CI: {message}", pytrace=False)
        pytest.skip(message)
    return SHARED_SAMPLES
