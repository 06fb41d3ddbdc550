"""dispatch: send every subtask whose dependencies succeeded; go to merge when none is left.

A router: it only reads the state. A subtask whose dependency failed is never sent; the
result reports it as skipped.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import Send

from orchestrator._contracts import Plan
from orchestrator._state import CallPayload, RunState
from orchestrator.steps.names import call_name, merge_name
from orchestrator.steps.templates import expression_context, render

__all__ = ["dispatch"]


def dispatch(node: str, state: RunState) -> list[Send] | str:
    plan = Plan.model_validate(state["plans"][node])
    results = state.get("results", {})
    context: dict[str, Any] | None = None
    sends: list[Send] = []
    for sub in plan.subtasks:
        if sub.id in results or not all(results.get(d, {}).get("ok") for d in sub.depends_on):
            continue
        context = context or expression_context(state)
        rendered = sub.model_copy(update={"input": render(sub.input, context)})
        payload: CallPayload = {"subtask": rendered.model_dump(mode="json")}
        sends.append(Send(call_name(node), payload))
    return sends or merge_name(node)
