"""US federal holidays for any year (5 U.S.C. 6103), with the dates they are observed when they fall on a weekend."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date, timedelta

MONDAY, THURSDAY, SATURDAY, SUNDAY = 0, 3, 5, 6
JUNETEENTH_FIRST_YEAR = 2021  # made a federal holiday in June 2021


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based) weekday of a month; n = -1 is the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    """A Saturday holiday is observed the Friday before, a Sunday holiday the Monday after."""
    if day.weekday() == SATURDAY:
        return day - timedelta(days=1)
    if day.weekday() == SUNDAY:
        return day + timedelta(days=1)
    return day


def us_federal_holidays(year: int) -> dict[date, str]:
    """The federal holidays of `year` and their observed dates (named "... (observed)"), by date.

    An observed date can fall in the year before (New Year's Day on a Saturday is observed on December 31).
    """
    fixed = {
        "New Year's Day": date(year, 1, 1),
        "Independence Day": date(year, 7, 4),
        "Veterans Day": date(year, 11, 11),
        "Christmas Day": date(year, 12, 25),
    }
    if year >= JUNETEENTH_FIRST_YEAR:
        fixed["Juneteenth"] = date(year, 6, 19)
    floating = {
        "Martin Luther King Jr. Day": _nth_weekday(year, 1, MONDAY, 3),
        "Washington's Birthday": _nth_weekday(year, 2, MONDAY, 3),
        "Memorial Day": _nth_weekday(year, 5, MONDAY, -1),
        "Labor Day": _nth_weekday(year, 9, MONDAY, 1),
        "Columbus Day": _nth_weekday(year, 10, MONDAY, 2),
        "Thanksgiving Day": _nth_weekday(year, 11, THURSDAY, 4),
    }
    holidays = {day: name for name, day in {**fixed, **floating}.items()}
    for name, day in fixed.items():
        observed = _observed(day)
        if observed != day:
            holidays[observed] = f"{name} (observed)"
    return holidays


def holidays_between(first: date, last: date, extra: Iterable[date] = ()) -> list[date]:
    """Sorted holiday dates (actual and observed) in [first, last], plus the `extra` ones in that range."""
    days = set(extra)
    for year in range(first.year, last.year + 2):  # next year's New Year may be observed on Dec 31
        days |= set(us_federal_holidays(year))
    return sorted(day for day in days if first <= day <= last)
