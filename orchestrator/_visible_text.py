"""Whether a text has anything to read.

Input made only of whitespace or invisible characters (zero-width spaces, a byte-order mark,
direction marks, other format characters) is as empty as ``""``: a model would still answer
it, with a confidence that means nothing, so the request boundaries refuse it.
"""

from __future__ import annotations

import unicodedata

__all__ = ["has_visible_text", "require_visible_text"]

# Separators (Zs, Zl, Zp), controls (Cc: tab, newline, ...) and format characters (Cf:
# U+200B, U+FEFF, U+200E, ...).
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})
# Letters and symbols that render as blank space although their category says otherwise
# (Hangul fillers, the blank Braille pattern), and the variation selectors.
_BLANK_CHARACTERS = frozenset(
    "\u115f\u1160\u3164\uffa0\u2800" + "".join(chr(c) for c in range(0xFE00, 0xFE10))
)


def _invisible(char: str) -> bool:
    return char in _BLANK_CHARACTERS or unicodedata.category(char) in _INVISIBLE_CATEGORIES


def has_visible_text(text: str) -> bool:
    return not all(_invisible(char) for char in text)


def require_visible_text(text: str) -> str:
    """`text` unchanged, or a ValueError naming the invisible characters it holds (for
    pydantic validators; an empty text is left to ``min_length``)."""
    if not text or has_visible_text(text):
        return text
    seen = list(dict.fromkeys(text))[:3]
    named = ", ".join(
        f"U+{ord(c):04X} {unicodedata.name(c, unicodedata.category(c))}" for c in seen
    )
    raise ValueError(
        f"the text has no visible characters, only whitespace or invisible ones ({named}); "
        "give the text itself"
    )
