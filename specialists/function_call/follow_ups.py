"""Chat follow-ups: a turn that changes the call before it ("and for tomorrow?", "what about
Miami?", "make it 4 people") rather than asking for something new.

Such a turn names only what changes. The specialist answers the conversation before it, then
keeps that answer's last call and puts in the values the follow-up gives: those it names for a
parameter (a choice, a date, a number, a word of the parameter's name), and a word close in
meaning to a free-text value of the call, which it replaces ("kitchen" -> "and the bedroom
too"). A turn is read as a
follow-up only when it is short or goes on from the last one (starts with "and", "what
about", "only", "actually", "now"...); a new question ("Who invented the pound coin?") is not
one, however many values it shares with the call before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from orchestrator.specialists.function_call.schema import FunctionSpec

__all__ = ["MAX_ELLIPTIC_WORDS", "all_optional", "earlier_turns", "goes_on"]

#: A turn of at most this many words names what changes ("under 400 dollars", "shuffle it").
MAX_ELLIPTIC_WORDS = 4
_GOES_ON = re.compile(
    r"^\W*(?:and|also|plus|what about|how about|only|just|actually|now|then|instead|but|same|"
    r"make (?:it|that|another|one)|another|again|change|switch)\b"
    r"|\b(?:too|as well|instead|again|another one)\W*$",
    re.IGNORECASE,
)


def goes_on(text: str) -> bool:
    """The turn reads as a change to the request before it."""
    return len(text.split()) <= MAX_ELLIPTIC_WORDS or _GOES_ON.search(text.strip()) is not None


def joined_turns(texts: Iterable[str]) -> str:
    """Turns as one text, each ending its sentence: a name at the end of one turn does not
    run on into the first word of the next ("... to Kyoto in April" + "Nice!")."""
    return "\n".join(
        t if t.endswith((".", "?", "!", ":", ";")) else t + "."
        for t in (t.strip() for t in texts)
        if t
    )


def earlier_turns(turns: list[dict[str, str]]) -> list[dict[str, str]]:
    """The conversation before the last user turn (empty when there is no earlier user turn)."""
    last = max((i for i, t in enumerate(turns) if t["role"] == "user"), default=-1)
    before = turns[:last]
    return before if any(t["role"] == "user" for t in before) else []


def all_optional(spec: FunctionSpec) -> FunctionSpec:
    """The function with no required parameter: a follow-up is read for what it names only."""
    parameters = {**spec.parameters, "required": []}
    return FunctionSpec(name=spec.name, description=spec.description, parameters=parameters)
