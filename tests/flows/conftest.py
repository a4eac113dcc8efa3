"""Fixtures of the flow tests: a temporary Prefect API for the folder, fake stage runners, model facts, a landing
folder."""

from __future__ import annotations

import sys
import types
from contextlib import ExitStack
from pathlib import Path

import pytest
from flow_fakes import (
    RUN_DATE,
    STAGE_RUNNERS,
    ModelFacts,
    StageRecorder,
)
from prefect.testing.utilities import prefect_test_harness

from flows import daily as daily_module

FOLDER = Path(__file__).resolve().parent
_server: ExitStack | None = None  # the running Prefect test server, if any


@pytest.fixture(autouse=True)
def prefect_api() -> None:
    """One Prefect test server for this folder's tests: the first starts it, and it stops after the last
    (pytest_runtest_teardown below). A package-scoped fixture would live as long as the session here (tests/ is no
    package), with its server's services taking CPU from the tests after these. The xdist scheduler keeps the folder
    on one worker (real_lake.SHARED_FOLDERS)."""
    global _server
    if _server is None:
        stack = ExitStack()
        stack.enter_context(prefect_test_harness(server_startup_timeout=180))
        _server = stack


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stops the server when the next test is not one of this folder's (or there is none)."""
    global _server
    if _server is not None and (nextitem is None or FOLDER not in nextitem.path.parents):
        _server.close()
        _server = None


@pytest.fixture
def stages(monkeypatch) -> StageRecorder:
    recorder = StageRecorder()
    for stage, (module_name, function) in STAGE_RUNNERS.items():
        module = types.ModuleType(module_name)
        setattr(module, function, recorder.runner(stage))
        monkeypatch.setitem(sys.modules, module_name, module)
    return recorder


@pytest.fixture(autouse=True)
def model_facts(monkeypatch) -> ModelFacts:
    facts = ModelFacts()
    monkeypatch.setattr(daily_module, "training_facts", lambda lake: facts.training)
    monkeypatch.setattr(daily_module, "has_champion", lambda lake: facts.champion)
    monkeypatch.setattr(daily_module, "tag_training_run", lambda lake, run_id, day: facts.tagged.append((run_id, day)))
    return facts


@pytest.fixture
def landing(tmp_path) -> Path:
    folder = tmp_path / "landing"
    (folder / RUN_DATE.isoformat()).mkdir(parents=True)
    (folder / RUN_DATE.isoformat() / "yellow_tripdata_2019-01.csv").write_text("VendorID\n1\n")
    (folder / "green_tripdata_2019-01.csv").write_text("VendorID\n1\n")
    return folder


@pytest.fixture
def params(tmp_path, landing) -> dict:
    return {"env": "test", "lake_root": str(tmp_path / "lake"), "landing": str(landing)}
