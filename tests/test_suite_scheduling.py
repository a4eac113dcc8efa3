"""How `make test` spreads the suite over xdist workers: by file, except that the files sharing the real-sample lake
(tests/real_lake.py) are one unit of work, so the lake is built once, and so are tests/flows' files (one Prefect test
server)."""

from __future__ import annotations

from real_lake import SHARED_FOLDERS, SHARED_LAKE_FILES, make_scheduler


def test_the_files_sharing_the_real_sample_lake_run_on_one_worker_and_other_files_by_file(pytestconfig, monkeypatch):
    monkeypatch.setattr(pytestconfig.option, "dist", "loadfile")
    monkeypatch.setattr(pytestconfig.option, "tx", ["2*popen"])
    scheduler = make_scheduler(pytestconfig, None)
    shared = {scheduler._split_scope(f"{file}::test_x[a::b]") for file in SHARED_LAKE_FILES}
    assert len(shared) == 1
    others = {scheduler._split_scope(f"tests/{name}.py::test_x") for name in ("test_lake", "test_gold")}
    assert others == {"tests/test_lake.py", "tests/test_gold.py"}
    assert not shared & others
    flows = {scheduler._split_scope(f"tests/flows/{name}.py::test_x") for name in ("test_flows", "test_flows_ops")}
    assert flows == {SHARED_FOLDERS[0]}


def test_other_distribution_modes_keep_xdist_s_scheduler(pytestconfig, monkeypatch):
    monkeypatch.setattr(pytestconfig.option, "dist", "load")
    assert make_scheduler(pytestconfig, None) is None
