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
from typing import Any

from dateutil import parser as date_parser

from orchestrator.specialists.function_call.arguments import DATES, parse_date

__all__ = [
    "Moments",
    "first_moment",
    "moment_kind",
    "moment_spans",
    "moments_in",
    "value_moment",
    "written_as",
]

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
_WEEKDAY_WORDS = re.compile(
    r"\b(?:(?:day after )?tomorrow|today|tonight|yesterday|(?:this |next )?weekend|"
    r"(?:mon|tues|wednes|thurs|fri|satur|sun)days?)\b",
    re.I,
)
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


def _dates_at(text: str, now: datetime) -> list[tuple[int, date]]:
    """(position, date) of every date the text names, relative words read against ``now``."""
    low = text.lower()
    today = now.date()
    found: list[tuple[int, date]] = []
    relative = {"today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1}
    for word, offset in relative.items():
        for match in re.finditer(rf"\b{word}\b", low):
            found.append((match.start(), today + timedelta(days=offset)))
    for match in re.finditer(r"\bday after tomorrow\b", low):
        found.append((match.start(), today + timedelta(days=2)))
    for index, name in enumerate(_WEEKDAYS):
        for match in re.finditer(rf"\b{name}s?\b", low):
            found += [(match.start(), d) for d in _weekday_dates(index, today)]
    for match in re.finditer(r"\b(?:this|next|the|on the)\s+weekend\b", low):
        found += [(match.start(), _weekday_dates(5, today)[0])]
        found += [(match.start() + 1, _weekday_dates(6, today)[0])]
    for match in _IN_PERIOD.finditer(low):
        amount = _SMALL.get(match.group(1)) or int(match.group(1))
        days = amount * (7 if match.group(2) == "week" else 1)
        found.append((match.start(), today + timedelta(days=days)))
    for written in DATES.finditer(text):
        full = parse_date(written.group(0))
        if full:
            with contextlib.suppress(ValueError):  # "February 30"
                found.append((written.start(), date(*full)))
    for match in _MONTH_DAY.finditer(low):
        month = _month(match.group(1))
        found += [(match.start(), d) for d in _years_for(month, int(match.group(2)), today)]
    for match in _DAY_MONTH.finditer(low):
        month = _month(match.group(2))
        found += [(match.start(), d) for d in _years_for(month, int(match.group(1)), today)]
    return found


def _times_at(text: str) -> list[tuple[int, time]]:
    """(position, clock time) of every time the text names ("at 7" gives 7:00 and 19:00)."""
    low = text.lower()
    found: list[tuple[int, time]] = []
    for match in _CLOCK.finditer(low):
        if match.group(3):
            hour, minute = int(match.group(1)), int(match.group(2) or 0)
            if not 1 <= hour <= 12:
                continue
            hour = hour % 12 + (12 if match.group(3).startswith("p") else 0)
        else:
            hour, minute = int(match.group(4)), int(match.group(5))
        if hour < 24 and minute < 60:
            found.append((match.start(), time(hour, minute)))
    for match in _AT_HOUR.finditer(low):
        hour = int(match.group(1))
        if 1 <= hour <= 12:  # "at 7": morning or evening
            found += [(match.start(), time(hour % 12)), (match.start(), time(hour % 12 + 12))]
    for match in re.finditer(r"\bnoon\b|\bmidday\b", low):
        found.append((match.start(), time(12)))
    for match in re.finditer(r"\bmidnight\b", low):
        found.append((match.start(), time(0)))
    return found


def moments_in(text: str, now: datetime) -> Moments:
    """Every date and clock time ``text`` names, relative words read against ``now``."""
    return Moments(
        frozenset(d for _, d in _dates_at(text, now)), frozenset(t for _, t in _times_at(text))
    )


def moment_spans(text: str) -> list[tuple[int, int]]:
    """Where the text writes dates and times ("tomorrow", "April 5", "at 7pm"), so that their
    numbers are not read as other values (the 7 of "7pm" is no party size)."""
    low = text.lower()
    patterns = [DATES, _MONTH_DAY, _DAY_MONTH, _CLOCK, _IN_PERIOD, _WEEKDAY_WORDS]
    spans = [m.span() for pattern in patterns for m in pattern.finditer(low)]
    spans += [m.span(1) for m in _AT_HOUR.finditer(low)]
    # The word that introduces a moment belongs to it ("at" of "at 7pm", "on" of "on
    # Saturday"): left behind, it would join the words around it into one value ("Zuni Cafe
    # at" of "Zuni Cafe tonight at 6:45pm").
    spans = [(_introduced_at(low, start), end) for start, end in spans]
    return sorted(spans)


_INTRODUCER = re.compile(r"\b(?:at|on|by|from|until|till|before|after)\s+$")


def _introduced_at(low: str, start: int) -> int:
    """Where the moment that starts at ``start`` begins with the word that introduces it."""
    found = _INTRODUCER.search(low, max(0, start - 12), start)
    return found.start() if found else start


def first_moment(text: str, now: datetime) -> tuple[date | None, time | None]:
    """The first date and the first clock time the text names, in their most likely reading
    (the coming Friday; "at 7" in the evening, as requests for bookings and reminders mean)."""
    dates = sorted(_dates_at(text, now), key=lambda found: found[0])
    times = sorted(_times_at(text), key=lambda found: (found[0], -found[1].hour))
    return (dates[0][1] if dates else None), (times[0][1] if times else None)


def written_as(day: date | None, clock: time | None, kind: str) -> str | None:
    """A moment written as a parameter asks for it: ``date`` (2026-03-13), ``time`` (19:00)
    or ``date-time`` (2026-03-13T19:00); None when the moment lacks what is asked."""
    if kind == "date":
        return day.isoformat() if day else None
    if kind == "time":
        return clock.strftime("%H:%M") if clock else None
    if day is None or clock is None:
        return None
    return f"{day.isoformat()}T{clock.strftime('%H:%M')}"


_ASKS = {
    "date-time": re.compile(r"yyyy-mm-dd[t ]hh:mm|date-?time|iso ?8601 (?:date[- ])?time", re.I),
    "date": re.compile(r"yyyy-mm-dd|iso ?8601 date", re.I),
    "time": re.compile(r"\bhh:mm\b|24-hour", re.I),
}


def moment_kind(schema: dict[str, object] | Any) -> str | None:
    """Which moment a string parameter asks for in a fixed form (``date``, ``time`` or
    ``date-time``), from its JSON Schema ``format`` or the form its description spells out;
    None when it asks for none (its value is then the text as written)."""
    declared = schema.get("format")
    if declared in _ASKS:
        return str(declared)
    description = str(schema.get("description", ""))
    return next((kind for kind, pattern in _ASKS.items() if pattern.search(description)), None)


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
