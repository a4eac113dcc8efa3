"""One Spark session for the whole suite (local[2], 2 shuffle partitions, UI off), a fresh lake per test, and one
real-sample lake built once per session for the tests that only read it (tests/real_lake.py)."""

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


@pytest.fixture(scope="session")
def real_sample_lake(spark, samples, tmp_path_factory):
    """Three real months through every stage, built once per session (tests/real_lake.py); tests only read it."""
    from real_lake import build

    return build(spark, samples, tmp_path_factory.mktemp("real-sample-lake"))


def pytest_collection_modifyitems(config, items) -> None:
    """The shared real-sample lake is built once per worker: every file using it must be in SHARED_LAKE_FILES,
    which the scheduler below keeps together on one worker."""
    from real_lake import FIXTURE, SHARED_LAKE_FILES

    users = {item.nodeid.split("::")[0] for item in items if FIXTURE in getattr(item, "fixturenames", ())}
    unlisted = sorted(users - set(SHARED_LAKE_FILES))
    if unlisted:
        raise pytest.UsageError(f"add {unlisted} to SHARED_LAKE_FILES in tests/real_lake.py")


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` with the real-sample lake's files as one unit of work, and each of SHARED_FOLDERS
    (tests/real_lake.py)."""
    from real_lake import make_scheduler

    return make_scheduler(config, log)
