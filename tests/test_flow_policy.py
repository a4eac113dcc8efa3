"""The daily flow's policies as pure functions: when to retrain, and what a failed ingest does (flows/policy.py)."""

from __future__ import annotations

from datetime import date

import pytest

from flows.policy import TrainingFacts, on_ingest_failure, retrain_policy, should_retrain
from lake import load_conf
from lake.errors import ConfigError

RUN_DATE = date(2019, 1, 15)

LAST = date(2019, 1, 10)


@pytest.mark.parametrize(
    ("policy", "last_trained", "new_rows", "run_date", "trains"),
    [
        ("never", None, None, RUN_DATE, False),
        ("never", LAST, 10**6, RUN_DATE, False),
        ("daily", LAST, 0, date(2019, 1, 11), True),
        ("weekly", None, None, RUN_DATE, True),
        ("weekly", LAST, 500, date(2019, 1, 16), False),
        ("weekly", LAST, 500, date(2019, 1, 17), True),
        ("weekly", LAST, 0, date(2019, 1, 20), False),
        ("weekly", LAST, 500, date(2019, 1, 3), False),
        ("when_new_rows", LAST, 999, RUN_DATE, False),
        ("when_new_rows", LAST, 1000, RUN_DATE, True),
        ("when_new_rows", LAST, None, RUN_DATE, True),
        ("when_new_rows", None, None, RUN_DATE, True),
    ],
)
def test_retrain_policy(policy, last_trained, new_rows, run_date, trains):
    decision = should_retrain(policy, 1000, run_date, TrainingFacts(last_trained, new_rows))
    assert decision.run is trains
    assert decision.reason


def test_orchestration_defaults_and_bad_values():
    conf = load_conf("test")
    assert retrain_policy(conf)[0] in ("weekly", "when_new_rows") and on_ingest_failure(conf) == "fail"
    with pytest.raises(ConfigError, match="orchestration.retrain must be one of"):
        retrain_policy(load_conf("test", {"orchestration.retrain": "hourly"}))
    with pytest.raises(ConfigError, match="on_ingest_failure"):
        on_ingest_failure(load_conf("test", {"orchestration.on_ingest_failure": "ignore"}))
