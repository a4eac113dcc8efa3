"""Configuration: conf/base.yaml, overridden by conf/<env>.yaml, overridden by environment variables."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import yaml

from lake.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONF_DIR = PROJECT_ROOT / "conf"

# Environment variables that win over YAML, mapped to their dotted config key.
ENV_OVERRIDES = {
    "LAKE_ROOT": "lake.root",
    "LAKE_LANDING": "lake.landing",
    "SPARK_MASTER": "spark.master",
    "SPARK_DRIVER_MEMORY": "spark.driver_memory",
    "SPARK_SHUFFLE_PARTITIONS": "spark.shuffle_partitions",
    "SPARK_EXECUTOR_MEMORY": "spark.executor_memory",
    "LAKE_DELTA_JARS": "spark.delta_jars",
    "MLFLOW_TRACKING_URI": "mlflow.tracking_uri",
    "LAKE_MODEL_PARAMS": "model.params",
}


__all__ = ["Conf", "ConfigError", "load_conf"]


def _merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


DEFAULT_FS = "fs.defaultFS"  # Hadoop's default filesystem: what a path without a scheme names


def is_uri(location: str) -> bool:
    """True for scheme://... locations (s3a, abfss, gs, file), which are used as given."""
    return "://" in location


def local_path(location: str) -> str | None:
    """The path on this machine's disk of a plain path or a `file:` URI (`file:/x`, `file:///x`); None for a store."""
    if location.startswith("file:"):
        return url2pathname(urlsplit(location).path)
    return None if is_uri(location) else location


def spark_path(location: str) -> str:
    """A location as Spark and Hadoop are given it: a local path as a `file:` URI. A path without a scheme means
    Hadoop's default filesystem, which on a cluster over object storage is the store (lake.session)."""
    return location if is_uri(location) or location.startswith("file:") else f"file:{location}"


class Conf:
    """Resolved configuration; `conf.get("spark.master")` reads a dotted key."""

    def __init__(self, data: dict, env: str, conf_dir: Path) -> None:
        self.data = data
        self.env = env
        self.conf_dir = conf_dir

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def require(self, dotted: str) -> Any:
        value = self.get(dotted)
        if value is None:
            raise ConfigError(f"configuration key '{dotted}' is missing (env '{self.env}', {self.conf_dir})")
        return value

    def path(self, dotted: str) -> str:
        """A location from config: URIs as given, local paths absolute (relative to the project root)."""
        value = str(self.require(dotted))
        if is_uri(value):
            return value
        path = Path(os.path.expanduser(value))
        return str(path if path.is_absolute() else (self.conf_dir.parent / path).resolve())

    def conf_file(self, dotted: str) -> Path:
        """A file referenced from config, relative to conf/."""
        return self.conf_dir / str(self.require(dotted))

    def with_overrides(self, overrides: dict) -> Conf:
        data = copy.deepcopy(self.data)
        for key, value in overrides.items():
            _set_dotted(data, key, value)
        return Conf(data, self.env, self.conf_dir)

    @property
    def lake_root(self) -> str:
        return self.path("lake.root")

    @property
    def on_cluster(self) -> bool:
        """True when executors may run on other machines than the driver (any master but local[...])."""
        return not str(self.get("spark.master", "local[2]")).startswith("local")


def load_conf(env: str | None = None, overrides: dict | None = None, conf_dir: Path | None = None) -> Conf:
    """Loads base.yaml, then <env>.yaml (env from the argument or LAKE_ENV), then environment variables."""
    conf_dir = Path(conf_dir or os.environ.get("LAKE_CONF_DIR") or DEFAULT_CONF_DIR)
    env = env or os.environ.get("LAKE_ENV") or "local"
    base_file = conf_dir / "base.yaml"
    if not base_file.exists():
        raise ConfigError(f"{base_file} not found (set LAKE_CONF_DIR to the folder holding base.yaml)")
    data = _read_yaml(base_file)
    env_file = conf_dir / f"{env}.yaml"
    if env_file.exists():
        data = _merge(data, _read_yaml(env_file))
    elif env != "local":
        raise ConfigError(f"unknown environment '{env}': {env_file} does not exist")
    for var, dotted in ENV_OVERRIDES.items():
        if os.environ.get(var):
            _set_dotted(data, dotted, os.environ[var])
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    return Conf(data, env, conf_dir)
