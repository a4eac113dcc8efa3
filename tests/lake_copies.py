"""Copies of a test lake: a lake built once per module, and each test that changes it given its own folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from lake import Lake


def copy_of(lake: Lake, folder: Path) -> Lake:
    """The lake's folder copied to `folder` (Delta paths are relative; landed files stay where bronze recorded them),
    opened with the same configuration and session."""
    shutil.copytree(lake.root, folder)
    return Lake(lake.conf.with_overrides({"lake.root": str(folder)}), lake.spark)
