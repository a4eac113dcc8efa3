"""The model's parameters (conf/model.yaml) as a typed, frozen value: read and checked once, logged as a dict."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lake import Lake
from lake.errors import ConfigError, MissingInputError

REGRESSOR_TYPES = ("gbt", "random_forest")
TARGETS = ("identity", "log1p")  # log1p: the regressor fits log1p(label); predictions are expm1'd back
WINDOW_UNITS = ("month", "days")
DEFAULT_FIT_PARTITIONS = 2


@dataclass(frozen=True)
class LabelBounds:
    """Training rows whose label is outside [min_minutes, max_minutes] are left out (and counted); None: no bound."""

    min_minutes: float | None = None
    max_minutes: float | None = None


@dataclass(frozen=True)
class SplitConf:
    """Rolling-origin evaluation: `windows` test windows at the end of the data, each trained on every earlier day."""

    windows: int = 3
    window: str = "month"  # month: calendar months; days: test_days each (also the fallback when months are few)
    test_days: int = 14
    test_from: dt.date | None = None  # the first window starts here; as many windows as the data holds follow
    min_train_rows: int = 1000
    min_test_rows: int = 200


@dataclass(frozen=True)
class TuningConf:
    """`lake train --tune`: the grid over regressor parameters and the time-ordered validation window."""

    validation_days: int = 14
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()


@dataclass(frozen=True)
class ModelParams:
    """Everything that decides a fit: features, target, label bounds, regressor, seed, evaluation and tuning."""

    label: str
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    regressor_type: str
    regressor_params: tuple[tuple[str, Any], ...]
    target: str = "identity"
    label_bounds: LabelBounds = LabelBounds()
    linear_baseline: tuple[tuple[str, Any], ...] = ()
    seed: int = 42
    fit_partitions: int = DEFAULT_FIT_PARTITIONS
    split: SplitConf = SplitConf()
    tuning: TuningConf = TuningConf()
    plot_sample_rows: int = 5000
    # categories with fewer training rows than this join 'unknown' (0: keep every category): a tree then cannot
    # give a zone seen a handful of times its own leaf (rare zones drew 100-176 min predictions for 15-30 min trips)
    min_category_rows: int = 0

    @property
    def features(self) -> list[str]:
        """The gold.trip_features columns the model reads (its signature's inputs)."""
        return [*self.categorical, *self.numeric]

    @property
    def regressor_kwargs(self) -> dict[str, Any]:
        return dict(self.regressor_params)

    def with_regressor(self, **overrides: Any) -> ModelParams:
        """The same parameters with some regressor parameters replaced (a tuning candidate or winner)."""
        merged = {**self.regressor_kwargs, **overrides}
        return dataclasses.replace(self, regressor_params=tuple(sorted(merged.items())))

    def with_features(self, numeric: list[str] | None = None, categorical: list[str] | None = None) -> ModelParams:
        return dataclasses.replace(
            self,
            numeric=tuple(self.numeric if numeric is None else numeric),
            categorical=tuple(self.categorical if categorical is None else categorical),
        )

    def resolved(self, cores: int) -> ModelParams:
        """fit_partitions 0 means one partition per core (recorded resolved, so a reproduction matches)."""
        return self if self.fit_partitions > 0 else dataclasses.replace(self, fit_partitions=cores)

    def to_dict(self) -> dict[str, Any]:
        """The conf/model.yaml layout (what `model_params.json` holds and `from_dict` reads back)."""
        split = dataclasses.asdict(self.split)
        split["test_from"] = str(self.split.test_from) if self.split.test_from else None
        return {
            "label": self.label,
            "target": self.target,
            "label_bounds": dataclasses.asdict(self.label_bounds),
            "features": {
                "categorical": list(self.categorical),
                "numeric": list(self.numeric),
                "min_category_rows": self.min_category_rows,
            },
            "regressor": {"type": self.regressor_type, "params": self.regressor_kwargs},
            "linear_baseline": dict(self.linear_baseline),
            "seed": self.seed,
            "fit_partitions": self.fit_partitions,
            "split": split,
            "tuning": {
                "validation_days": self.tuning.validation_days,
                "grid": {name: list(values) for name, values in self.tuning.grid},
            },
            "plots": {"sample_rows": self.plot_sample_rows},
        }

    @property
    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "model parameters") -> ModelParams:
        """Checks and types a conf/model.yaml mapping; a wrong or missing value is a ConfigError naming the key."""
        reader = _Reader(raw, source)
        regressor_type = reader.get("regressor.type")
        if regressor_type not in REGRESSOR_TYPES:
            raise ConfigError(
                f"{source}: regressor.type must be one of {list(REGRESSOR_TYPES)}, not {regressor_type!r}"
            )
        target = reader.get("target", "identity")
        if target not in TARGETS:
            raise ConfigError(f"{source}: target must be one of {list(TARGETS)}, not {target!r}")
        window = reader.get("split.window", "month")
        if window not in WINDOW_UNITS:
            raise ConfigError(f"{source}: split.window must be one of {list(WINDOW_UNITS)}, not {window!r}")
        test_from = reader.get("split.test_from", None)
        grid = reader.mapping("tuning.grid")
        for name, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{source}: tuning.grid.{name} must be a non-empty list of values")
        return cls(
            label=str(reader.get("label")),
            categorical=tuple(reader.get("features.categorical", [])),
            numeric=tuple(reader.get("features.numeric", [])),
            regressor_type=regressor_type,
            regressor_params=tuple(sorted(reader.mapping("regressor.params").items())),
            target=target,
            label_bounds=LabelBounds(
                min_minutes=reader.number("label_bounds.min_minutes"),
                max_minutes=reader.number("label_bounds.max_minutes"),
            ),
            linear_baseline=tuple(sorted(reader.mapping("linear_baseline").items())),
            seed=int(reader.get("seed", 42)),
            fit_partitions=int(reader.get("fit_partitions", DEFAULT_FIT_PARTITIONS)),
            split=SplitConf(
                windows=int(reader.get("split.windows", 3)),
                window=window,
                test_days=int(reader.get("split.test_days", None) or 14),
                test_from=dt.date.fromisoformat(str(test_from)) if test_from else None,
                min_train_rows=int(reader.get("split.min_train_rows", 1000)),
                min_test_rows=int(reader.get("split.min_test_rows", 200)),
            ),
            tuning=TuningConf(
                validation_days=int(reader.get("tuning.validation_days", 14)),
                grid=tuple((name, tuple(values)) for name, values in sorted(grid.items())),
            ),
            plot_sample_rows=int(reader.get("plots.sample_rows", 5000)),
            min_category_rows=int(reader.get("features.min_category_rows", 0) or 0),
        )


class _Reader:
    """Dotted-key access to the raw YAML mapping with errors that name the file and the key."""

    _MISSING = object()

    def __init__(self, raw: Mapping[str, Any], source: str) -> None:
        self.raw, self.source = raw, source

    def get(self, key: str, default: Any = _MISSING) -> Any:
        node: Any = self.raw
        for part in key.split("."):
            if not isinstance(node, Mapping) or node.get(part) is None:
                if default is self._MISSING:
                    raise ConfigError(f"{self.source}: {key} is required")
                return default
            node = node[part]
        return node

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.get(key, {})
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.source}: {key} must be a mapping, not {value!r}")
        return dict(value)

    def number(self, key: str) -> float | None:
        value = self.get(key, None)
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{self.source}: {key} must be a number, not {value!r}") from exc


def load_params(lake: Lake) -> ModelParams:
    """The model parameters from the file named by conf `model.params` (relative to conf/)."""
    path: Path = lake.conf.conf_file("model.params")
    if not path.exists():
        raise MissingInputError(f"model parameters {path} not found (conf key model.params)")
    return ModelParams.from_dict(yaml.safe_load(path.read_text()) or {}, source=str(path))
