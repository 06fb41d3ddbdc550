"""Reading argument values straight out of a request, without a generative model.

Most arguments of a tool call are written in the request: "a base of 10 units and a height of
5" holds ``base=10`` and ``height=5``. This module finds every value the request mentions (numbers,
quoted strings, names, word spans), scores how well each fits each parameter from the words
around it (the parameter's name and description words nearby, prepositions that mark a role such
as "from" for an origin, capitals for names, the order in which the request and the function list
them), and assigns values to parameters so that the total fit is best and no mention is used
twice. What it cannot settle with a clear margin it reports, so that the caller can let a
generative model choose among the few best candidates.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

import numpy as np

from orchestrator.specialists.function_call.argument_weights import ARGUMENT_WEIGHTS, share_of
from orchestrator.specialists.function_call.numbers import (
    NUMBER,
    NUMBER_WORDS,
    number_of,
    number_value,
)
from orchestrator.specialists.function_call.places import region_words

__all__ = [
    "PERIODS",
    "STOP_WORDS",
    "Candidate",
    "CandidateGroup",
    "Entities",
    "Mention",
    "ParameterChoice",
    "assign_arguments",
    "calendar_name",
    "chosen_probabilities",
    "mentions_in",
    "read_lists",
    "recorded_candidates",
]

#: Words that carry no value of their own (shared with the function chooser).
STOP_WORDS = frozenset(
    re.findall(
        r"\S+",
        "a an the of to in on at for by with from and or but is are was were be been am i me my "
        "you your we our it its this that these those what which who whom how when where why can "
        "could would should will shall do does did please find get give tell show me us their "
        "there here as into about than then also any some all each per via using use",
    )
)
# ... and words that are rarely a value: request verbs and vague adjectives.
_STOP = STOP_WORDS | frozenset(
    re.findall(
        r"\S+",
        "want need like know let help calculate compute determine retrieve search fetch provide "
        "out made different filed located based including available current currently latest "
        "nearby specific certain given following provided upcoming famous popular recommended "
        "good best highest lowest official possible detailed customized custom",
    )
)
_EDGE = " \t\n,.;:!?()[]{}\"'\u201c\u201d\u2018\u2019`"
#: A quotation mark that opens or closes a quoted value inside a span of words.
_CUT_QUOTE = re.compile("(?:^|\\s)[\"'\u2018\u201c`]|[\"'\u2019\u201d`](?:\\s|$)")
_PER_YEAR = {
    "annually": 1, "yearly": 1, "semiannually": 2, "semi-annually": 2, "quarterly": 4,
    "monthly": 12, "weekly": 52, "daily": 365,
}  # fmt: skip
#: Units of time that "the next ..." counts one of.
PERIODS = frozenset({"day", "week", "month", "quarter", "year", "decade", "hour", "minute"})


def _period_at(request: _Request, index: int) -> bool:
    return index < len(request.lower) and request.lower[index] in PERIODS


_QUOTED = re.compile(r"[\"'\u201c\u2018`]([^\"'\u201d\u2019`\n]{1,200})[\"'\u201d\u2019`]")
_WORD = re.compile(r"\S+")

# Words before a value that say which role it plays.
_ROLE_CUES: dict[str, tuple[str, ...]] = {
    "from": ("start", "origin", "source", "from", "depart", "initial", "begin", "base_currency"),
    "to": ("end", "destination", "target", "to", "arriv", "final", "dest"),
    "in": ("location", "city", "place", "country", "region", "area", "state", "venue", "year"),
    "at": ("location", "place", "venue", "time", "rate", "temperature", "city"),
    "near": ("location", "near", "place", "city", "area"),
    "by": ("author", "artist", "director", "composer", "creator", "band", "singer", "by"),
    "for": ("duration", "period", "time", "years", "days", "months", "for"),
    "of": ("name", "title", "number", "value", "amount"),
    "on": ("date", "day", "platform", "topic", "subject"),
    "about": ("topic", "subject", "query", "keyword"),
    "with": ("with", "ingredient", "feature"),
}
# Parameters whose values are names: capitalised spans fit them best.
_NAME_PARAMS = (
    "name", "city", "location", "country", "state", "company", "team", "player", "artist",
    "author", "title", "place", "destination", "origin", "start", "end", "source", "target",
    "director", "band", "movie", "book", "song", "album", "restaurant", "hotel", "region",
    "park", "museum", "brand", "species", "person", "university", "organization", "venue",
    "league", "event", "symbol", "ticker", "currency", "language", "stock", "airport", "game",
)  # fmt: skip
DATES = re.compile(
    r"\b(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|(?:jan|feb|mar|apr|may|"
    r"jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s*\d{1,2}(?:st|nd|rd|th)?(?:,?\s+\d{4})?|\d{1,2}"
    r"(?:st|nd|rd|th)?\s+(?:of\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*"
    r"(?:,?\s+\d{4})?|(?:next|this|coming)\s+(?:monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|week(?:end)?|month|year)|tomorrow|tonight|today)\b",
    re.IGNORECASE,
)


class Similarity(Protocol):
    """Cosine similarities of each of ``queries`` with each of ``texts`` (a sentence encoder)."""

    def __call__(
        self, queries: Sequence[str], texts: Sequence[str], /
    ) -> Sequence[Sequence[float]] | np.ndarray: ...


class Entities(Protocol):
    """Named entities of a text: (first character, end character, label) with spaCy's
    labels (GPE, PERSON, ORG...)."""

    def __call__(self, text: str, /) -> Sequence[tuple[int, int, str]]: ...


#: The kind of value each entity label is, and the parameter name words that ask for it.
_ENTITY_KINDS = {
    "GPE": "place", "LOC": "place", "FAC": "place", "PERSON": "person", "ORG": "organization",
    "WORK_OF_ART": "title", "EVENT": "event", "NORP": "group", "LANGUAGE": "group",
    "PRODUCT": "product", "DATE": "date", "TIME": "date",
}  # fmt: skip
_KIND_WORDS_OF_PARAMETERS = {
    "place": (
        "city", "location", "state", "country", "region", "place", "destination", "origin",
        "address", "venue", "area", "town", "province", "county", "continent", "district",
        "neighborhood", "where",
    ),
    "person": (
        "author", "artist", "director", "person", "player", "lawyer", "actor", "actress",
        "composer", "singer", "musician", "scientist", "president", "employee", "customer",
        "contact", "recipient", "attendee", "guest", "owner", "patient", "doctor", "judge",
        "athlete", "inventor", "painter", "writer", "individual",
    ),
    "organization": (
        "company", "organization", "organisation", "team", "brand", "university", "school",
        "institution", "club", "firm", "bank", "agency", "publisher", "manufacturer", "court",
    ),
    "title": ("title", "book", "movie", "film", "song", "album", "show", "series", "novel",
              "painting", "artwork", "game"),
    "event": ("event", "festival", "tournament", "conference", "war", "battle"),
    "group": ("cuisine", "nationality", "language", "religion", "ethnicity"),
    "product": ("product", "model", "device", "instrument", "item"),
    "date": ("date", "day", "time", "when", "month", "year"),
}  # fmt: skip


def _parameter_kind(param: _Param) -> str | None:
    """The kind of entity a parameter asks for, from its name (or else its description)."""
    for keys in (param.name_keys, param.desc_keys[:4]):
        for key in keys:
            for kind, words in _KIND_WORDS_OF_PARAMETERS.items():
                if any(key == w or (len(key) > 4 and key.startswith(w)) for w in words):
                    return kind
    return None


def _noun_run_features(request: _Request, mention: Mention) -> dict[str, float]:
    """Where the mention sits in the request's runs of adjectives and nouns: a value that
    names a thing is usually a whole run ("espresso beans") or its start ("living room" of
    "living room lights"), seldom its last word alone ("beans")."""
    for first, last in request.noun_runs:
        if mention.last < first or last < mention.first:
            continue
        if (mention.first, mention.last) == (first, last):
            return {"noun_run": 1.0}
        if first <= mention.first and mention.last <= last:
            if mention.first == first:
                return {"noun_run_start": 1.0}
            return {"noun_run_end" if mention.last == last else "noun_run_middle": 1.0}
        if mention.first <= first and last <= mention.last:
            return {"noun_run_and_more_words": 1.0}
        return {"part_of_a_noun_run_and_more": 1.0}
    return {}


def _entity_features(request: _Request, param: _Param, mention: Mention) -> dict[str, float]:
    """How the mention lines up with the named entities of the request."""
    if not request.entities:
        return {}
    exact = request.entities.get((mention.first, mention.last))
    if exact is not None:
        wanted = _parameter_kind(param)
        if wanted is None:
            return {"entity_for_any_parameter": 1.0}
        return {"entity_of_the_kind_asked" if exact == wanted else "entity_of_another_kind": 1.0}
    for first, last in request.entities:
        if first <= mention.first and mention.last <= last:
            return {"part_of_an_entity": 1.0}
        if mention.first <= first and last <= mention.last:
            return {"entity_and_more_words": 1.0}
    return {}


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_FORMAT = re.compile(r"\b(yyyy|mm|dd)([-/.])(mm|dd)\2(yyyy|mm|dd)\b", re.IGNORECASE)


def parse_date(text: str) -> tuple[int, int, int] | None:
    """(year, month, day) of a date written as "2022-03-11", "2022/08/16", "03/11/2022",
    "March 11, 2022", "March.11, 2022", "11th of March 2022" or "June01 2023"."""
    low = text.lower()
    if match := re.search(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b", low):
        year, month, day = (int(g) for g in match.groups())
        return (year, month, day) if 1 <= month <= 12 and 1 <= day <= 31 else None
    if match := re.search(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})\b", low):
        first, second, year = (int(g) for g in match.groups())
        month, day = (first, second) if first <= 12 else (second, first)
        return (year, month, day) if 1 <= month <= 12 and 1 <= day <= 31 else None
    month_word = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
    if match := re.search(rf"{month_word}\s*(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})", low):
        month, day, year = (
            _MONTHS.index(match.group(1)) + 1,
            int(match.group(2)),
            int(match.group(3)),
        )
        return (year, month, day) if 1 <= day <= 31 else None
    if match := re.search(
        rf"(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{month_word},?\s+(\d{{4}})", low
    ):
        day, month, year = (
            int(match.group(1)),
            _MONTHS.index(match.group(2)) + 1,
            int(match.group(3)),
        )
        return (year, month, day) if 1 <= day <= 31 else None
    return None


_CALENDAR = {
    "month": re.compile(
        r"\b(?:January|February|March|April|May|June|July|August|September|October|November|"
        r"December)\b"
    ),
    "day": re.compile(r"\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b"),
}


def calendar_name(parameter: str, text: str) -> str | None:
    """The month or weekday the text names, for a parameter called month or day."""
    keys = _key_words(parameter)
    for kind, pattern in _CALENDAR.items():
        if kind in keys:
            match = pattern.search(text)
            if match:
                return match.group(0)
    return None


def date_format(description: str) -> str | None:
    """The date format a description asks for ("YYYY-MM-DD", "MM/DD/YYYY"...), if any."""
    if match := _FORMAT.search(description):
        return match.group(0).upper()
    if match := re.search(
        r"\b(year|month|day)-(year|month|day)-(year|month|day)\b", description, re.I
    ):
        parts = {"year": "YYYY", "month": "MM", "day": "DD"}
        return "-".join(parts[g.lower()] for g in match.groups())
    if re.search(r"iso[- ]?8601|e\.g\.,? '?\d{4}-\d{2}-\d{2}", description, re.IGNORECASE):
        return "YYYY-MM-DD"
    return None


def format_date(date: tuple[int, int, int], fmt: str) -> str:
    year, month, day = date
    return (
        fmt.replace("YYYY", f"{year:04d}").replace("MM", f"{month:02d}").replace("DD", f"{day:02d}")
    )


_FORMULA = re.compile(
    # A variable is one letter on its own ("x", "3x"), not the last letter of a word ("and -4").
    r"(?:\b[a-z](?:\([a-z]\))?\s*=\s*)?(?:[\d.]*(?<![A-Za-z])[a-z](?![A-Za-z])(?:\^\d+)?|\d+)"
    r"(?:\s*[-+*/^]\s*(?:[\d.]*(?<![A-Za-z])[a-z](?![A-Za-z])(?:\^\d+)?|[\d.]+))+"
    r"|\b\d+[a-z]\^\d+\b"
)
_SCIENTIFIC = re.compile(r"[-\u2212]?\d+(?:\.\d+)?[eE][-+]?\d+")
_CODE_PARAMS = (
    "id", "code", "number", "docket", "serial", "ticket", "symbol", "sku", "isbn", "key", "ref",
    "reference", "identifier", "path", "file", "url", "email", "username", "handle", "tag",
)  # fmt: skip
_CODE = re.compile(
    r"(?=[\w/:.@-]*[a-z])(?=[\w/:.@-]*\d)[\w/:.@-]{3,}|[\w.-]+@[\w.-]+|\S+[/\\]\S+", re.I
)
_FORMULA_PARAMS = ("function", "equation", "expression", "polynomial", "formula", "func")


@dataclass(frozen=True)
class Mention:
    """A value written in the request, with where it is (word positions ``[first, last]``)."""

    value: Any
    text: str
    first: int
    last: int
    quoted: bool = False
    #: A number written as a word ("two"): often a count in the prose, not an argument.
    spelled: bool = False
    #: Every word capitalised and not just the sentence's first word: a name.
    name: bool = False
    #: A name that is not part of a longer name ("New York" in "New York City" is not).
    whole_name: bool = False
    #: A formula ("3x^2 + 2x - 1", written with ** for powers as Python does).
    formula: bool = False
    #: An identifier, path or address ("rs6034464", "2022/AL2562", "C:/data/cars.csv").
    code: bool = False
    #: Only repeats words of the function's own name or description.
    echo: bool = False
    #: A percentage read as a fraction ("5%" as 0.05).
    fraction: bool = False
    #: A place with its region after a comma ("Berlin, Germany").
    place: bool = False
    #: Which of the two numbers of a clock time it is ("6:30": 1 for 6, 2 for 30), else 0.
    piece: int = 0

    def overlaps(self, other: Mention) -> bool:
        if self.piece and other.piece and self.piece != other.piece:
            return False
        return not (self.last < other.first or other.last < self.first)


@dataclass
class Candidate:
    mention: Mention
    score: float


_CURRENCIES = {
    "usd": "USD", "dollar": "USD", "us dollar": "USD", "eur": "EUR", "euro": "EUR",
    "gbp": "GBP", "pound": "GBP", "british pound": "GBP", "pound sterling": "GBP",
    "jpy": "JPY", "yen": "JPY", "japanese yen": "JPY", "cny": "CNY", "yuan": "CNY",
    "rmb": "CNY", "chinese yuan": "CNY", "inr": "INR", "rupee": "INR", "indian rupee": "INR",
    "cad": "CAD", "canadian dollar": "CAD", "aud": "AUD", "australian dollar": "AUD",
    "chf": "CHF", "swiss franc": "CHF", "franc": "CHF", "mxn": "MXN", "peso": "MXN",
    "mexican peso": "MXN", "krw": "KRW", "won": "KRW", "rub": "RUB", "ruble": "RUB",
    "brl": "BRL", "real": "BRL", "sek": "SEK", "krona": "SEK", "nzd": "NZD",
}  # fmt: skip


def currency_code(text: str) -> str | None:
    """ISO code of a currency named in words ("US dollars" -> "USD", "euros" -> "EUR")."""
    key = re.sub(r"s$", "", text.lower().strip()).replace("u.s.", "us")
    return _CURRENCIES.get(key)


@dataclass
class ParameterChoice:
    """The best value for one parameter, and the candidates ranked (best first)."""

    name: str
    value: Any
    confident: bool
    ranked: list[Candidate] = field(default_factory=list)


def _stem(word: str) -> str:
    word = word.lower()
    return word[:5] if len(word) > 5 else word


def _key_words(text: str) -> list[str]:
    parts = re.split(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])", text)
    return [p.lower() for p in parts if len(p) > 1 and p.lower() not in _STOP]


@dataclass
class _Request:
    text: str
    words: list[str]
    starts: list[int]
    lower: list[str]
    #: Named entities by word range: their kind ("place", "person"...; see _ENTITY_KINDS).
    entities: dict[tuple[int, int], str] = field(default_factory=dict)
    #: Runs of adjectives and nouns by word range ("espresso beans", "living room lights").
    noun_runs: list[tuple[int, int]] = field(default_factory=list)
    #: A verb after "to" with its object, by word range ("to *water the plants* on Sunday").
    to_clauses: set[tuple[int, int]] = field(default_factory=set)

    @classmethod
    def of(cls, text: str) -> _Request:
        found = list(_WORD.finditer(text))
        words = [m.group(0) for m in found]
        return cls(
            text=text,
            words=words,
            starts=[m.start() for m in found],
            lower=[w.strip(_EDGE).lower() for w in words],
        )

    def word_at(self, char: int) -> int:
        index = 0
        for i, start in enumerate(self.starts):
            if start <= char:
                index = i
        return index


def _entity_mentions(
    request: _Request, spans: Sequence[tuple[int, int, str]], strings: Sequence[Mention]
) -> list[Mention]:
    """Records the entities on the request by word range, and gives those of a kind a value
    is often asked for that no other mention covers as candidates (a long name, one with
    punctuation inside)."""
    known = {(m.first, m.last) for m in strings}
    added: list[Mention] = []
    for start, end, label in spans:
        kind = _ENTITY_KINDS.get(label)
        if kind is None:
            continue
        first, last = request.word_at(start), request.word_at(max(start, end - 1))
        if request.lower[first] == "the" and first < last:
            first += 1  # "the Louvre": the name is Louvre
        request.entities[(first, last)] = kind
        if kind == "date" or (first, last) in known:
            continue
        span = " ".join(request.words[first : last + 1]).strip(_EDGE)
        span = re.sub(r"['\u2019]s$", "", span)
        if span:
            known.add((first, last))
            added.append(Mention(span, span, first, last, name=True, whole_name=True))
    return added


def mentions_in(text: str) -> tuple[list[Mention], list[Mention]]:
    """Numbers and string candidates (quoted strings, capitalised names, dates, word spans)
    that the request holds, with their word positions."""
    request = _Request.of(text)
    numbers: list[Mention] = []
    # A number in scientific notation ("2e-6") is a number, not the formula "2e - 6".
    formulas = [
        m.span()
        for m in _FORMULA.finditer(text)
        if re.search(r"[a-z]", m.group(0)) and not _SCIENTIFIC.fullmatch(m.group(0))
    ]
    for match in NUMBER.finditer(text):
        if any(a <= match.start() < b for a, b in formulas):
            continue  # a coefficient inside a formula is part of the formula
        value, _ = number_value(match)
        as_number = number_of(match)
        first = request.word_at(match.start())
        last = request.word_at(max(match.start(), match.end() - 1))
        written = match.group(0).strip()
        if match.group("short") and "$" not in written:
            written = written[:-1]  # a unit ("300K"), not a scale
        # The hours and the minutes of "6:30" are two values in one word.
        clock = first == last and re.fullmatch(r"\d{1,2}:\d{2}", request.lower[first] or "")
        piece = (1 if text[match.end() : match.end() + 1] == ":" else 2) if clock else 0
        numbers.append(Mention(as_number, written, first, last, piece=piece))
        if match.group("pct"):
            fraction = round(value / 100, 10)
            numbers.append(Mention(fraction, match.group(0).strip(), first, last, fraction=True))
    for i, word in enumerate(request.lower):
        if word in NUMBER_WORDS:
            numbers.append(Mention(NUMBER_WORDS[word], word, i, i, spelled=True))
        elif word in _PER_YEAR:  # "compounded monthly": 12 times a year
            numbers.append(Mention(_PER_YEAR[word], word, i, i))
        elif word in ("pi", "\u03c0"):  # "from 0 to 2 pi": 6.2832
            before = [m for m in numbers if m.last == i - 1 and not m.fraction]
            factor = float(before[-1].value) if before else 1.0
            numbers = [m for m in numbers if m not in before]
            first = before[-1].first if before else i
            written = f"{before[-1].text} {word}" if before else word
            numbers.append(Mention(round(factor * math.pi, 4), written, first, i))
        elif word == "rest" and i and request.lower[i - 1] in ("from", "at"):
            numbers.append(Mention(0, "rest", i, i))  # "starts from rest": speed 0
        elif word in ("next", "coming", "following", "every") and _period_at(request, i + 1):
            # "the next month": 1 month; "duplicates every hour": once an hour
            numbers.append(Mention(1, word, i, i, spelled=True))
    strings: list[Mention] = []
    seen: set[tuple[str, int]] = set()

    def add(span: str, first: int, last: int, quoted: bool = False, place: bool = False) -> None:
        span = span.strip(_EDGE) if not quoted else span.strip()
        if not quoted:
            span = re.sub(r"['\u2019]s$", "", span)  # "Van Gogh's painting": the name is Van Gogh
            if _CUT_QUOTE.search(span):
                return  # "named 'dataController": a span that cuts a quoted value in two
        if span and (span, first) not in seen and len(span) <= 200:
            seen.add((span, first))
            name = _is_name(request, first, last)
            whole = name and _is_whole_name(request, first, last)
            code = first == last and _CODE.fullmatch(span) is not None
            strings.append(
                Mention(
                    span,
                    span,
                    first,
                    last,
                    quoted,
                    name=name,
                    whole_name=whole,
                    code=code,
                    place=place,
                )
            )

    for match in _QUOTED.finditer(text):
        first = request.word_at(match.start())
        add(match.group(1), first, request.word_at(match.end() - 1), quoted=True)
    for match in _FORMULA.finditer(text):
        formula = re.sub(r"^[a-z](?:\([a-z]\))?\s*=\s*", "", match.group(0).strip(" .,;"))
        if any(c.isdigit() for c in formula) and re.search(r"[a-z]", formula):
            first, last = request.word_at(match.start()), request.word_at(match.end() - 1)
            strings.append(Mention(formula.replace("^", "**"), formula, first, last, formula=True))
    for match in DATES.finditer(text):
        add(match.group(0), request.word_at(match.start()), request.word_at(match.end() - 1))
    n = len(request.words)
    for i in range(n):
        for j in range(i, min(n, i + 6)):
            words = request.words[i : j + 1]
            if _place_pair(request, i, j):
                add(" ".join(words), i, j, place=True)  # "Berlin, Germany": one place
                continue
            if any(
                w.endswith((".", "?", "!", ";", ",")) and not _abbreviation(w) for w in words[:-1]
            ):
                break  # crosses a clause
            head, tail = request.lower[i], request.lower[j]
            if not head or not tail or tail in _STOP:
                continue
            if head in _STOP and not request.words[i][:1].isupper():
                continue
            inner_number = any(NUMBER.fullmatch(w.strip(_EDGE)) for w in words[1:])
            if j > i and inner_number and not _is_name(request, i, j):
                continue  # "A by 10%": the number is a value of its own
            add(" ".join(words), i, j)
    # "gas-powered", "plant-based": the first part names the kind.
    for i, word in enumerate(request.lower):
        compound = _KIND_COMPOUND.fullmatch(word)
        if compound and compound.group(1) not in _STOP:
            add(compound.group(1), i, i)
    # Part of a short quoted value ("Roe" of 'Roe v. Wade') is not a value of its own.
    quotes = [m for m in strings if m.quoted and len(m.text.split()) <= 6]
    strings = [
        m
        for m in strings
        if m.quoted or not any(q.first <= m.first and m.last <= q.last for q in quotes)
    ]
    return numbers, strings


_EXAMPLES = re.compile(
    r"\b(?:e\.g\.|eg\.|for example|such as|for instance|like)[:,]?\s+([^.;()]*)", re.I
)


def _is_example(param: _Param, text: str) -> bool:
    """The mention is one of the examples the parameter's description gives ("Type of
    cuisine, e.g. Italian, Japanese" for "an Italian restaurant")."""
    description = str(param.schema.get("description", ""))
    low = text.lower()
    for match in _EXAMPLES.finditer(description):
        examples = re.split(r"\s*,\s*|\s+or\s+|\s+and\s+", match.group(1).lower())
        if low in (e.strip(" '\"") for e in examples):
            return True
    return False


