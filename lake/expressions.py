"""Column expressions built once per Spark context and reused by every run that needs them.

A pyspark Column is an expression no DataFrame owns (Spark 4: a ColumnNode on the JVM; an alias gets its id when a
plan is analysed, so one Column can appear in many plans). Building one costs a Py4J round trip per function call:
silver's typing, rule and quarantine columns took ~13,000 round trips, ~2 s of every small silver run
(bench/results/suite.md). Builders whose result depends only on their key are run once per SparkContext here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from pyspark import SparkContext

Built = TypeVar("Built")
MAX_ENTRIES = 512  # keys are code paths and rule sets: a handful per process; the bound only guards a leak

_lock = threading.Lock()
_cache: dict[Hashable, Any] = {}
_owner: list[SparkContext | None] = [None]


def reused(key: Hashable, build: Callable[[], Built]) -> Built:
    """build()'s result for key, built at most once per SparkContext (a new context starts afresh).

    build must be a pure function of key: Columns, lists or tuples of them, never a DataFrame. Callers must not
    mutate what they get (it is shared).
    """
    context = SparkContext._active_spark_context
    if context is None:
        return build()
    with _lock:
        if _owner[0] is not context:
            _cache.clear()
            _owner[0] = context
        if key in _cache:
            return _cache[key]
    value = build()
    with _lock:
        if _owner[0] is context:
            if len(_cache) >= MAX_ENTRIES:
                _cache.clear()
            _cache.setdefault(key, value)
    return value


def clear() -> None:
    """Forgets every built expression (tests)."""
    with _lock:
        _cache.clear()
        _owner[0] = None
