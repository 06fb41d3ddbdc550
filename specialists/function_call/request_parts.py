"""How a request divides into calls: the numbers it gives, its lists ("Paris, Rome and
Berlin", "USD to AUD and USD to CAD"), the parts that each ask for something of their own
("... Also, ...", "The first ..., the second ..."), and the versions of a request that keep one
call's share of its values.

The function_call specialist counts its calls and splits its request with these readers; they
look at the text alone, not at any function.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from orchestrator.specialists.function_call.arguments import PERIODS, STOP_WORDS
from orchestrator.specialists.function_call.numbers import (
    COUNT_WORDS,
    NUMBER,
    NUMBER_WORDS,
    number_of,
    number_value,
)
from orchestrator.specialists.function_call.places import region_words

__all__ = [
    "EDGE",
    "LIST_SEP",
    "NEXT_REQUEST",
    "NUM_LIST",
    "QUOTED",
    "WORD_LISTS",
    "has_value",
    "list_items",
    "name_lists",
    "names_in",
    "number_mentions",
    "numbers_in",
    "one_each",
    "ordinal_parts",
    "pair_lists",
]

_NEXT_PERIOD = re.compile(rf"\b(?:next|coming|following|every)\s+(?:{'|'.join(PERIODS)})\b", re.I)
QUOTED = re.compile(r"[\"'\u201c\u2018`]([^\"'\u201d\u2019`]{1,120})[\"'\u201d\u2019`]")
EDGE = " \t\n,.;:!?()[]{}\"'\u201c\u201d\u2018\u2019`"


def numbers_in(text: str) -> list[int | float]:
    """Numbers written in the text (:mod:`.numbers`: digits, number words and the words that
    count, "once", "the first")."""
    found: list[int | float] = []
    for match in NUMBER.finditer(text):
        found.append(number_of(match))
        if match.group("pct"):
            found.append(round(number_value(match)[0] / 100, 10))
    words = NUMBER_WORDS | COUNT_WORDS
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in words:
            found.append(words[word])
    if _NEXT_PERIOD.search(text):
        found.append(1)  # "for the next month"
    return list(dict.fromkeys(found))


# A comma between digits ("500,000") is a thousands separator, not a list separator.
_SEP = r"(?:\s*(?<!\d),\s*(?:and\s+|or\s+)?|\s*,(?!\d{3}\b)\s*(?:and\s+|or\s+)?|\s+(?:and|or|&)\s+)"
LIST_SEP = re.compile(_SEP)
_NUM = r"[-$€£]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?(?:\s?[a-zA-Z]{1,12}\b(?<!\band)(?<!\bor))?"
_QUOTE = r"[\"'\u201c\u2018][^\"'\u201d\u2019]{1,60}[\"'\u201d\u2019]"
NUM_LIST = re.compile(rf"(?<![\w.]){_NUM}(?:{_SEP}{_NUM})+")
_CAP = r"[A-Z][\w'\u2019.-]*(?:\s+[A-Z0-9][\w'\u2019.-]*){0,3}"
# Names joined by "and"/"or" (not "between A and B", and not "City, Country" pairs).
_NAME_LISTS = [
    re.compile(rf"(?<!between )(?<![\w.]){_CAP}(?:\s+(?:and|or)\s+{_CAP})+"),
    # "Paris, Rome and Berlin": commas count only in a list that ends with "and"/"or".
    re.compile(rf"(?<![\w.]){_CAP}(?:\s*,\s*{_CAP})+\s*,?\s+(?:and|or)\s+{_CAP}"),
    re.compile(rf"(?<![\w.]){_QUOTE}(?:{_SEP}{_QUOTE})+"),
]


_SENTENCE_START = re.compile(r"(?:^|[.?!:;\"\u201c(]\s*)$")


def names_in(text: str) -> list[re.Match[str]]:
    """Capitalised names in the text, except a sentence's first word ("Can you ...")."""
    found = []
    for match in re.finditer(rf"(?<![\w'\u2019.-]){_CAP}", text):
        words = match.group(0).split()
        if _SENTENCE_START.search(text[: match.start()]) and (
            len(words) == 1 or words[0].lower() in STOP_WORDS
        ):
            continue
        if all(w.lower() in STOP_WORDS for w in words):
            continue
        found.append(match)
    return found


