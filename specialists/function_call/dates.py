"""Dates and clock times: those a conversation names ("tomorrow at 7pm", "next Friday",
"March 3, 2026", "19:30"), read against a reference moment, and those an argument value holds
("2026-12-07", "7:00 PM", "2026-12-07T19:00").

A value that writes a moment of the conversation in another form is a conversion of its text,
not an invention: verification accepts "2026-12-07T19:00:00" for "tomorrow at 7pm" said on
2026-12-06. Absolute values are parsed with python-dateutil; the relative words of requests
(today, tomorrow, weekdays, "in 3 days", "this weekend") are read here.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from dateutil import parser as date_parser

from orchestrator.specialists.function_call.arguments import DATES, parse_date

__all__ = ["Moments", "moments_in", "value_moment"]

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_NO_YEAR = r"(?!,?\s*\d{4})"
_MONTH_DAY = re.compile(rf"\b{_MONTH}\s*(\d{{1,2}})(?:st|nd|rd|th)?\b{_NO_YEAR}", re.I)
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}{_NO_YEAR}", re.I)
_CLOCK = re.compile(
    r"\b(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?)(?![a-z])|\b(\d{1,2}):(\d{2})\b", re.I
)
_AT_HOUR = re.compile(r"\b(?:at|around|by|from|until|till|to)\s+(\d{1,2})\b(?![:.\d])", re.I)
_IN_PERIOD = re.compile(r"\bin\s+(\d{1,3}|a|one|two|three|four|five|six|seven)\s+(day|week)s?\b")
_SMALL = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
# A value is read as a moment only when it looks like one: "4" is a number, not the 4th.
_LOOKS_TEMPORAL = re.compile(
    rf"\d[-/.:]\d|\d\s*(?:a\.?m|p\.?m)\b|\b{_MONTH}|\b(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\b"
    r"|\b(?:today|tonight|tomorrow|yesterday|noon|midnight)\b",
    re.I,
)
# Two defaults that differ in every field: a field that comes out the same under both was
# written in the value.
_DEFAULT_A = datetime(2001, 1, 1, 0, 0)
_DEFAULT_B = datetime(2002, 2, 2, 1, 1)


@dataclass(frozen=True)
class Moments:
    """The calendar dates and clock times a text names (several readings where it is
    ambiguous: "Friday" is this coming Friday or the one after, "at 7" is 7:00 or 19:00)."""

    dates: frozenset[date]
    times: frozenset[time]


def _weekday_dates(weekday: int, today: date) -> list[date]:
    ahead = (weekday - today.weekday()) % 7
    first = today + timedelta(days=ahead)
    return [first, first + timedelta(days=7)]


def _years_for(month: int, day: int, today: date) -> list[date]:
    found = []
    for year in (today.year, today.year + 1):
        try:
            found.append(date(year, month, day))
        except ValueError:
            continue
    return found


def moments_in(text: str, now: datetime) -> Moments:
    """Every date and clock time ``text`` names, relative words read against ``now``."""
    low = text.lower()
    today = now.date()
    dates: set[date] = set()
    times: set[time] = set()
    relative = {"today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1}
    for word, offset in relative.items():
        if re.search(rf"\b{word}\b", low):
            dates.add(today + timedelta(days=offset))
    if "day after tomorrow" in low:
        dates.add(today + timedelta(days=2))
    for index, name in enumerate(_WEEKDAYS):
        if re.search(rf"\b{name}s?\b", low):
            dates.update(_weekday_dates(index, today))
    if re.search(r"\b(?:this|next|the|on the)\s+weekend\b", low):
        dates.update(_weekday_dates(5, today)[:1] + _weekday_dates(6, today)[:1])
    for match in _IN_PERIOD.finditer(low):
        amount = _SMALL.get(match.group(1)) or int(match.group(1))
        dates.add(today + timedelta(days=amount * (7 if match.group(2) == "week" else 1)))
    for written in DATES.finditer(text):
        full = parse_date(written.group(0))
        if full:
            with contextlib.suppress(ValueError):  # "February 30"
                dates.add(date(*full))
    for match in _MONTH_DAY.finditer(low):
        month = _month(match.group(1))
        dates.update(_years_for(month, int(match.group(2)), today))
    for match in _DAY_MONTH.finditer(low):
        month = _month(match.group(2))
        dates.update(_years_for(month, int(match.group(1)), today))
    for match in _CLOCK.finditer(low):
        if match.group(3):
            hour, minute = int(match.group(1)), int(match.group(2) or 0)
            if not 1 <= hour <= 12:
                continue
            hour = hour % 12 + (12 if match.group(3).startswith("p") else 0)
        else:
            hour, minute = int(match.group(4)), int(match.group(5))
        if hour < 24 and minute < 60:
            times.add(time(hour, minute))
    for match in _AT_HOUR.finditer(low):
        hour = int(match.group(1))
        if 1 <= hour <= 12:  # "at 7": morning or evening
            times.update({time(hour % 12), time(hour % 12 + 12)})
    if re.search(r"\bnoon\b|\bmidday\b", low):
        times.add(time(12))
    if re.search(r"\bmidnight\b", low):
        times.add(time(0))
    return Moments(frozenset(dates), frozenset(times))


def _month(word: str) -> int:
    return next(i for i, m in enumerate(_MONTHS, 1) if m.startswith(word[:3].lower()))


def value_moment(value: str) -> tuple[date | None, time | None] | None:
    """The date and the clock time a value writes (either may be None); None when the value
    is not a moment at all."""
    if not _LOOKS_TEMPORAL.search(value):
        return None
    try:
        first = date_parser.parse(value, default=_DEFAULT_A)
        second = date_parser.parse(value, default=_DEFAULT_B)
    except (ValueError, OverflowError):
        return None
    # "Dec 7" (no year) names no whole date; it is grounded only where it is written.
    written_date = first.date() if first.date() == second.date() else None
    written_time: time | None = time(
        first.hour, first.minute if first.minute == second.minute else 0
    )
    if first.hour != second.hour:
        written_time = None
    elif written_date is not None and written_time == time(0) and "00" not in value:
        written_time = None  # "2026-12-07" names no time
    if written_date is None and written_time is None:
        return None
    return written_date, written_time
