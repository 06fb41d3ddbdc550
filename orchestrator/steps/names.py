"""The LangGraph node names a ``specialists`` node N compiles into (N itself is the plan step)."""

from __future__ import annotations

__all__ = ["call_name", "escalate_name", "merge_name", "review_name", "verify_name"]


def call_name(node: str) -> str:
    return f"{node}.call"


def verify_name(node: str) -> str:
    return f"{node}.verify"


def merge_name(node: str) -> str:
    return f"{node}.merge"


def escalate_name(node: str) -> str:
    return f"{node}.escalate"


def review_name(node: str) -> str:
    return f"{node}.review"
