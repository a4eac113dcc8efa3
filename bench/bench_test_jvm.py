"""The test suite's JVM settings side by side: the same test files in one pytest process per setting.

Test runs are short-lived JVMs on tiny data. HotSpot's JIT compiler threads used half of an xdist worker JVM's CPU
in the suite (a third in one process running test_silver and test_gold), and two workers share 2 cores, so CPU the
JIT spends is wall time the suite waits. This bench runs the same test files (one process, no xdist) once per
`spark.jvm_options` value, each with a copy of conf/ whose test.yaml carries that value, and reports wall time and
the driver JVM's CPU by thread group, read from /proc just before the session stops (bench/jvm_cpu_plugin.py).

    python bench/bench_test_jvm.py --variant="-XX:-DontCompileHugeMethods" \
        --variant="-XX:-DontCompileHugeMethods -XX:CompileThresholdScaling=10 -XX:+UseSerialGC"
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
READING = (
    "In one process the second core absorbs the JIT's compiling, so the wall time here need not fall (compare the "
    "CPU); with the suite's two workers on two cores, the JVMs' CPU is what the suite waits for "
    "(bench/results/suite.md)."
)
DEFAULT_TESTS = ["tests/test_silver.py", "tests/test_gold.py"]
# Thread names (digits replaced by #) by prefix; the serial collector runs in the "VM Thread".
GROUPS = {"JIT compiler": ("C# Compiler",), "GC": ("GC Thread", "G# ", "VM Thread"),
          "driver (Py4J) threads": ("Thread-#",), "task threads": ("Executor task",)}  # fmt: skip


def conf_copy(folder: Path, jvm_options: str) -> Path:
    """conf/ with test.yaml's spark.jvm_options set; data/ linked beside it (conf paths are relative to it)."""
    conf = folder / "conf"
    shutil.copytree(ROOT / "conf", conf)
    (folder / "data").symlink_to(ROOT / "data")
    test_file = conf / "test.yaml"
    settings = yaml.safe_load(test_file.read_text())
    settings.setdefault("spark", {})["jvm_options"] = jvm_options
    test_file.write_text(yaml.safe_dump(settings))
    return conf


def run_variant(jvm_options: str, tests: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_test_jvm") as tmp:
        folder = Path(tmp)
        out = folder / "cpu.json"
        env = {**os.environ, "LAKE_CONF_DIR": str(conf_copy(folder, jvm_options)), "BENCH_JVM_CPU_OUT": str(out),
               "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)]), "CI": "true"}  # fmt: skip
        command = [sys.executable, "-m", "pytest", "-q", "-p", "jvm_cpu_plugin", *tests]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"tests failed with {jvm_options!r}:\n{done.stdout[-3000:]}")
        cpu = json.loads(out.read_text())
    threads = cpu.get("threads", {})
    grouped = {
        name: sum(seconds for thread, seconds in threads.items() if thread.startswith(prefixes))
        for name, prefixes in GROUPS.items()
    }
    return {"options": jvm_options, "wall": wall, "summary": done.stdout.strip().splitlines()[-1], **cpu, **grouped}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", required=True, help="a spark.jvm_options value (repeatable)")
    parser.add_argument("--tests", nargs="+", default=DEFAULT_TESTS)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "test_jvm.md"))
    args = parser.parse_args(argv)
    load = os.getloadavg()
    rows = []
    for options in args.variant:
        row = run_variant(options, args.tests)
        rows.append(row)
        jvm, jit, python = row.get("jvm_cpu", 0), row["JIT compiler"], row["python_cpu"]
        print(f"{options!r}: wall {row['wall']:.1f} s, JVM CPU {jvm:.1f} s (JIT {jit:.1f} s), Python {python:.1f} s")
    lines = [
        "# The test JVMs' settings (`bench_test_jvm.py`)",
        "",
        f"- command: `python bench/bench_test_jvm.py {' '.join(repr_arg(v) for v in args.variant)}`",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs; {platform.platform()}",
        f"- load average at the start {load[0]:.1f}, at the end {os.getloadavg()[0]:.1f}",
        f"- tests: {' '.join(args.tests)} in one pytest process per setting (no xdist), one after the other",
        "",
        "| spark.jvm_options | wall (s) | driver JVM CPU (s) | of it JIT compiler | GC | driver threads | tasks "
        "| Python CPU (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| `{row['options'] or '(none)'}` | {row['wall']:.1f} | {row.get('jvm_cpu', 0):.1f} | "
            f"{row['JIT compiler']:.1f} | {row['GC']:.1f} | {row['driver (Py4J) threads']:.1f} | "
            f"{row['task threads']:.1f} | {row['python_cpu']:.1f} |"
        )
    lines += ["", READING]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.output).write_text(text)
    return 0


def repr_arg(value: str) -> str:
    return f'--variant="{value}"'


if __name__ == "__main__":
    raise SystemExit(main())