_KIND_COMPOUND = re.compile(r"([a-z]{2,})-([a-z]+ed)")
#: Name words of a parameter that asks for a kind of something ("vehicle_type").
_KIND_WORDS = frozenset({"type", "kind", "category", "class", "sort"})


def _kind_of(request: _Request, param: _Param, mention: Mention) -> bool:
    """The mention says which kind of the thing a kind parameter is about: it stands just
    before that thing ("a gas-powered vehicle" and "renewable energy" for vehicle_type and
    energy_type) or is the first part of it ("gas-fueled" for fuel_type)."""
    if not any(k in _KIND_WORDS for k in param.name_keys) or mention.quoted:
        return False
    things = [k for k in param.name_keys if k not in _KIND_WORDS]
    if not things or (mention.first != mention.last and not mention.name):
        return False
    word = request.lower[mention.last]
    compound = _KIND_COMPOUND.fullmatch(word)
    if compound and mention.text.lower() == word:
        return False  # the whole of "gas-powered" is not the kind; "gas" is
    if compound and any(_same_word(compound.group(2), t) for t in things):
        return True
    following = request.lower[mention.last + 1 : mention.last + 2]
    return bool(following) and any(_same_word(following[0], t) for t in things)


_REGION_PARAM = re.compile(r"(?:^|_)(?:state|country|region|province)(?:_?(?:name|code))?$", re.I)


