"""The dependency direction is flows -> pipelines -> lake; lake imports nothing of ours, pipelines no prefect."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "lake": {"pipelines", "flows", "cli", "prefect"},
    "pipelines": {"flows", "cli", "prefect"},
    "flows": {"cli"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_follow_the_dependency_direction(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {file: bad for file, bad in offenders.items() if bad} == {}


def test_checker_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from prefect import flow\nimport pipelines.silver\n")
    assert imported_roots(bad) == {"prefect", "pipelines"}


def test_no_star_imports():
    star = [
        str(path.relative_to(ROOT))
        for package in ("lake", "pipelines", "flows", "cli")
        for path in (ROOT / package).rglob("*.py")
        if "import *" in path.read_text()
    ]
    assert star == []
