"""pytest plugin for bench_test_jvm.py: before the last test's teardown stops the suite's Spark session, writes the
driver JVM's CPU seconds (total and per thread group: JIT compiler, GC, ...) and this process's own to a JSON file
(the path in BENCH_JVM_CPU_OUT). Thread groups count live threads only; the total counts every thread."""

from __future__ import annotations

import json
import os
import re
from collections import Counter

import pytest


def _cpu_seconds(stat_file: str) -> float:
    fields = open(stat_file).read().rsplit(")", 1)[1].split()  # noqa: SIM115 - /proc files, read at once
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _record() -> None:
    from pyspark.sql import SparkSession

    out: dict = {"python_cpu": _cpu_seconds("/proc/self/stat")}
    spark = SparkSession.getActiveSession()
    if spark is not None:
        pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        groups: Counter = Counter()
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                name = open(f"/proc/{pid}/task/{task}/comm").read().strip()  # noqa: SIM115
                groups[re.sub(r"\d+", "#", name)] += _cpu_seconds(f"/proc/{pid}/task/{task}/stat")
            except OSError:  # a thread that ended meanwhile
                continue
        out |= {"jvm_cpu": _cpu_seconds(f"/proc/{pid}/stat"), "threads": dict(groups)}
    with open(os.environ["BENCH_JVM_CPU_OUT"], "w") as handle:
        json.dump(out, handle)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem) -> None:
    if nextitem is None:
        _record()