def _place_pair(request: _Request, first: int, last: int) -> bool:
    """Words ``first..last`` are a capitalised place, a comma, then a region that ends at
    ``last``: "San Francisco, California", "Portland, OR"."""
    words = request.words
    for comma in range(first, last):
        if words[comma].endswith(","):
            before = [w.strip(_EDGE) for w in words[first : comma + 1]]
            return (
                all(w[:1].isupper() for w in before)
                and not any(w.endswith((".", "?", "!", ";", ",")) for w in words[first:comma])
                and region_words(words, comma + 1) == last - comma
            )
    return False


_CONNECTORS = frozenset({"of", "de", "la", "le", "the", "du", "van", "von", "del", "v.", "vs."})


def _is_name(request: _Request, first: int, last: int) -> bool:
    """Every word capitalised (connectors aside), and not only because a sentence starts."""
    words = [w.strip(_EDGE) for w in request.words[first : last + 1]]
    if not words or not words[0][:1].isupper() or not words[-1][:1].isupper():
        return False
    if not all(w[:1].isupper() or w[:1].isdigit() or w.lower() in _CONNECTORS for w in words):
        return False
    sentence_start = first == 0 or request.words[first - 1].endswith((".", "?", "!", ":"))
    if sentence_start and words[0].lower() in _IMPERATIVES:
        return False  # "Add Jane Doe ...": the name is Jane Doe
    return not sentence_start or (len(words) > 1 and words[1][:1].isupper())


