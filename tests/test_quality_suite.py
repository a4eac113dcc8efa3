"""The GE suite is built with every rule's expectation before it is saved; one that GE skips fails the run by name."""

from __future__ import annotations

from types import SimpleNamespace

import great_expectations.exceptions as gx_exceptions
import pytest
from great_expectations.core.expectation_suite import ExpectationSuite

from pipelines import quality
from pipelines.common import StageError
from pipelines.rules import gx


def _rule(name: str, column: str) -> SimpleNamespace:
    def expectation():
        expectation = gx.expectations.ExpectColumnValuesToNotBeNull(column=column)
        expectation.meta = {"rule": name}
        return expectation

    return SimpleNamespace(name=name, expectation=expectation)


def test_an_expectation_the_suite_skips_fails_the_run_naming_its_rule(monkeypatch):
    """ExpectationSuite's constructor logs and drops an expectation it finds invalid; validate must not go on."""
    process = ExpectationSuite._process_expectation

    def refuse_one(self, expectation):
        if expectation.meta.get("rule") == "refused":
            raise gx_exceptions.InvalidExpectationConfigurationError("refused in this test")
        return process(self, expectation)

    monkeypatch.setattr(ExpectationSuite, "_process_expectation", refuse_one)
    with pytest.raises(StageError, match=r"refused the expectation of rule\(s\) \['refused'\]"):
        quality.validate(None, [_rule("kept", "a"), _rule("refused", "b")], "suite_skip_test")
