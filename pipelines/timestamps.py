"""The one parser of TLC timestamp text, shared by bronze (the pickup_month partition) and silver (pickup_ts).

TLC files write ISO timestamps (`2019-01-15 03:36:12`, `2019-01-15T03:36:12`, with or without fractions) or,
in older exports, US ones (`01/15/2019 03:36:12 PM`). Both stages must read the same text as the same instant,
or a trip lands in bronze's `pickup_month=unknown` while silver reads it as January.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

US_TIMESTAMP_FORMAT = "MM/dd/yyyy hh:mm:ss a"
MONTH_FORMAT = "yyyy-MM"


def _text(value: Column | str) -> Column:
    """The value with surrounding blanks removed; empty text is missing."""
    trimmed = F.trim(F.col(value) if isinstance(value, str) else value)
    return F.when(trimmed != "", trimmed)


def parse_tlc_timestamp(value: Column | str) -> Column:
    """A timestamp from TLC text in the ISO or the US format; null when the text is neither (never an error)."""
    text = _text(value)
    return F.coalesce(F.try_to_timestamp(text), F.try_to_timestamp(text, F.lit(US_TIMESTAMP_FORMAT)))


def tlc_month(value: Column | str) -> Column:
    """yyyy-MM of a TLC timestamp text (ISO or US format), null when it does not parse."""
    return F.date_format(parse_tlc_timestamp(value), MONTH_FORMAT)
