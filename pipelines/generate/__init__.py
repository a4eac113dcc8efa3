"""Synthetic TLC trip files calibrated on the real samples, with defects at known rates (`lake generate`)."""

from pipelines.generate.run import EXPECTED, generate

__all__ = ["EXPECTED", "generate"]
