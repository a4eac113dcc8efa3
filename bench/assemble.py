"""Writes BENCHMARKS.md from the result files each benchmark leaves in bench/results/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["scale", "change_feed", "fit", "jit", "startup", "cluster", "suite", "test_jvm", "test_jvm_profile", "silver"]
ORDER += ["query", "model"]
HEADER = """# Benchmarks

Measured by the scripts in `bench/` (`make bench` runs them all and rewrites this file from `bench/results/*.md`).
Each section gives the command, the machine and the numbers; ratios are measured within one run. Tests never
assert wall-clock times: these machines are noisy.
"""


def main() -> None:
    results = ROOT / "bench" / "results"
    found = {p.stem: p for p in results.glob("*.md")}
    names = [n for n in ORDER if n in found] + sorted(set(found) - set(ORDER))
    body = "\n\n".join(found[name].read_text().strip() for name in names)
    (ROOT / "BENCHMARKS.md").write_text(HEADER + "\n" + body + "\n")


if __name__ == "__main__":
    main()
