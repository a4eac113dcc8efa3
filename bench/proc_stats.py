"""What the benches read from /proc: a process's descendants, RSS and CPU, and a thread sampling peak RSS per phase."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def descendants(root: int | None = None) -> list[int]:
    """Live processes below root (this process by default): the JVM Spark runs in, and any Python worker processes
    it started."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [os.getpid() if root is None else root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_name(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            line = next(line for line in status if line.startswith("VmRSS"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return 0.0


def cpu_seconds(pid: int, reaped: bool = True) -> float:
    """User + system CPU seconds of pid, and of the children it has reaped unless reaped is False (0 once it is
    gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11 : 15 if reaped else 13]) / os.sysconf("SC_CLK_TCK")  # utime stime (cu cs)


def tree_cpu() -> tuple[float, str]:
    """CPU seconds of this process and every live descendant, and the descendants' names counted ("1 java")."""
    pids = descendants()
    names = [name for name in map(command_name, pids) if name]
    total = cpu_seconds(os.getpid()) + sum(map(cpu_seconds, pids))
    return total, ", ".join(f"{names.count(n)} {n}" for n in sorted(set(names)))


class MemoryWatch(threading.Thread):
    """Samples the RSS of this process and of the Spark JVM (a descendant) and keeps the peak per phase, and this
    process's RSS as each phase starts (what a stage adds is its peak less that: earlier phases' heap stays)."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval, self.phase, self.peaks = interval, "setup", {}
        self.starts: dict[str, float] = {}
        self._halt = threading.Event()

    def begin(self, phase: str) -> None:
        self.starts[phase] = rss_mib(os.getpid())
        self.phase = phase

    def run(self) -> None:
        jvms: list[int] = []
        while not self._halt.is_set():
            # Spark's launcher runs a short-lived java first: look again until a JVM that stays is found.
            jvms = [p for p in jvms if os.path.exists(f"/proc/{p}")] or [
                p for p in descendants() if command_name(p) == "java"
            ]
            python, jvm = rss_mib(os.getpid()), sum(rss_mib(p) for p in jvms)
            old = self.peaks.get(self.phase, (0.0, 0.0))
            self.peaks[self.phase] = (max(old[0], python), max(old[1], jvm))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
