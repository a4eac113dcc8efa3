"""Where a Spark application's time went, from its event log: jobs, the time any job ran, task time against task
CPU time, and the idle gaps between jobs (driver-side work: planning, Delta log reads, object-store calls, Python).

Record a run with `spark.eventLog.enabled=true` and `spark.eventLog.dir=file:///tmp/evlog` (conf `spark.extra`),
decompress the log if needed (`zstd -d`), then:

    .venv/bin/python bench/eventlog_summary.py /tmp/evlog/events.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter


def summary(lines) -> dict:
    start, jobs, tasks, executors = None, {}, Counter(), 0
    for line in lines:
        event = json.loads(line)
        kind = event["Event"]
        if kind == "SparkListenerApplicationStart":
            start = event["Timestamp"]
        elif kind == "SparkListenerExecutorAdded":
            executors += 1
        elif kind == "SparkListenerJobStart":
            jobs[event["Job ID"]] = [event["Submission Time"], None]
        elif kind == "SparkListenerJobEnd":
            jobs[event["Job ID"]][1] = event["Completion Time"]
        elif kind == "SparkListenerTaskEnd":
            info, metrics = event["Task Info"], event.get("Task Metrics") or {}
            tasks["tasks"] += 1
            tasks["wall"] += info["Finish Time"] - info["Launch Time"]
            tasks["run"] += metrics.get("Executor Run Time", 0)
            tasks["cpu"] += metrics.get("Executor CPU Time", 0) / 1e6
            tasks["deserialize"] += metrics.get("Executor Deserialize Time", 0)
            tasks["gc"] += metrics.get("JVM GC Time", 0)
    spans = sorted((s, f) for s, f in jobs.values() if f is not None)
    busy, gaps, current = 0, [], None
    for begin, end in spans:
        if current is None or begin > current[1]:
            if current is not None:
                busy += current[1] - current[0]
                gaps.append(begin - current[1])
            current = [begin, end]
        else:
            current[1] = max(current[1], end)
    if current is not None:
        busy += current[1] - current[0]
    last = max((f for _, f in spans), default=start)
    return {
        "executors": executors,
        "jobs": len(jobs),
        "first_job_s": (spans[0][0] - start) / 1000 if spans else None,
        "app_to_last_job_s": (last - start) / 1000,
        "any_job_running_s": busy / 1000,
        "gaps_s": sum(gaps) / 1000,
        "gaps_over_1s_s": sum(g for g in gaps if g > 1000) / 1000,
        "tasks": tasks["tasks"],
        **{f"task_{k}_s": round(v / 1000, 1) for k, v in tasks.items() if k != "tasks"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("event_log", help="an uncompressed Spark event log (JSON lines)")
    args = parser.parse_args(argv)
    with open(args.event_log) as lines:
        for key, value in summary(lines).items():
            print(f"{key}: {round(value, 1) if isinstance(value, float) else value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
