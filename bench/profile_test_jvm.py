"""Where a test JVM's CPU goes, by stack: test files run under async-profiler, summarized by thread and by call.

bench_test_jvm.py reads the driver JVM's CPU by thread from /proc; this names the code. It fetches async-profiler
(Maven Central: tools.profiler:async-profiler, one JAR holding the native agent) into the JAR cache once, runs the
test files in one pytest process (no xdist) with a copy of conf/ whose test.yaml adds the agent to
`spark.jvm_options`, and reads the collapsed stacks it writes: CPU samples (itimer, so no perf_events needed) by
thread group, by the call the Python driver made through Py4J, and for a few named costs (inclusive).

    python bench/profile_test_jvm.py --tests tests/test_silver.py tests/test_file_versions.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_test_jvm import conf_copy  # noqa: E402

PROFILER = "tools.profiler:async-profiler:4.0"
CACHE = Path(os.path.expanduser("~/.cache/taxi-lakehouse/tools"))
# Inclusive costs worth naming: a sample counts once for each pattern one of its frames matches.
NAMED = {
    "Delta: the files of each scan, listed while planning (DataSkippingReaderBase.filesForScan)":
        r"DataSkippingReaderBase\.filesForScan",
    "Delta: commits, once the files are written (OptimisticTransaction.commitImpl)":
        r"OptimisticTransaction(Impl)?\.commitImpl$",
    "Delta: writing data files (OptimisticTransaction.writeFiles)": r"OptimisticTransaction\.writeFiles$",
    "Catalyst analysis (any query, Delta's own included)": r"catalyst/analysis/Analyzer\.execute",
    "Catalyst optimizer (any query; Delta's scan listing runs inside it)": r"QueryExecution\.optimizedPlan|"
        r"QueryExecution\$\$Lambda.*optimizedPlan|QueryExecution\.\$anonfun\$optimizedPlan",
    "Task threads (running the jobs' tasks)": r"^\[Executor task launch worker",
    "Java serialization (closures, task results, configurations)": r"java/io/ObjectOutputStream\.writeObject0",
}  # fmt: skip
GROUPS = {"Py4J threads (the Python driver's calls)": "Thread-#", "task threads": "Executor task",
          "JIT compiler": "C# CompilerThre", "GC (serial: the VM thread)": "VM Thread",
          "scheduler": "dag-scheduler-event-loop"}  # fmt: skip


def profiler_agent() -> Path:
    """libasyncProfiler.so for linux-x64, from the Maven JAR (fetched once with mvn into the tools cache)."""
    agent = CACHE / "async-profiler" / "libasyncProfiler.so"
    if agent.exists():
        return agent
    CACHE.mkdir(parents=True, exist_ok=True)
    mvn = shutil.which("mvn") or sys.exit("Maven (mvn) is needed to fetch async-profiler")
    command = [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={PROFILER}:jar", f"-DoutputDirectory={CACHE}"]
    subprocess.run(command, check=True)
    jar = CACHE / f"async-profiler-{PROFILER.rsplit(':', 1)[1]}.jar"
    agent.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(jar) as archive:
        agent.write_bytes(archive.read("linux-x64/libasyncProfiler.so"))
    return agent


def read_stacks(folder: Path) -> Counter:
    """The collapsed stacks of every JVM that ran with the agent (one file per process: %p is its pid)."""
    stacks: Counter = Counter()
    for path in folder.glob("stacks-*.txt"):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if count.isdigit():
                stacks[stack] += int(count)
            else:  # a line without its count (seen once in tens of thousands): left out, and said so
                print(f"{path.name}: a line without a sample count: {line[:200]}", file=sys.stderr)
    return stacks


def thread_group(stack: str) -> str:
    name = stack.split(";", 1)[0].strip("[]")
    return re.sub(r"\d+", "#", re.sub(r"\s*tid=\d+$", "", name))


def py4j_call(frames: list[str]) -> str | None:
    """The JVM method the Python driver called (the first frame past Py4J and reflection), or None."""
    calls = [i for i, frame in enumerate(frames) if frame.startswith("py4j/")]
    if not calls:
        return None
    i = max(calls) + 1
    while i < len(frames) and re.match(r"java/lang/reflect|jdk/internal/reflect|java/lang/invoke|\[unknown", frames[i]):
        i += 1
    return re.sub(r"\$\$Lambda.*", "", frames[i]) if i < len(frames) else "(Py4J itself)"


def summarize(stacks: Counter, top: int) -> dict:
    total = sum(stacks.values())
    groups, calls, named = Counter(), Counter(), Counter()
    listing_in_analysis = 0
    patterns = {name: re.compile(pattern) for name, pattern in NAMED.items()}
    for stack, count in stacks.items():
        frames = stack.split(";")
        groups[thread_group(stack)] += count
        call = py4j_call(frames)
        if call:
            calls[call] += count
        for name, pattern in patterns.items():
            if any(pattern.search(frame) for frame in frames):
                named[name] += count
        listing = next((i for i, f in enumerate(frames) if "DataSkippingReaderBase.filesForScan" in f), None)
        if listing is not None and any("catalyst/analysis/Analyzer.execute" in f for f in frames[listing:]):
            listing_in_analysis += count
    share = {name: named[name] / total for name in NAMED}
    share["Delta's scan listing: of it, analysing its own queries"] = listing_in_analysis / total
    return {
        "samples": total,
        "groups": {g: groups.get(prefix_match(groups, p), 0) / total for g, p in GROUPS.items()},
        "calls": [(call, count / total) for call, count in calls.most_common(top)],
        "py4j": sum(calls.values()) / total,
        "named": share,
    }


def prefix_match(groups: Counter, prefix: str) -> str:
    return next((g for g in groups if g.startswith(prefix)), prefix)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", nargs="+", default=["tests/test_silver.py", "tests/test_file_versions.py"])
    parser.add_argument("--interval-ms", type=int, default=5)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "test_jvm_profile.md"))
    args = parser.parse_args(argv)
    agent, load = profiler_agent(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="profile_test_jvm") as tmp:
        folder = Path(tmp)
        stacks_file, cpu_file = folder / "stacks-%p.txt", folder / "cpu.json"
        base = yaml.safe_load((ROOT / "conf" / "test.yaml").read_text())["spark"]["jvm_options"]
        option = f"-agentpath:{agent}=start,event=itimer,interval={args.interval_ms}ms,file={stacks_file},collapsed"
        env = {
            **os.environ,
            "LAKE_CONF_DIR": str(conf_copy(folder, f"{base} {option},threads")),
            "CI": "true",
            "BENCH_JVM_CPU_OUT": str(cpu_file),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)]),
        }
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "jvm_cpu_plugin", *args.tests]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"tests failed:\n{done.stdout[-3000:]}")
        found = summarize(read_stacks(folder), args.top)
        cpu = json.loads(cpu_file.read_text())
    lines = [
        "# Where a test JVM's CPU goes, by stack (`profile_test_jvm.py`)",
        "",
        f"- command: `python bench/profile_test_jvm.py --tests {' '.join(args.tests)}`",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs; {platform.platform()}; "
        f"load average at the start {load[0]:.1f}, at the end {os.getloadavg()[0]:.1f}",
        f"- one pytest process (no xdist), {done.stdout.strip().splitlines()[-1]}; wall {wall:.1f} s; the driver "
        f"JVM's CPU {cpu.get('jvm_cpu', 0):.1f} s, the Python process's {cpu.get('python_cpu', 0):.1f} s",
        f"- {PROFILER} (itimer, every {args.interval_ms} ms of CPU): {found['samples']:,} samples; shares are of all "
        "of the JVM's samples",
        "",
        "| thread group | share |",
        "|---|---:|",
        *(f"| {name} | {share:.1%} |" for name, share in found["groups"].items()),
        "",
        f"The Python driver's calls through Py4J ({found['py4j']:.1%} of the samples, inclusive, the top {args.top}):",
        "",
        "| JVM method called | share |",
        "|---|---:|",
        *(f"| `{call.replace('org/apache/spark/', '')}` | {share:.1%} |" for call, share in found["calls"]),
        "",
        "| named cost (inclusive) | share |",
        "|---|---:|",
        *(f"| {name} | {share:.1%} |" for name, share in found["named"].items()),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