#: Verbs that open a request ("Add Jane Doe to ...", "Call Mary"): capitalised because a
#: sentence starts, never the first word of a name.
_IMPERATIVES = frozenset(
    re.findall(
        r"\S+",
        "add book buy call cancel check close create delete email file find get give invite "
        "let list log look make mark message open order play put record remind reserve "
        "schedule search send set show start stop switch tell text track turn unlock lock "
        "update write",
    )
)


def _is_whole_name(request: _Request, first: int, last: int) -> bool:
    """A name that does not go on with another capitalised word on either side."""

    def capital(i: int) -> bool:
        return 0 <= i < len(request.words) and request.words[i][:1].isupper()

    def joined(i: int) -> bool:  # "of" between capitals joins a name: "Museum of Modern Art"
        return (
            0 <= i < len(request.words)
            and request.lower[i] in _CONNECTORS
            and not request.words[i].endswith((",", ".", ":", ";"))
        )

    before = capital(first - 1) and not request.words[first - 1].endswith((",", ".", ":", ";"))
    after = capital(last + 1) and not request.words[last].endswith((",", ".", ":", ";", "?"))
    before = before or (joined(first - 1) and capital(first - 2))
    after = after or (
        joined(last + 1) and capital(last + 2) and not request.words[last].endswith((",", "."))
    )
    return not before and not after


def _same_word(word: str, key: str) -> bool:
    """A request word that stands for a key word: the same stem, or an abbreviation of
    at least three letters ("atm" for "atmospheric")."""
    if not word or not key:
        return False
    if _stem(word) == _stem(key):
        return True
    short, long = sorted((word, key), key=len)
    return len(short) >= 3 and long.startswith(short)


_ABBREVIATIONS = frozenset(
    {
        "mr.",
        "mrs.",
        "ms.",
        "dr.",
        "st.",
        "jr.",
        "sr.",
        "prof.",
        "inc.",
        "ltd.",
        "co.",
        "corp.",
        "v.",
        "vs.",
        "mt.",
    }
)


def _abbreviation(word: str) -> bool:
    """ "Mr.", "Inc.", "U.S.", "D.C.": a full stop that does not end a sentence."""
    low = word.lower()
    return low in _ABBREVIATIONS or re.fullmatch(r"(?:[a-z]\.){2,}", low) is not None


def _near(
    request: _Request, mention: Mention, keys: Sequence[str], before: int, after: int
) -> float:
    """Evidence that ``keys`` label the mention: for each key, 1/distance of its nearest
    occurrence within ``before`` words before (or, counting half, ``after`` words after)
    the mention, summed over keys."""
    total = 0.0
    lo = max(0, mention.first - before)
    hi = min(len(request.lower), mention.last + after + 1)
    for key in dict.fromkeys(keys):
        best = 0.0
        for i in range(lo, hi):
            if mention.first <= i <= mention.last or not _same_word(request.lower[i], key):
                continue
            if i < mention.first:
                best = max(best, 1.0 / (mention.first - i))
            else:
                best = max(best, 0.5 / (i - mention.last))
        total += best
    return total


