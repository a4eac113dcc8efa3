"""GE's verdict on a silver batch against the Spark rule flags: both come from one rule definition, so their counts
must agree. A small batch is validated by GE's pandas engine on the driver first (`silver.ge_pandas_max_rows`)."""

from __future__ import annotations

import logging
from pathlib import Path

from pipelines import quality
from pipelines.common import StageError
from pipelines.rules import Rule
from pipelines.silver.build import BatchStats

LOG = logging.getLogger(__name__)


def disagreement(stats: dict, verdict: quality.SuiteResult) -> dict[str, tuple]:
    """Rules whose GE unexpected count is not the Spark flags' count: {rule: (GE, Spark)}."""
    return {
        name: (verdict.unexpected.get(name), s["failed"])
        for name, s in stats.items()
        if verdict.unexpected.get(name) != s["failed"]
    }


def check_agreement(stats: dict, verdict: quality.SuiteResult) -> None:
    """Spark's row flags and GE's unexpected counts come from one rule definition: a difference is a bug."""
    uncounted = sorted(name for name in stats if verdict.unexpected.get(name) is None)
    if uncounted:
        raise StageError(f"Great Expectations returned no unexpected count for rule(s) {uncounted}; silver not changed")
    if differ := disagreement(stats, verdict):
        raise StageError(f"Great Expectations and the Spark rule flags disagree (rule: (GE, Spark)): {differ}")


def on_driver(
    stats: BatchStats, rules: list[Rule], suite: str, docs: Path | None, examples: int
) -> quality.SuiteResult | None:
    """GE's pandas engine on a small batch; None (GE's Spark engine decides) when it raised or its counts differ from
    the Spark flags': a value pandas reads otherwise (a NaN it takes for null, a bound it cannot compare)."""
    try:
        verdict = quality.validate(stats.flagged, rules, suite, docs, examples, "pandas")
    except Exception as exc:  # noqa: BLE001 - the Spark engine is the reference: it validates instead
        LOG.warning("GE's pandas engine failed (%s: %s); validating on Spark", type(exc).__name__, str(exc)[:300])
        return None
    if differ := disagreement(stats.rules, verdict):
        LOG.warning(
            "GE's pandas engine and the Spark flags disagree (rule: (GE, Spark)): %s; validating on Spark", differ
        )
        return None
    return verdict
