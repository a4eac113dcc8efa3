"""Which processes a command's CPU goes to: runs the command, samples its process tree from /proc, and prints each
process's own CPU seconds (user + system, children not included) with what it runs (a JVM's main class, a Python
module or script).

For the tests that start processes of their own (the cluster test's master, workers, executors, driver, moto and MLflow
servers; the Prefect end-to-end test's server, worker and flow runs). A process's CPU is its last sample before it
exits (up to --interval lost); a process that leaves the tree (reparented to init) is seen only while under it.

    .venv/bin/python bench/process_cpu.py -- .venv/bin/python -m pytest -q tests/test_cluster.py
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from proc_stats import cpu_seconds, descendants

JAVA_MAIN = re.compile(r"\borg\.apache\.spark\.[\w.]+")


def label(pid: int) -> str | None:
    """What the process runs: a Spark JVM's main class, `python -m <module>` or the script, else the command line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    argv = [a for a in argv if a]
    if not argv:
        return None
    program = Path(argv[0]).name
    if program == "java":
        found = JAVA_MAIN.search(" ".join(argv))
        return f"java {found.group(0) if found else argv[-1]}"
    if program.startswith("python") and len(argv) > 1:
        rest = argv[1:]
        return f"python -m {rest[1]}" if rest[0] == "-m" and len(rest) > 1 else f"python {Path(rest[0]).name}"
    return " ".join(argv)[:100]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    started = time.perf_counter()
    child = subprocess.Popen(command)
    seen: dict[int, list] = {}  # pid -> [cpu, label]; a label is re-read while it changes (exec)
    while child.poll() is None:
        for pid in [child.pid, *descendants(child.pid)]:
            entry = seen.setdefault(pid, [0.0, None])
            entry[0] = max(entry[0], cpu_seconds(pid, reaped=False))  # 0 once gone: its last sample stays
            entry[1] = label(pid) or entry[1]
        time.sleep(args.interval)
    wall = time.perf_counter() - started
    rows = sorted(((cpu, pid, name) for pid, (cpu, name) in seen.items()), reverse=True)
    print(f"\n{command[0]}...: exit {child.returncode}, {wall:.1f} s wall, {sum(r[0] for r in rows):.1f} s CPU in "
          f"{len(rows)} processes")  # fmt: skip
    for cpu, pid, name in rows[: args.top]:
        print(f"{cpu:8.1f} s  {pid:>7}  {name}")
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