def _counts_following(request: _Request, mention: Mention) -> bool:
    """A spelled number followed by a plural noun and by at least that many numbers."""
    following = request.lower[mention.last + 1 : mention.last + 2]
    if not following or not following[0].endswith("s"):
        return False
    rest = " ".join(request.words[mention.last + 1 :])
    return len(NUMBER.findall(rest)) >= float(mention.value)


def _preposition(request: _Request, mention: Mention) -> str:
    return request.lower[mention.first - 1] if mention.first > 0 else ""


@dataclass
class _Param:
    name: str
    schema: Mapping[str, Any]
    kind: str
    name_keys: list[str]
    desc_keys: list[str]
    required: bool

    @property
    def is_currency(self) -> bool:
        return any(k.startswith("curr") for k in self.name_keys)

    @property
    def is_name(self) -> bool:
        return any(k.startswith(n) or n.startswith(k) for k in self.name_keys for n in _NAME_PARAMS)


def _kind(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return str(kind)


def _param(name: str, schema: Mapping[str, Any], required: bool) -> _Param:
    description = str(schema.get("description", "")).split(". ")[0]
    name_keys = _key_words(name)
    desc_keys = [w for w in _key_words(description) if w not in name_keys][:8]
    return _Param(name, schema, _kind(schema), name_keys, desc_keys, required)


_MONEY_KEYS = (
    "revenue", "amount", "price", "cost", "income", "salary", "budget", "sales", "profit",
    "capital", "investment", "principal", "loan", "payment", "deposit", "value", "fee", "balance",
)  # fmt: skip
_MONEY = re.compile(r"[$€£]|\b(?:dollars?|euros?|pounds?|usd|eur|gbp)\b", re.IGNORECASE)


def fit_features(
    request: _Request, param: _Param, mention: Mention, meaning: float = 0.0
) -> dict[str, float]:
    """What speaks for (or against) a mention filling a parameter, as named features; the
    learned weights (:mod:`.argument_weights`) turn them into a score. ``meaning`` is the
    encoder's similarity with the parameter's name and description, when known: of the
    mention for a string, of the word a number counts ("3 *people*") for a number."""
    numeric = param.kind in ("integer", "number")
    kind = "number" if numeric else "string"
    features: dict[str, float] = {
        f"{kind}:near_name": _near(request, mention, param.name_keys, 5, 3),
        f"{kind}:near_description": _near(request, mention, param.desc_keys, 5, 3),
    }
    if meaning:
        # For a number, how close the word it counts is to the parameter ("3 *people*" for
        # passengers); for a string, how close the string itself is.
        features["number:unit_meaning" if numeric else "meaning"] = meaning
    # A whole noun run, or its start ("living room" of "living room lights").
    whole_run = False
    if not numeric:
        features.update(_entity_features(request, param, mention))
        if not mention.quoted:
            runs = _noun_run_features(request, mention)
            features.update(runs)
            whole_run = "noun_run" in runs or "noun_run_start" in runs
    prep = _preposition(request, mention)
    cues = _ROLE_CUES.get(prep, ())
    if cues and any(k.startswith(c) or c.startswith(k) for k in param.name_keys for c in cues):
        features[f"{kind}:role_word"] = 1.0
    if numeric:
        if mention.fraction:
            # "5%" is 0.05 to a rate, 5 to a parameter that asks for a percentage.
            wants_percent = any(k.startswith("percent") for k in param.name_keys + param.desc_keys)
            fraction = "percent_as_fraction" + ("_for_percent" if wants_percent else "")
            features[fraction] = 1.0
        year_or_money = _year_or_money(param, mention)
        if year_or_money:
            features[year_or_money] = 1.0
        following = request.lower[mention.last + 1 : mention.last + 2]
        unit = bool(following) and any(_same_word(following[0], k) for k in param.name_keys)
        if unit:
            features["number:names_its_unit"] = 1.0  # "for 2 *guests*", "4 *nights*"
        if mention.spelled:
            if _counts_following(request, mention):
                features["spelled_count_of_values"] = 1.0  # "two numbers, 36 and 48"
            elif not unit:  # "three days" for days is a value, not prose
                features["spelled_in_prose"] = 1.0
        if mention.text in _PER_YEAR:  # "monthly" is 12 only to a compounding frequency
            keys = param.name_keys + param.desc_keys
            frequency = param.name == "n" or any(
                k.startswith(("compound", "frequen")) or k in ("per", "periods", "times")
                for k in keys
            )
            features["per_year_for_frequency" if frequency else "per_year_for_other"] = 1.0
        return features
    text = mention.text
    if param.is_currency:
        features["currency_code" if currency_code(text) else "no_currency_for_currency"] = 1.0
    if mention.formula:
        wants = bool(param.name_keys) and param.name_keys[-1] in _FORMULA_PARAMS
        features["formula_for_formula" if wants else "formula_for_other"] = 1.0
    if mention.echo:
        features["echoes_function"] = 1.0
    if _is_example(param, text):
        features["description_example"] = 1.0
    if _kind_of(request, param, mention):
        features["says_which_kind"] = 1.0
    if mention.code and any(k in _CODE_PARAMS for k in param.name_keys):
        features["code_for_code"] = 1.0
    if mention.quoted:
        features["quoted"] = 1.0
    if param.is_name:
        features["name_for_name" if mention.name else "plain_for_name"] = 1.0
    if mention.name and not mention.whole_name and not mention.quoted:
        features["part_of_name"] = 1.0  # "Yellowstone National" of "... Park"
    if calendar_name(param.name, text) == text:
        features["month_or_day_name"] = 1.0  # "in December" for a month
    if DATES.fullmatch(text):
        is_date = any(k in ("date", "day", "when", "time", "start", "end") for k in param.name_keys)
        if not is_date:
            features["date_for_other"] = 1.0
        else:
            features["date_for_date" if parse_date(text) else "date_words_for_date"] = 1.0
    if not mention.name and any(
        _stem(w) in {_stem(k) for k in param.name_keys} for w in text.lower().split()
    ):
        # A label next to the value ("base 10"), not the value; unless it is the last word
        # of a noun run the mention is: "the *back door*" for a door, "*living room*" a room.
        last = _stem(text.lower().split()[-1]) in {_stem(k) for k in param.name_keys}
        named = last and whole_run and len(text.split()) > 1
        features["ends_in_parameter_name" if named else "holds_parameter_name"] = 1.0
    words = len(text.split())
    if not mention.quoted:
        # Whole names ("New York City") beat their parts; long word salads lose, but the
        # words of one noun run ("printer paper") are weighed apart from them.
        if mention.name:
            features["name_words"] = min(words, 3)
        elif (mention.first, mention.last) in request.to_clauses:
            features["to_clause"] = 1.0  # "remind me to *water the plants*"
        elif words > 1:
            features["noun_run_words" if whole_run else "extra_plain_words"] = words - 1
        if _measure_word(request, mention):
            features["measure_word"] = 1.0
    return features


def _measure_word(request: _Request, mention: Mention) -> bool:
    """A single word between a number and "of" ("2 *bags* of beans", "3 *cups* of flour"):
    it measures the thing named after it; it is seldom the value itself."""
    i = mention.first
    if i != mention.last or i == 0 or i + 1 >= len(request.lower):
        return False
    before = request.lower[i - 1]
    counted = NUMBER.fullmatch(before) is not None or before in NUMBER_WORDS
    return counted and request.lower[i + 1] == "of"


def _fit(request: _Request, param: _Param, mention: Mention, meaning: float = 0.0) -> float:
    """How well a mention fits a parameter (higher is better)."""
    return float(ARGUMENT_WEIGHTS.score(fit_features(request, param, mention, meaning)))


def _calendar_word_for_other(param: _Param, mention: Mention) -> bool:
    """A bare month or weekday name ("in April") is a value only for a parameter about
    dates: it is no city, name or topic."""
    if param.kind != "string" or mention.quoted:
        return False
    if not any(pattern.fullmatch(mention.text) for pattern in _CALENDAR.values()):
        return False
    dated = ("date", "day", "month", "when", "time", "start", "end", "period", "season")
    return not any(k.startswith(dated) for k in param.name_keys + param.desc_keys)


def _year_or_money(param: _Param, mention: Mention) -> str | None:
    """Years go to year parameters and sums of money to amounts, not the other way round
    ("revenues of $1M in 2019" for year1 and year1_revenue)."""
    money = _MONEY.search(mention.text) is not None
    year_like = isinstance(mention.value, int) and 1000 <= mention.value <= 2999 and not money
    wants_money = any(k.startswith(m) for k in param.name_keys for m in _MONEY_KEYS)
    wants_year = any(k.startswith("year") for k in param.name_keys) and not wants_money
    if wants_year:
        return "year_for_year" if year_like else "money_for_year" if money else None
    if wants_money:
        return "money_for_money" if money else "year_for_money" if year_like else None
    return None


_NOTHING = Mention(None, "", -1, -1)


@dataclass(frozen=True)
class CandidateGroup:
    """One parameter's candidates as the reader scored them: each option's value in the
    parameter's form (``None``: left out) and its features."""

    function: str
    parameter: str
    options: list[tuple[Any, dict[str, float]]]


_T = TypeVar("_T")
_RECORDED: ContextVar[list[CandidateGroup] | None] = ContextVar("_RECORDED", default=None)
_CHOSEN: ContextVar[list[float] | None] = ContextVar("_CHOSEN", default=None)


@contextlib.contextmanager
def _collected(into: ContextVar[list[_T] | None]) -> Iterator[list[_T]]:
    items: list[_T] = []
    token = into.set(items)
    try:
        yield items
    finally:
        into.reset(token)


def chosen_probabilities() -> contextlib.AbstractContextManager[list[float]]:
    """Collects, for every parameter the reader settles inside the block, the probability
    that the value it chose (or leaving the parameter out) is right: a softmax over the
    parameter's options under the learned weights."""
    return _collected(_CHOSEN)


def recorded_candidates() -> contextlib.AbstractContextManager[list[CandidateGroup]]:
    """Collects every parameter's candidates that the reader scores inside the block: the
    rows the argument weights are fitted on."""
    return _collected(_RECORDED)


def _assign(
    request: _Request,
    params: list[_Param],
    mentions: list[Mention],
    meaning: Mapping[tuple[str, str], float] | None = None,
    function: str = "",
) -> dict[str, list[Candidate]]:
    """Ranked candidates per parameter; the first of each is the best joint assignment."""
    ranked: dict[str, list[Candidate]] = {}
    scores: dict[tuple[int, int], float] = {}
    for p, param in enumerate(params):
        row: list[Candidate] = []
        for m, mention in enumerate(mentions):
            if param.kind == "integer" and not float(mention.value).is_integer():
                continue
            if _calendar_word_for_other(param, mention):
                continue
            similar = meaning.get((param.name, mention.text), 0.0) if meaning else 0.0
            score = _fit(request, param, mention, similar)
            scores[(p, m)] = score
            row.append(Candidate(mention, score))
        row.sort(key=lambda c: -c.score)
        ranked[param.name] = row
    # More numbers than the required numeric parameters take: an optional one is given.
    spare = len(mentions) > sum(1 for p in params if p.required and p.kind in _NUMERIC)
    omitted = [_omission_score(request, param, spare) for param in params]
    groups = _RECORDED.get()
    if groups is not None:
        for p, param in enumerate(params):
            options = [(None, omission_features(request, param, spare))]
            for m, mention in enumerate(mentions):
                if (p, m) in scores:
                    similar = meaning.get((param.name, mention.text), 0.0) if meaning else 0.0
                    features = fit_features(request, param, mention, similar)
                    options.append((_as_parameter_value(param, mention.value), features))
            groups.append(CandidateGroup(function, param.name, options))
    best = _best_assignment(params, mentions, scores, omitted)
    chosen_record = _CHOSEN.get()
    if chosen_record is not None:
        for p in range(len(params)):
            nothing = omitted[p]
            scored = [scores[(p, m)] for m in range(len(mentions)) if (p, m) in scores]
            picked = scores[(p, best[p])] if p in best else nothing
            chosen_record.append(share_of(picked, [nothing, *scored]))
    for p, param in enumerate(params):
        if p not in best:
            ranked[param.name] = [Candidate(_NOTHING, 0.0), *ranked[param.name]]
            continue
        chosen = next(c for c in ranked[param.name] if c.mention is mentions[best[p]])
        ranked[param.name].remove(chosen)
        ranked[param.name].insert(0, chosen)
    return ranked


_NUMERIC = ("integer", "number")


def omission_features(request: _Request, param: _Param, spare: bool = False) -> dict[str, float]:
    """What speaks for or against leaving a parameter out: whether it is required, whether
    the request uses a word of its name ("for 2 *guests*"), whether it has a default, and
    for an optional number whether the request holds more numbers than the required ones
    take (``spare``)."""
    features = {"left_out_" + ("required" if param.required else "optional"): 1.0}
    if any(_same_word(word, key) for key in param.name_keys for word in request.lower):
        features["omitted_though_named"] = 1.0
    if "default" in param.schema:
        features["omitted_with_default"] = 1.0
    if spare and not param.required and param.kind in _NUMERIC:
        features["omitted_with_numbers_to_spare"] = 1.0  # "... with a dividend of $2"
    return features


def _omission_score(request: _Request, param: _Param, spare: bool = False) -> float:
    """The score of leaving ``param`` out, on the scale of its candidates' scores (the
    ``left_out_*`` features weigh through :meth:`ArgumentWeights.left_out`)."""
    features = omission_features(request, param, spare)
    return ARGUMENT_WEIGHTS.left_out(param.required) + ARGUMENT_WEIGHTS.score(features)


def _best_assignment(
    params: list[_Param],
    mentions: list[Mention],
    scores: dict[tuple[int, int], float],
    omitted: Sequence[float],
) -> dict[int, int]:
    """Parameter -> mention, maximising the total score with no mention (or overlapping pair of
    mentions) used twice. Exhaustive for small problems, greedy beyond."""
    options = [
        sorted(
            (m for m in range(len(mentions)) if (p, m) in scores), key=lambda m: -scores[(p, m)]
        )[:6]
        for p in range(len(params))
    ]
    total_combinations = 1
    for o in options:
        total_combinations *= len(o) + 1
    if total_combinations <= 20000:
        order = ARGUMENT_WEIGHTS.order
        best: dict[int, int] = {}
        best_score = float("-inf")
        for combo in itertools.product(*[[*o, -1] for o in options]):
            used = [mentions[m] for m in combo if m >= 0]
            if any(a.overlaps(b) for a, b in itertools.combinations(used, 2)):
                continue
            total = sum(scores[(p, m)] if m >= 0 else omitted[p] for p, m in enumerate(combo))
            # Requests tend to give values in the order the function lists its parameters.
            placed = [(p, mentions[m].first) for p, m in enumerate(combo) if m >= 0]
            for (p1, w1), (p2, w2) in itertools.combinations(placed, 2):
                total += order if (p1 < p2) == (w1 < w2) else -order
            if total > best_score:
                best_score = total
                best = {p: m for p, m in enumerate(combo) if m >= 0}
        return best
    chosen: dict[int, int] = {}
    pairs = sorted(scores, key=lambda pm: -scores[pm])
    for p, m in pairs:
        if p in chosen or any(mentions[m].overlaps(mentions[o]) for o in chosen.values()):
            continue
        if scores[(p, m)] > omitted[p]:
            chosen[p] = m
    return chosen


def assign_arguments(
    text: str,
    parameters: Mapping[str, Mapping[str, Any]],
    names: Sequence[str],
    required: Sequence[str] = (),
    *,
    margin: float = 0.5,
    similarity: Similarity | None = None,
    function_text: str = "",
    entities: Entities | None = None,
) -> dict[str, ParameterChoice]:
    """Values for the scalar parameters ``names`` (numbers and strings without an enum), read
    from ``text``. A choice is ``confident`` when its score beats the runner-up by ``margin``.
    ``similarity`` (parameter descriptions x candidate texts -> cosine matrix, from a sentence
    encoder) helps tell which string fits which parameter. Lower-case words that only repeat
    ``function_text`` (the function's name and description: "population" for
    ``estimate_population``) describe the call rather than fill it."""
    request = _Request.of(text)
    function = function_text.split(" ")[0]
    numbers, strings = mentions_in(text)
    if entities is not None and request.words:
        strings += _entity_mentions(request, entities(text), strings)
        runs = getattr(entities, "noun_runs", None)
        if runs is not None:
            request.noun_runs = [
                (request.word_at(start), request.word_at(max(start, end - 1)))
                for start, end in runs(text)
            ]
        clauses = getattr(entities, "to_clauses", None)
        if clauses is not None:
            request.to_clauses = {
                (request.word_at(start), request.word_at(max(start, end - 1)))
                for start, end in clauses(text)
            }
    if any(_REGION_PARAM.search(name) for name in parameters):
        # A function that takes the region apart ("city", "state") gets the two halves.
        strings = [m for m in strings if not m.place]
    params = [_param(n, parameters[n], n in required) for n in names]
    numeric = [p for p in params if p.kind in ("integer", "number")]
    textual = [p for p in params if p.kind == "string"]
    ranked: dict[str, list[Candidate]] = {}
    if numeric:
        counted = _counted_words(request, numbers, numeric, similarity)
        ranked.update(_assign(request, numeric, numbers, counted, function))
    if textual:
        taken = [c[0].mention for c in ranked.values() if c]
        free = [s for s in strings if not any(s.overlaps(t) for t in taken)] or strings
        # The name of another parameter ("height" in "base of 10 units and height of 5")
        # labels a value; it is not one. (A lone string parameter may take its own name:
        # "units" for ``unit``.)
        labels = {_stem(k) for n in parameters for k in _key_words(n)}
        if len(textual) == 1:
            labels -= {_stem(k) for k in textual[0].name_keys}
        free = [
            m
            for m in free
            if m.quoted or m.name or not all(_stem(w) in labels for w in m.text.lower().split())
        ]
        # The function's own name, even quoted ("using the 'calculate_velocity' function"),
        # says which call to make; it is no value of the call.
        free = [m for m in free if m.text != function]
        function_words = {_stem(w) for w in _key_words(function_text)}
        # A capitalised word the function is named after ("UV" for uv_index) is the topic,
        # not a value.
        name_words = {_stem(w) for w in _key_words(function_text.split(" ")[0])}

        def echoes(m: Mention) -> bool:
            keys = _key_words(m.text)
            if m.name and not m.quoted and m.first == m.last and keys:
                return all(_stem(w) in name_words for w in keys)
            plain = not (m.quoted or m.name or m.code or m.formula)
            return plain and all(_stem(w) in function_words for w in keys)

        if function_words:
            free = [replace(m, echo=True) if echoes(m) else m for m in free]
        free = _without_leading_action(request, free, name_words)
        meaning: dict[tuple[str, str], float] = {}
        if similarity is not None and free:
            texts = list(dict.fromkeys(m.text for m in free))
            described = [
                f"{' '.join(p.name_keys)}: {p.schema.get('description', '')}"[:300] for p in textual
            ]
            matrix = similarity(described, texts)
            for i, param in enumerate(textual):
                for j, candidate in enumerate(texts):
                    meaning[(param.name, candidate)] = float(matrix[i][j])
        ranked.update(_assign(request, textual, free, meaning, function))
    result: dict[str, ParameterChoice] = {}
    for param in params:
        row = ranked.get(param.name, [])
        if not row:
            result[param.name] = ParameterChoice(param.name, None, False, [])
            continue
        top = row[0]
        if top.mention is _NOTHING:
            result[param.name] = ParameterChoice(param.name, None, not param.required, row[1:])
            continue
        runner = max(
            (c.score for c in row[1:] if c.mention.value != top.mention.value), default=None
        )
        confident = runner is None or top.score - runner >= margin
        value = _as_parameter_value(param, top.mention.value)
        result[param.name] = ParameterChoice(param.name, value, confident, row)
    return result


def _without_leading_action(
    request: _Request, mentions: list[Mention], name_words: set[str]
) -> list[Mention]:
    """The request's first word, when it is a word of the function's name ("Book" for
    book_restaurant), is the action, capitalised only because it starts the request: a name
    does not begin with it ("Book *Chez Panisse* tonight"), and the rest is the whole name."""
    if not request.lower or _stem(request.lower[0]) not in name_words:
        return mentions
    dropped = {m.last for m in mentions if m.first == 0 and m.last > 0}
    return [
        replace(m, whole_name=True) if m.name and m.first == 1 and m.last in dropped else m
        for m in mentions
        if not (m.first == 0 and m.last > 0)
    ]


def _counted_words(
    request: _Request,
    numbers: Sequence[Mention],
    params: Sequence[_Param],
    similarity: Similarity | None,
) -> dict[tuple[str, str], float]:
    """For each number followed by a word ("3 *people*", "4 *packs*"), how close in meaning
    that word is to each numeric parameter's name and description (one encoder call)."""
    following: dict[str, str] = {}
    for mention in numbers:
        after = request.lower[mention.last + 1 : mention.last + 2]
        if after and after[0].isalpha() and after[0] not in STOP_WORDS:
            following[mention.text] = after[0]
    if similarity is None or not following:
        return {}
    words = list(dict.fromkeys(following.values()))
    described = [
        f"{' '.join(p.name_keys)}: {p.schema.get('description', '')}"[:300] for p in params
    ]
    matrix = similarity(described, words)
    column = {word: j for j, word in enumerate(words)}
    return {
        (param.name, text): float(matrix[i][column[word]])
        for i, param in enumerate(params)
        for text, word in following.items()
    }


def _as_parameter_value(param: _Param, value: Any) -> Any:
    """A mention's value in the form the parameter takes: a float for a number, an ISO code
    for a currency, a date in the form the description asks for."""
    if param.kind == "number" and isinstance(value, int):
        return float(value)
    if param.kind != "string":
        return value
    value = str(value)
    if param.is_currency:
        value = currency_code(value) or value
    fmt = date_format(str(param.schema.get("description", "")))
    date = parse_date(value) if fmt else None
    return format_date(date, fmt) if fmt and date else value


# -- lists ------------------------------------------------------------------------------

#: Numbers grouped in parentheses: "(45, 60)", "(40.7128, -74.0060)".
NUMBER_GROUPS = re.compile(r"\((?:\s*(?:e\.g\.|i\.e\.),?)?\s*-?\d[\d.]*(?:\s*,\s*-?\d[\d.]*)+\s*\)")
BRACKETS = re.compile(r"\[[^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*\]")
_LIST_ITEM_SEP = re.compile(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|&)\s+")
_QUOTE_LIST = re.compile(
    r"[\"'\u201c\u2018][^\"'\u201d\u2019]{1,80}[\"'\u201d\u2019]"
    r"(?:(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|&)\s+)"
    r"[\"'\u201c\u2018][^\"'\u201d\u2019]{1,80}[\"'\u201d\u2019])+"
)
_CAP_ITEM = r"[A-Z0-9&][\w'\u2019.&-]*(?:\s+(?:of\s+|de\s+)?[A-Z0-9&][\w'\u2019.&-]*){0,3}"
_NAME_LIST = re.compile(
    rf"(?<![\w.]){_CAP_ITEM}(?:(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|&)\s+){_CAP_ITEM})+"
)
_WORD_LIST = re.compile(
    r"(?<![\w.])[a-z][\w-]*(?:\s+[a-z][\w-]*)?(?:\s*,\s*[a-z][\w-]*(?:\s+[a-z][\w-]*)?)+"
    r"\s*,?\s+(?:and|or)\s+[a-z][\w-]*(?:\s+[a-z][\w-]*)?"
)


_RUN_GAP = re.compile(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+")


def _number_end(text: str, start: int) -> int:
    match = NUMBER.match(text, start)
    return match.end() if match else start


def _parse_bracket(text: str) -> list[Any] | None:
    """A bracketed list written in the request ("[1, 2, 3]", "[[10, 20], [30, 40]]")."""
    import json

    try:
        value = json.loads(text.replace("'", '"'))
    except ValueError:
        inner = text.strip("[] ")
        items = [i.strip().strip("\"'") for i in inner.split(",") if i.strip()]
        numbers = [_as_number(i) for i in items]
        return numbers if all(n is not None for n in numbers) else items or None
    return value if isinstance(value, list) else None


def _as_number(text: str) -> int | float | None:
    try:
        value = float(text.replace("$", ""))
    except ValueError:
        return None
    return int(value) if value.is_integer() and "." not in text else value


def read_lists(
    text: str, parameters: Mapping[str, Mapping[str, Any]], names: Sequence[str]
) -> dict[str, list[Any]]:
    """Values of array parameters written as lists in the request: bracketed lists, quoted or
    capitalised names joined by commas and "and", or plain number lists. Lists are given to
    parameters in the order both appear; a parameter without a list is left out."""
    found: list[tuple[int, str, list[Any]]] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    for match in BRACKETS.finditer(text):
        items = _parse_bracket(match.group(0))
        if items:
            found.append((match.start(), "bracket", items))
            taken.append(match.span())
    for match in NUMBER_GROUPS.finditer(text):  # coordinates: "(40.7128, -74.0060)"
        if free(*match.span()):
            inner = re.sub(r"^\(\s*(?:e\.g\.|i\.e\.),?", "", match.group(0))
            items = _parse_bracket("[" + inner.strip("() ") + "]")
            if items:
                found.append((match.start(), "bracket", items))
                taken.append(match.span())
    for pattern, kind in ((_QUOTE_LIST, "names"), (_NAME_LIST, "names"), (_WORD_LIST, "words")):
        for match in pattern.finditer(text):
            if not free(*match.span()):
                continue
            items = [i.strip(_EDGE) for i in _LIST_ITEM_SEP.split(match.group(0))]
            items = [i for i in items if i]
            if all(_as_number(i) is not None for i in items):
                continue  # a list of numbers, read below
            if len(items) >= 2:
                found.append((match.start(), kind, items))
                taken.append(match.span())
    numbers = [(m.start(), number_of(m)) for m in NUMBER.finditer(text) if free(*m.span())]
    # A run of numbers joined by commas or "and" is one list ("85, 90, 88 and 92"), not the
    # numbers around it ("... and set bin range to 5"); without such a run, every number.
    runs: list[list[tuple[int, Any]]] = []
    for i, (start, value) in enumerate(numbers):
        gap = text[_number_end(text, numbers[i - 1][0]) : start] if i else ""
        if i and runs and _RUN_GAP.fullmatch(gap):
            runs[-1].append((start, value))
        else:
            runs.append([(start, value)])
    longest = max(runs, key=len, default=[])
    if len(longest) >= 3:
        found.append((longest[0][0], "numbers", [n for _, n in longest]))
    elif len(numbers) >= 3:
        found.append((numbers[0][0], "numbers", [n for _, n in numbers]))
    found.sort(key=lambda f: f[0])
    result: dict[str, list[Any]] = {}
    used: set[int] = set()
    for name in names:
        items_schema = parameters[name].get("items") or {}
        kind = _kind(items_schema) if items_schema else "string"
        for index, (_, source, items) in enumerate(found):
            if index in used:
                continue
            numeric = all(isinstance(i, (int, float, list)) for i in items)
            if kind in ("integer", "number", "array") and not numeric:
                continue
            if kind == "string" and (
                numeric or (source == "bracket" and not all(isinstance(i, str) for i in items))
            ):
                continue
            if kind == "number":
                items = [float(i) if isinstance(i, int) else i for i in items]
            result[name] = items
            used.add(index)
            break
    # A list of text without a list of its own takes a pair ("uses chicken and mushrooms").
    pairs = [p for p in _word_pairs(text) if free(*p[0])]
    for name in names:
        items_schema = parameters[name].get("items") or {}
        if name in result or not pairs or items_schema.get("enum"):
            continue
        if (_kind(items_schema) if items_schema else "string") == "string":
            result[name] = pairs.pop(0)[1]
    return result


def _word_pairs(text: str) -> list[tuple[tuple[int, int], list[str]]]:
    """Two items joined by "and", each of the same number of words (at most two, none a
    stop word): "chicken and mushrooms", "engine size and fuel economy", "the S&P 500 and
    the Dow Jones". Each with its character span."""
    words = list(_WORD.finditer(text))
    lower = [w.group(0).strip(_EDGE).lower() for w in words]

    def plain(k: int) -> bool:
        return bool(lower[k]) and lower[k] not in _STOP and not NUMBER.fullmatch(lower[k])

    pairs = []
    for i, word in enumerate(lower):
        if word != "and" or not i or words[i - 1].group(0).endswith((",", ".", ";", ":", "?")):
            continue
        start = i + 2 if i + 1 < len(words) and lower[i + 1] == "the" else i + 1
        right: list[int] = []
        for k in range(start, min(start + 2, len(words))):
            if not plain(k) and not (right and lower[k].isdigit()):
                break
            right.append(k)
            if words[k].group(0).endswith((",", ".", ";", ":", "?", "!")):
                break
        size = len(right)
        left = list(range(i - size, i))
        if not size or left[0] < 0:
            continue
        if not all(plain(k) or (k > left[0] and lower[k].isdigit()) for k in left):
            continue
        if any(words[k].group(0).endswith((",", ".", ";", ":", "?", "!")) for k in left):
            continue
        items = [" ".join(words[k].group(0) for k in side).strip(_EDGE) for side in (left, right)]
        pairs.append(((words[left[0]].start(), words[right[-1]].end()), items))
    return pairs
