"""A Lake on an edited copy of the table registry, for the tests of its checks."""

from __future__ import annotations

import shutil
from pathlib import Path

from lake import Lake, load_conf


def lake_with_registry_edit(tmp_path: Path, old: str, new: str) -> Lake:
    """A Lake on a copy of conf/ whose tables.yaml has its first `old` replaced by `new` (a broken registry)."""
    conf_dir = tmp_path / "conf"
    shutil.copytree(load_conf("test").conf_dir, conf_dir)
    registry = (conf_dir / "tables.yaml").read_text()
    assert old in registry
    (conf_dir / "tables.yaml").write_text(registry.replace(old, new, 1))
    return Lake(load_conf("test", overrides={"lake.root": str(tmp_path / "lake")}, conf_dir=conf_dir))
