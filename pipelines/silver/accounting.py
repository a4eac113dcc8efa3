"""Silver's row accounting: every row read is written, quarantined, a duplicate or superseded.

Checked twice: before any commit (the planned counts against the count taken at the change-feed read), and after
the commits (the row counts Delta recorded in each commit's metrics against the plan). A difference fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.silver.build import BatchStats


@dataclass
class Check:
    """One accounting equation with its numbers."""

    name: str
    left: int
    right: int
    text: str

    @property
    def holds(self) -> bool:
        return self.left == self.right


def counts(read: int, stats: BatchStats, expected: dict[str, int]) -> dict[str, int]:
    """The run's counts as planned (silver_written and quarantine_written are replaced by the committed ones)."""
    in_batch = stats.passed - expected["unique_passed"]
    in_silver = expected["in_silver"] - expected["resumed"]  # resumed: this batch's own, from a stopped attempt
    return {
        "bronze_read": read,
        "silver_written": expected["new_trips"],
        "resumed_trips": expected["resumed"],
        "quarantined": stats.rejected,
        "duplicates": in_batch + in_silver,
        "duplicates_in_batch": in_batch,
        "duplicates_in_silver": in_silver,
        "superseded": stats.superseded,
        "quarantine_written": expected["quarantine_new"],
        "retired_trips": expected["retired_trips"],
        "retired_quarantine": expected["retired_quarantine"],
    }


def before_commit(c: dict[str, int], stats: BatchStats, expected: dict[str, int]) -> list[Check]:
    """read = written (+ resumed) + quarantined + duplicates + superseded, and the frames hold the rows the counts
    say. `resumed`: the batch's trips that an attempt which stopped before finishing appended
    (pipelines.silver.interrupted)."""
    written = c["silver_written"] + c["resumed_trips"]
    right = written + c["quarantined"] + c["duplicates"] + c["superseded"]
    resumed = f" (+ resumed {c['resumed_trips']})" if c["resumed_trips"] else ""
    checks = [
        Check("typed batch = read", stats.rows, c["bronze_read"], f"typed {stats.rows} = read {c['bronze_read']}"),
        Check(
            "read = written + quarantined + duplicates + superseded",
            c["bronze_read"],
            right,
            f"{c['bronze_read']} = {c['silver_written']}{resumed} + {c['quarantined']} + {c['duplicates']} + "
            f"{c['superseded']}",
        ),
    ]
    if expected["quarantine_rows"] >= 0:  # incremental runs: the quarantine frame holds every rejected row
        checks.append(
            Check(
                "quarantine rows = rejected",
                expected["quarantine_rows"],
                stats.rejected,
                f"quarantine rows {expected['quarantine_rows']} = rejected {stats.rejected}",
            )
        )
    return checks


def after_commit(expected: dict[str, int], committed: dict[str, int], reprocess: bool, read: int) -> list[Check]:
    """Each commit's row count from Delta's metrics equals the planned one."""
    pairs = [
        ("silver.trips rows inserted", committed["new_trips"], expected["new_trips"]),
        ("silver.trips rows retired", committed["retired_trips"], expected["retired_trips"]),
        ("silver.quarantine rows retired", committed["retired_quarantine"], expected["retired_quarantine"]),
    ]
    if reprocess:
        pairs.append(("silver.quarantine rows updated", committed.get("quarantine_updated", 0), read))
    else:
        pairs.append(("silver.quarantine rows inserted", committed["quarantine_new"], expected["quarantine_new"]))
    return [Check(name, got, want, f"{name}: committed {got}, planned {want}") for name, got, want in pairs]


def summary(checks: list[Check]) -> str:
    return "; ".join(check.text for check in checks)


def broken(checks: list[Check]) -> list[Check]:
    return [check for check in checks if not check.holds]
