"""The run state that flows through the compiled LangGraph graph.

Every key that parallel branches write has an explicit reducer, so that several specialist
calls finishing in the same step merge instead of colliding. Values are JSON-ready dicts (the
``model_dump`` of the contracts) so that checkpoints stay plain data.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

__all__ = ["CallPayload", "RunState", "merge_dicts"]


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: later writes win per key; keys from other branches are kept."""
    if not left:
        return dict(right or {})
    if not right:
        return left
    return {**left, **right}


class RunState(TypedDict, total=False):
    request: dict[str, Any]
    #: node name -> Plan
    plans: Annotated[dict[str, Any], merge_dicts]
    #: subtask id -> SpecialistResult
    results: Annotated[dict[str, Any], merge_dicts]
    #: subtask id -> Verdict
    verdicts: Annotated[dict[str, Any], merge_dicts]
    #: subtask id -> Escalation (the latest record wins)
    escalations: Annotated[dict[str, Any], merge_dicts]
    #: planner-independent remote model calls (the composer)
    model_calls: Annotated[list[dict[str, Any]], operator.add]
    #: things a person should know about the run (a field that could not be written...)
    notes: Annotated[list[str], operator.add]
    #: field name -> ResultField
    fields: Annotated[dict[str, Any], merge_dicts]
    #: routing decisions in order: {"from", "to", "when", "reads"}
    decisions: Annotated[list[dict[str, Any]], operator.add]
    path: Annotated[list[str], operator.add]
    #: {"node", "kind", "ms"} per node execution
    timings: Annotated[list[dict[str, Any]], operator.add]


class CallPayload(TypedDict):
    """What dispatch sends to the call node for one subtask (via LangGraph's Send)."""

    subtask: dict[str, Any]
