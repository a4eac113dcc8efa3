"""Where the test suite's time goes: each file's summed test time, and how much of it is spent inside in-process
stage runs (run_ingest, run_silver, run_gold, run_train, run_score), how many and how long each.

Runs the suite as `make test` does (`pytest -n 2 --dist loadfile`, with `--durations=0`) with this file loaded as a
pytest plugin in every worker. Each worker times the stage runners it calls and writes its counts to a JSON file;
this script then adds them up with pytest's durations. Stage runs in child processes are not counted: the cluster,
Prefect and crash tests' children. Tests and fixtures get their runners from the package modules, which the plugin
wraps before any test module is imported.

    .venv/bin/python bench/suite_census.py [pytest arguments, e.g. tests/test_silver.py]
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
RUNNERS = {
    "pipelines.bronze": "run_ingest",
    "pipelines.silver": "run_silver",
    "pipelines.gold": "run_gold",
    "pipelines.train": "run_train",
    "pipelines.score": "run_score",
}
OUT_ENV = "SUITE_CENSUS_DIR"
DURATION = re.compile(r"^([0-9.]+)s (?:call|setup|teardown)\s+(\S+)")

# Plugin side (loaded in each pytest worker with `-p suite_census`).
_current = {"file": ""}
_runs: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(lambda: [0, 0.0]))
_depth = [0]


def _timed(runner: Callable[..., Any], name: str) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        if _depth[0]:  # a runner called by another runner counts once, in the outer one
            return runner(*args, **kwargs)
        _depth[0] += 1
        started = time.perf_counter()
        try:
            return runner(*args, **kwargs)
        finally:
            _depth[0] -= 1
            counted = _runs[_current["file"]][name]
            counted[0] += 1
            counted[1] += time.perf_counter() - started

    timed.__wrapped__ = runner  # type: ignore[attr-defined]
    return timed


def _install() -> None:
    """Wraps the runners when pytest imports this plugin: before conftest files and test modules import them."""
    for module_name, name in RUNNERS.items():
        module = importlib.import_module(module_name)
        setattr(module, name, _timed(getattr(module, name), name))
    atexit.register(_dump)


def pytest_runtest_protocol(item: Any, nextitem: Any) -> None:
    _current["file"] = item.nodeid.split("::")[0]  # a module fixture's runs count for the first test that needs it


def _dump() -> None:
    (Path(os.environ[OUT_ENV]) / f"runs-{os.getpid()}.json").write_text(json.dumps(_runs))


if __name__ != "__main__" and os.environ.get(OUT_ENV):
    _install()


# Script side.
def census(log: str, folder: Path) -> tuple[dict[str, float], dict[str, dict[str, list]]]:
    durations: dict[str, float] = defaultdict(float)
    for line in log.splitlines():
        if match := DURATION.match(line):
            durations[match.group(2).split("::")[0]] += float(match.group(1))
    runs: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(lambda: [0, 0.0]))
    for path in folder.glob("runs-*.json"):
        for file, stages in json.loads(path.read_text()).items():
            for name, (count, seconds) in stages.items():
                runs[file][name][0] += count
                runs[file][name][1] += seconds
    return durations, runs


def report(durations: dict[str, float], runs: dict[str, dict[str, list]], wall: float, tail: str) -> str:
    lines = [f"{tail}; wall {wall / 60:.1f} min", "", "| file | test time (s) | in stage runs (s) | stage runs |"]
    lines.append("|---|---:|---:|---:|")
    for file in sorted(durations, key=lambda f: -durations[f]):
        stages = runs.get(file, {})
        inside, count = sum(s[1] for s in stages.values()), sum(s[0] for s in stages.values())
        lines.append(f"| {file} | {durations[file]:.1f} | {inside:.1f} | {count} |")
    total = sum(durations.values())
    inside = sum(s[1] for stages in runs.values() for s in stages.values())
    lines += ["", f"summed test time {total:.0f} s, of which {inside:.0f} s inside in-process stage runs", ""]
    lines += ["| runner | runs | seconds | seconds a run |", "|---|---:|---:|---:|"]
    for name in RUNNERS.values():
        count = sum(stages[name][0] for stages in runs.values() if name in stages)
        seconds = sum(stages[name][1] for stages in runs.values() if name in stages)
        if count:
            lines.append(f"| {name} | {count} | {seconds:.0f} | {seconds / count:.2f} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, OUT_ENV: folder, "PYTHONPATH": os.pathsep.join([str(PROJECT / "bench"), str(PROJECT)])}
        command = [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadfile", "--durations=0"]
        started = time.perf_counter()
        done = subprocess.run(
            [*command, "-p", "suite_census", *argv], cwd=PROJECT, env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - started
        tail = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
        print(report(*census(done.stdout, Path(folder)), wall, tail))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