# Lowercase items joined by commas and a final "and"/"or": "navy, purple and maroon".
WORD_LISTS = re.compile(
    r"(?<![\w.])[a-z][\w-]*(?:\s*,\s*[a-z][\w-]*)+\s*,?\s+(?:and|or)\s+[a-z][\w-]*(?![\w-])"
)
# Where a request goes on with another one.
NEXT_REQUEST = re.compile(
    r"(?<=[.?!])\s+(?=(?:also|and|plus|then|additionally|next|finally|lastly)\b)"
    r"|(?:\s*,\s*|\s+and\s+)(?:then\s+)?(?:also|additionally|as well as|plus)\b,?\s+"
    r"|,?\s+\band\s+(?=another\b)|,?\s+\band\s+then\b\s+"
    r"|,?\s+\band\s+(?=for\s+['\"\u201c\u2018A-Z])",  # "... and for 'Royal Hotel' in Paris"
    re.IGNORECASE,
)


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")
_ORDINAL_MARK = re.compile(
    r"(?:^|(?<=[.?!;,:])\s*|\s+(?:and|but|while|whereas|where|then|now|if|when)\s+)"
    r"(?:(?:in|for|at|on|with|now|then|finally|lastly|if|when),?\s+)?(?:consider\s+)?"
    r"(?:the|a)\s+(" + "|".join(_ORDINALS) + r")\b(?!\s+(?:time|of|and|to|one)\b)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.?!](?=\s|$)")


def ordinal_parts(text: str) -> list[str]:
    """One part per ordinal of a request that describes its cases in turn ("The first
    charge is 5 coulombs ... The second charge is 3 coulombs ..."); every part keeps the
    sentences that belong to no case ("The experiment is conducted in a vacuum."). Empty
    when the text does not name at least a second case."""
    marks = list(_ORDINAL_MARK.finditer(text))
    names = [m.group(1).lower() for m in marks]
    if "second" not in names:
        return []
    segments: dict[str, list[str]] = {}
    if "first" not in names:
        # "A car starts ... Now, consider a second car": the text before it is the first case.
        segments["first"] = [text[: marks[0].start()]]
        shared_before = ""
    else:
        shared_before = text[: marks[0].start()]
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        if i + 1 == len(marks):
            stop = _SENTENCE_END.search(text, mark.end())
            end = stop.end() if stop else len(text)
        segments.setdefault(names[i], []).append(text[mark.start() : end])
    shared_after = text[end:]
    order = [o for o in _ORDINALS if o in segments]
    if len(order) < 2 or order != list(_ORDINALS[: len(order)]):
        return []
    # Sentences without a case of their own come along with every case ("Both start from rest").
    before, after = shared_before.strip(), shared_after.strip()
    return [
        " ".join(p for p in (before, *(_clean_case(s) for s in segments[o]), after) if p)
        for o in order
    ]


def _clean_case(segment: str) -> str:
    return re.sub(r"^(?:and|but|while|whereas|where|then|if|when)\s+", "", segment.strip(" ,;"))


def has_value(text: str) -> bool:
    """A number, a quoted string or a capitalised word after the first."""
    words = text.split()[1:]
    return bool(numbers_in(text) or QUOTED.search(text) or any(w[:1].isupper() for w in words))


def name_lists(text: str) -> list[re.Match[str]]:
    """Lists of names or quoted values, each from its start: not the tail of a longer name
    ("York City and Los Angeles"), and not "between A and B"."""
    found = []
    for pattern in _NAME_LISTS:
        for match in pattern.finditer(text):
            before = text[: match.start()].rstrip().split()
            previous = before[-1] if before else ""
            if previous[:1].isupper() and not previous.endswith((".", ",", ":", ";", "?", "!")):
                continue
            if previous.lower() == "between":
                continue
            found.append(match)
    return found


