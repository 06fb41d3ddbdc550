"""Numbers as requests write them: digits (with thousands separators, decimals, exponents,
percentages, "5 million", "$1.2M") and number words. The argument reader, the request splitter
and verification all read numbers here, so a request holds the same numbers for each of them.
"""

from __future__ import annotations

import re

__all__ = ["COUNT_WORDS", "NUMBER", "NUMBER_WORDS", "number_of", "number_value"]

NUMBER = re.compile(
    r"(?<![\w.])(?P<neg>[-\u2212])?\$?(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?"
    r"(?P<exp>[eE][-+]?\d+)?(?P<pct>\s?%)?(?:\s(?P<scale>thousand|million|billion)\b|(?P<short>[KMB])\b)?"
)
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9}
_SHORT_SCALES = {"K": 1e3, "M": 1e6, "B": 1e9}

#: Numbers written as words; each is a value a parameter may take ("for two people").
NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15,
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "hundred": 100, "thousand": 1000,
    "twice": 2, "dozen": 12,
}  # fmt: skip
#: Words that count rather than give a value ("once", "the first"): they tell how much a
#: request asks for, and may stand for a value in verification, but are no candidate values.
COUNT_WORDS = {"once": 1, "first": 1, "second": 2, "third": 3}


def number_value(match: re.Match[str]) -> tuple[float, str]:
    """The value of a :data:`NUMBER` match (its sign and scale applied; a percentage stays as
    written) and the literal its digits spell ("1e-07", "0.5"; a "$1.2M" becomes "1200000.0")."""
    literal = match.group("whole").replace(",", "") + (match.group("frac") or "")
    literal += match.group("exp") or ""
    value = float(literal)
    if match.group("scale"):
        value *= _SCALES[match.group("scale").lower()]
    elif match.group("short") and "$" in match.group(0):  # "$1.2M", not "300K"
        value *= _SHORT_SCALES[match.group("short")]
        literal = str(value)
    if match.group("neg"):
        value = -value
    return value, literal


def number_of(match: re.Match[str]) -> int | float:
    """:func:`number_value` as written: an integer when its digits have no decimals and no
    exponent ("300", "5 million"), a float otherwise ("0.5", "2e-06", "1e3")."""
    value, literal = number_value(match)
    if value.is_integer() and "." not in literal and "e" not in literal.lower():
        return int(value)
    return value
