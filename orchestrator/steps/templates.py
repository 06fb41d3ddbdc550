"""What conditions and ``{{ templates }}`` read from a run, and filling templates in."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from orchestrator._contracts import ResultField
from orchestrator._state import RunView
from orchestrator.graph.expressions import Expression, Template, parse_expression, parse_template

__all__ = ["condition", "expression_context", "render", "template"]


@lru_cache(maxsize=4096)
def template(source: str) -> Template:
    return parse_template(source)


@lru_cache(maxsize=1024)
def condition(source: str) -> Expression:
    return parse_expression(source)


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Fill {{ expressions }} in strings, recursively through lists and mappings."""
    if isinstance(value, str):
        return template(value).render(context) if "{{" in value else value
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    return value


def expression_context(
    run: RunView, written: Mapping[str, ResultField] | None = None
) -> dict[str, Any]:
    """What conditions and templates can read: request, fields (with those a step has just
    ``written``), and each subtask's result.

    Built from the stored plain data rather than the parsed contracts: conditions read plain
    values, and this runs several times a run (parsing first made it about 5x slower).
    """
    state = run.state
    request = state.get("request", {})
    values = run.field_values()
    values.update((name, field.value) for name, field in (written or {}).items())
    context: dict[str, Any] = {
        "request": {"text": request.get("text"), "metadata": request.get("metadata", {})},
        "fields": values,
    }
    verdicts = state.get("verdicts", {})
    for sid, result in state.get("results", {}).items():
        output = result.get("output") or {}
        verdict = verdicts.get(sid)
        context[sid] = {
            **output,
            "output": output,
            "confidence": result.get("confidence"),
            "model": result.get("model"),
            "ok": result.get("ok"),
            "error": result.get("error"),
            "verified": bool(verdict and verdict["passed"]),
        }
    return context