_CAPITALISED = r"[A-Z][\w.'-]*(?:\s+(?:of\s+)?[A-Z0-9][\w.'-]*){0,4}"
_TIME = r"\d{1,2}(?::\d{2})?\s?(?:am|pm|AM|PM)\b"
_AMOUNT = r"\$\d[\d,]*(?:\.\d+)?"
_WHAT = rf"(?:{_QUOTE}|{_TIME}|{_AMOUNT}|{_CAPITALISED})"
_WHERE = rf"(?:the\s+)?(?:{_QUOTE}|{_TIME}|{_CAPITALISED}(?:,\s+{_CAPITALISED})?)"
_JOIN = r"(?:\s*,\s*(?:and\s+)?|\s+and\s+)"
#: Pairs joined by "and", each with the same word between its halves: "USD to AUD and USD to
#: CAD", "$30.45 in Chicago, Illinois, $52.33 in Sacramento, California and $11.23 in
#: Portland, Oregon", "Tenet at 5 pm and No Time To Die at 7:30 pm".
_PAIR_LISTS = [
    re.compile(rf"(?<![\w.$]){_WHAT}\s+{word}\s+{_WHERE}(?:{_JOIN}{_WHAT}\s+{word}\s+{_WHERE})+")
    for word in ("to", "in", "at", "for")
]


def pair_lists(text: str) -> list[re.Match[str]]:
    return [m for pattern in _PAIR_LISTS for m in pattern.finditer(text)]


def list_items(text: str, match: re.Match[str]) -> tuple[int, list[str]]:
    """The items of a list that `match` found, and where the list ends: a place and its
    region ("San Francisco, California") are one item, and a region right after the last
    item ("... and Chicago, Illinois") belongs to it."""
    body = match.group(0)
    cuts = list(LIST_SEP.finditer(body))
    pieces = [
        body[a:b]
        for a, b in zip(
            [0, *(c.end() for c in cuts)], [*(c.start() for c in cuts), len(body)], strict=True
        )
    ]
    # Only a bare comma can join a place to its region ("California and New York" is two).
    commas = [c.group(0).strip() == "," for c in cuts]
    items, joinable = [], []
    for k, piece in enumerate(pieces):
        if piece.strip(EDGE):
            items.append(piece.strip(EDGE))
            joinable.append(k > 0 and commas[k - 1])
    end = match.end()
    trailing = re.match(r",\s*((?:[A-Z][\w.'-]*\s*){1,3})", text[end:])
    if items and trailing:
        words = trailing.group(1).split()
        size = region_words(words, 0)
        if size:
            region = " ".join(words[:size]).rstrip(".,;:!?")
            items.append(region)
            joinable.append(True)
            end += text[end:].index(region) + len(region)
    merged: list[str] = []
    for item, after_comma in zip(items, joinable, strict=True):
        words = item.split()
        if (
            after_comma
            and merged
            and region_words(words, 0) == len(words)
            and "," not in merged[-1]
        ):
            merged[-1] = f"{merged[-1]}, {item}"
        else:
            merged.append(item)
    return end, merged


def one_each(text: str, parts: Sequence[re.Match[str]]) -> list[str]:
    """One version of the text per part, each keeping that part and cutting the others."""
    return [
        "".join(
            text[(parts[j - 1].end() if j else 0) : part.start()]
            + (part.group(0) if j == i else "")
            for j, part in enumerate(parts)
        )
        + text[parts[-1].end() :]
        for i in range(len(parts))
    ]


def number_mentions(text: str) -> int:
    """Numbers written with digits, not counting those inside names ("Maroon 5")."""
    count = 0
    for match in NUMBER.finditer(text):
        before = text[: match.start()].rstrip().split()
        inside_name = (
            len(before) > 1
            and before[-1][:1].isupper()
            and not before[-1].endswith((".", ":"))
            and not before[-2].endswith((".", "?", "!"))
        )
        if inside_name:
            continue
        count += 1
    return count
