"""Whether an argument value comes from the conversation, and is of the kind its parameter
asks for.

A call is trusted only when each value can be traced to what was said. A string value is
grounded when it:

- is written in the conversation (any turn), ignoring case and spacing, as whole words; or
  its words all are (a multi-word value may drop words or change their order);
- is one of the parameter's ``enum`` choices, its ``const`` or its ``default``;
- writes a date or clock time of the conversation in another form ("2026-12-07T19:00" for
  "tomorrow at 7pm", read against the request's reference moment);
- is the code of a currency, unit or US state the conversation names ("EUR" for "euros",
  "celsius" for "°C", "IL" for "Illinois"), or a formula it writes in Python's notation
  ("3x**2" for "3x^2");
- is a list of grounded parts joined by commas ("Nopa, San Francisco"), where a part may also
  be the state of a US city named before it ("Austin, TX").

A number is grounded when the conversation writes it (in digits or words, as a percentage,
with a scale such as "1.2 million") or it is a choice or the default. Booleans are decisions,
not quotes, and are not checked.

A parameter named for a date or a time (``date``, ``time``, ``start_time``...) or declaring a
date/time ``format`` must hold a value that reads as a date or time: "table" for ``time`` is
wrong however grounded it is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.specialists.function_call.arguments import currency_code, mentions_in
from orchestrator.specialists.function_call.dates import Moments, moments_in, value_moment
from orchestrator.specialists.function_call.places import same_state, state_of
from orchestrator.specialists.function_call.request_parts import numbers_in

__all__ = ["Conversation", "grounding_problems"]

_WORDS = re.compile(r"[^\W_]+(?:['\u2019.&-][^\W_]+)*")
#: Small words a multi-word value may add without inventing anything.
_FILLER = frozenset(re.findall(r"\S+", "a an the of to in on at for and or with by from"))
#: How many words may stand between two words of a value, and the words that end a list item.
_MAX_GAP = 2
_LIST_WORDS = frozenset({"and", "or", "nor", "but"})
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW"}
#: Units written in words and their codes, both ways: a value may use either.
_UNITS = (
    ("celsius", "c", "°c", "degc", "centigrade"),
    ("fahrenheit", "f", "°f", "degf"),
    ("kelvin", "k"),
    ("kilometers", "km", "kilometres", "kilometer", "kilometre"),
    ("miles", "mi", "mile"),
    ("meters", "m", "metres", "meter", "metre"),
    ("centimeters", "cm", "centimetres", "centimeter", "centimetre"),
    ("millimeters", "mm", "millimetres", "millimeter", "millimetre"),
    ("feet", "ft", "foot"),
    ("inches", "in", "inch"),
    ("kilograms", "kg", "kilogram", "kilos"),
    ("pounds", "lb", "lbs", "pound"),
    ("grams", "g", "gram"),
    ("liters", "l", "litres", "liter", "litre"),
    ("minutes", "min", "mins", "minute"),
    ("hours", "h", "hr", "hrs", "hour"),
    ("seconds", "s", "sec", "secs", "second"),
)
_UNIT_OF = {form: forms[0] for forms in _UNITS for form in forms}
_TEMPORAL_NAME = re.compile(
    r"(?:^|_|\b)(?:date|time|datetime|timestamp|when|deadline|due)(?:$|_|\b)", re.I
)
_TEMPORAL_FORMATS = ("date", "time", "date-time")


def _normal(text: str) -> str:
    return " ".join(_WORDS.findall(text.casefold()))


@dataclass(frozen=True)
class Conversation:
    """What a conversation gives to check values against, read once per request."""

    text: str
    words: frozenset[str]
    numbers: frozenset[float]
    moments: Moments
    currencies: frozenset[str]
    units: frozenset[str]

    @classmethod
    def of(cls, text: str, now: datetime) -> Conversation:
        normal = _normal(text)
        words = frozenset(normal.split())
        numbers = {float(n) for n in numbers_in(text)}
        numbers |= {float(m.value) for m in mentions_in(text)[0]}
        currencies = {code for symbol, code in _SYMBOLS.items() if symbol in text}
        tokens = normal.split()
        for size in (1, 2, 3):
            for i in range(len(tokens) - size + 1):
                code = currency_code(" ".join(tokens[i : i + size]))
                if code:
                    currencies.add(code)
        currencies |= {w.upper() for w in words if currency_code(w) == w.upper()}
        units = {_UNIT_OF[w] for w in words if w in _UNIT_OF and len(w) > 2}
        units |= {_UNIT_OF[u] for u in re.findall(r"°\s?([cf])\b", text.lower())}
        units |= {
            _UNIT_OF[m.group(1)]
            for m in re.finditer(r"\d\s?([a-z]{1,3})\b", text.lower())
            if m.group(1) in _UNIT_OF
        }
        return cls(
            text=f" {normal} ",
            words=words,
            numbers=frozenset(numbers),
            moments=moments_in(text, now),
            currencies=frozenset(currencies),
            units=frozenset(units),
        )

    def says(self, value: str) -> bool:
        """The value is written in the conversation: as it is, or its words in the same
        order with a few words between them ("Museum Modern Art" of "Museum of Modern
        Art"), but not across a list ("Paris Berlin" of "Paris and Berlin")."""
        normal = _normal(value)
        if not normal:
            return False
        if f" {normal} " in self.text:
            return True
        content = [w for w in normal.split() if w not in _FILLER]
        if len(content) < 2 or not all(w in self.words for w in content):
            return False
        tokens = self.text.split()
        starts = [i for i, t in enumerate(tokens) if t == content[0]]
        return any(self._follows(tokens, start, content[1:]) for start in starts)

    @staticmethod
    def _follows(tokens: list[str], at: int, rest: list[str]) -> bool:
        for word in rest:
            gap = tokens[at + 1 : at + 1 + _MAX_GAP + 1]
            if word not in gap:
                return False
            step = gap.index(word)
            if any(t in _LIST_WORDS for t in gap[:step]):
                return False
            at += step + 1
        return True

    def names_number(self, value: float) -> bool:
        return any(math.isclose(value, n, rel_tol=1e-9, abs_tol=1e-9) for n in self.numbers)

    def converts(self, value: str) -> bool:
        """The value writes a moment, a currency or a unit of the conversation differently."""
        moment = value_moment(value)
        if moment is not None:
            day, clock = moment
            return (day is None or day in self.moments.dates) and (
                clock is None or clock in self.moments.times
            )
        stripped = value.strip()
        if currency_code(stripped) in self.currencies or stripped.upper() in self.currencies:
            return True
        if any(self.says(name) for name in same_state(stripped)):  # "IL" for "Illinois"
            return True
        if "**" in stripped and self.says(stripped.replace("**", "^")):  # a formula in Python
            return True
        return _UNIT_OF.get(stripped.lower().replace(" ", "")) in self.units


def _listed(schema: Mapping[str, Any]) -> list[Any]:
    """The values a schema names outright: its choices and its constant."""
    return [*schema.get("enum", []), *([schema["const"]] if "const" in schema else [])]


def _string_grounded(value: str, schema: Mapping[str, Any], said: Conversation) -> bool:
    if value in _listed(schema) or value == schema.get("default"):
        return True
    if said.says(value) or said.converts(value):
        return True
    parts = [p.strip() for p in value.split(",")]
    if len(parts) < 2 or not all(parts):
        return False
    return all(
        said.says(part) or said.converts(part) or (i > 0 and part in state_of(parts[i - 1]))
        for i, part in enumerate(parts)
    )


def _is_temporal(name: str, schema: Mapping[str, Any]) -> bool:
    return schema.get("format") in _TEMPORAL_FORMATS or bool(_TEMPORAL_NAME.search(name))


_TIME_WORDS = re.compile(
    r"\d|\b(?:today|tonight|tomorrow|yesterday|now|noon|midnight|morning|afternoon|evening|"
    r"night|week|weekend|month|year|day|hour|minute|am|pm|asap|daily|weekly|monthly|annual|"
    r"mon|tue|wed|thu|fri|sat|sun|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)",
    re.I,
)


def _values(
    value: Any, schema: Mapping[str, Any], where: str, name: str
) -> Iterator[tuple[str, str, Any, Mapping[str, Any]]]:
    """(where, parameter name, value, its schema) for every scalar inside an argument."""
    if isinstance(value, Mapping):
        props: Mapping[str, Any] = schema.get("properties", {})
        for key, item in value.items():
            yield from _values(item, props.get(key, {}), f"{where}.{key}", str(key))
    elif isinstance(value, list):
        items = schema.get("items")
        sub = items if isinstance(items, Mapping) else {}
        for i, item in enumerate(value):
            yield from _values(item, sub, f"{where}[{i}]", name)
    else:
        yield where, name, value, schema


def grounding_problems(
    arguments: Mapping[str, Any], parameters: Mapping[str, Any], said: Conversation, where: str
) -> list[str]:
    """What in one call's arguments does not come from the conversation, or is not of the
    kind its parameter asks for; empty when every value is traced."""
    problems: list[str] = []
    props: Mapping[str, Any] = parameters.get("properties", {})
    for name, argument in arguments.items():
        schema = props.get(name, {})
        for at, key, value, sub in _values(argument, schema, f"{where}.{name}", name):
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, (int, float)):
                listed = value in _listed(sub) or value == sub.get("default")
                if not listed and not said.names_number(float(value)):
                    problems.append(f"{at}: {value!r} is not a number the conversation gives")
                continue
            if not isinstance(value, str):
                continue
            if _is_temporal(key, sub) and not sub.get("enum") and not _TIME_WORDS.search(value):
                problems.append(f"{at}: {value!r} is not a date or a time")
            elif not _string_grounded(value, sub, said):
                problems.append(
                    f"{at}: {value!r} is not in the conversation (nor a choice, the default, "
                    "or a date, time, currency or unit it names)"
                )
    return problems
