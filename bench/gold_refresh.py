"""Times gold's full refresh on a lake that already has silver, and fingerprints the four tables it writes.

For side-by-side comparisons of two trees: run it from each tree's folder in turn (fresh process each time), on the
same kept lake (e.g. one `bench/profile_stages.py --rows 5000000 --root R` built), and compare the times; the
fingerprints (rows and the sum of a 64-bit hash of every row) must be equal.

    cd <tree> && python bench/gold_refresh.py --root /tmp/prof5m_lake --label new --rounds 1
    python bench/gold_refresh.py --root /tmp/prof5m_lake --set gold.write_concurrency=1   # a conf value changed
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import yaml

sys.path.insert(0, os.getcwd())  # the tree to measure is the current folder, not necessarily this file's

from fingerprints import fingerprint  # noqa: E402  (bench/ is on the path when run as a script)

from lake import Lake, load_conf  # noqa: E402
from pipelines.gold import run_gold  # noqa: E402
from pipelines.gold.run import GOLD_TABLES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="lake root with silver.trips")
    parser.add_argument("--label", default=os.path.basename(os.getcwd()))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a conf value (repeatable)")
    args = parser.parse_args(argv)
    settings = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    lake = Lake(load_conf(overrides={"lake.root": args.root, **settings}))
    for round_ in range(args.rounds):
        started = time.perf_counter()
        run_gold(lake, full_refresh=True)
        seconds = time.perf_counter() - started
        prints = {table: fingerprint(lake.read(table)) for table in GOLD_TABLES}
        print(f"{args.label} round {round_}: gold full refresh {seconds:.1f} s; {prints}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
