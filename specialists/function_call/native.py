"""Native tool calling: a request and its functions as a model with tool calling sees them.

With ``endpoint.mode: tools`` the ``function_call`` specialist does not read or gate anything
itself: the served model gets the whole conversation and the functions as OpenAI ``tools`` and
decides on its own whether any applies (its own no-call decision), which, and with what
arguments. This module builds that request and reads the answer back; verification then
checks the calls as it checks any other answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from orchestrator.specialists.backends.generation import ChatMessage
from orchestrator.specialists.function_call.schema import FunctionSpec

__all__ = ["parsed_arguments", "tool_definitions", "tool_messages"]

_INSTRUCTIONS = (
    "You call functions for the user. Call a function only when it serves the user's last "
    "request, with argument values taken from the conversation; make one call per thing the "
    "request asks for. When no function applies, call none and say in one sentence why."
)


def tool_definitions(specs: Sequence[FunctionSpec]) -> list[dict[str, Any]]:
    """The functions as OpenAI ``tools``, their parameters as plain JSON Schema."""
    return [
        {
            "type": "function",
            "function": {
                "name": spec.name,
                "description": spec.description,
                "parameters": spec.parameters,
            },
        }
        for spec in specs
    ]


def tool_messages(turns: str | Sequence[tuple[str, str]], now: datetime) -> list[ChatMessage]:
    """The chat a tool-calling model answers: one system message (ours, then the
    conversation's own), the date that relative dates are read against, and every turn."""
    if isinstance(turns, str):
        turns = [("user", turns)]
    own = [content for role, content in turns if role == "system"]
    system = "\n\n".join([_INSTRUCTIONS, f"Now is {now:%A %Y-%m-%d %H:%M}.", *own])
    messages: list[ChatMessage] = [{"role": "system", "content": system}]
    messages += [{"role": r, "content": c} for r, c in turns if r != "system"]
    return messages


def parsed_arguments(text: str) -> tuple[dict[str, Any], str | None]:
    """A call's arguments from the JSON text the model wrote, and what is wrong with it."""
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        return {}, f"its arguments are not JSON ({exc.msg})"
    if not isinstance(value, dict):
        return {}, f"its arguments are a JSON {type(value).__name__}, not an object"
    return value, None
