"""dispatch: send every subtask whose dependencies succeeded; go to merge when none is left.

A router: it only reads the state. A subtask whose dependency failed is never sent; the
result reports it as skipped.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import Send

from orchestrator._state import CallPayload, RunState, RunView
from orchestrator.steps.names import call_name, merge_name
from orchestrator.steps.templates import expression_context, render

__all__ = ["dispatch", "next_wave"]


def dispatch(node: str, state: RunState) -> list[Send] | str:
    return next_wave(node, RunView(state))


def next_wave(node: str, run: RunView) -> list[Send] | str:
    """The calls to send now, or the merge node when there are none."""
    context: dict[str, Any] | None = None
    sends: list[Send] = []
    for sub in run.plan(node).subtasks:
        if run.has_result(sub.id) or not all(run.succeeded(d) for d in sub.depends_on):
            continue
        context = context or expression_context(run)
        rendered = sub.model_copy(update={"input": render(sub.input, context)})
        payload: CallPayload = {"subtask": rendered.model_dump(mode="json")}
        sends.append(Send(call_name(node), payload))
    return sends or merge_name(node)
