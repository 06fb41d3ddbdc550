"""The run state that flows through the compiled LangGraph graph, and typed access to it.

Every key that parallel branches write has an explicit reducer, so that several specialist
calls finishing in the same step merge instead of colliding. Values are JSON-ready dicts (the
``model_dump`` of the contracts) so that checkpoints stay plain data; steps read them through
a :class:`RunView`, which parses each part into its contract once.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Annotated, Any, TypedDict, TypeVar

from orchestrator._contracts import (
    Escalation,
    Plan,
    ResultField,
    RunRequest,
    SpecialistResult,
    Verdict,
)
from orchestrator.graph.model import END

__all__ = ["CallPayload", "Decision", "RunState", "RunView", "merge_dicts", "run_finished"]


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: later writes win per key; keys from other branches are kept."""
    if not left:
        return dict(right or {})
    if not right:
        return left
    return {**left, **right}


#: A routing decision: the edge taken out of a node, its condition, and the subtasks read.
Decision = TypedDict("Decision", {"from": str, "to": str, "when": str | None, "reads": list[str]})


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
    #: routing decisions in order
    decisions: Annotated[list[Decision], operator.add]
    path: Annotated[list[str], operator.add]
    #: {"node", "kind", "ms"} per node execution
    timings: Annotated[list[dict[str, Any]], operator.add]


def run_finished(values: Mapping[str, Any]) -> bool:
    """Whether a stored run state is a finished run: its last node decided to end it.

    This is the positive marker of a finished run. LangGraph's empty ``next`` is not one: a
    checkpoint written before any step (a process killed at its start) has nothing left
    to run either.
    """
    decisions = values.get("decisions") or []
    return bool(decisions) and decisions[-1].get("to") == END


class CallPayload(TypedDict):
    """What dispatch sends to the call node for one subtask (via LangGraph's Send)."""

    subtask: dict[str, Any]


class RunView:
    """Typed, read-only access to one run state: each part is parsed into its contract on
    first use and kept, so a step parses what it reads once.

    A view is made per step, over the state that step received: it never sees later writes.
    """

    def __init__(self, state: RunState) -> None:
        self.state = state
        self._request: RunRequest | None = None
        self._plans: dict[str, Plan] = {}
        self._results: dict[str, SpecialistResult] = {}
        self._verdicts: dict[str, Verdict] = {}
        self._escalations: dict[str, Escalation] = {}
        self._fields: dict[str, ResultField] | None = None

    @property
    def request(self) -> RunRequest:
        if self._request is None:
            self._request = RunRequest.model_validate(self.state["request"])
        return self._request

    def plan(self, node: str) -> Plan:
        """The plan of a specialists node (it has been planned: the node's own steps ask)."""
        plan = self._plans.get(node)
        if plan is None:
            plan = self._plans[node] = Plan.model_validate(self.state["plans"][node])
        return plan

    def planned_nodes(self) -> list[str]:
        return list(self.state.get("plans", {}))

    def result(self, subtask_id: str) -> SpecialistResult | None:
        return _parsed(self._results, self.state.get("results"), subtask_id, SpecialistResult)

    def verdict(self, subtask_id: str) -> Verdict | None:
        return _parsed(self._verdicts, self.state.get("verdicts"), subtask_id, Verdict)

    def escalation(self, subtask_id: str) -> Escalation | None:
        return _parsed(self._escalations, self.state.get("escalations"), subtask_id, Escalation)

    # The yes/no questions steps ask on every wave read the one stored flag: parsing a whole
    # result or verdict to answer them cost more than the rest of those steps.
    def succeeded(self, subtask_id: str) -> bool:
        """Whether the subtask has a result and its call succeeded."""
        return bool(self.state.get("results", {}).get(subtask_id, {}).get("ok"))

    def verified(self, subtask_id: str) -> bool:
        """Whether the subtask's result passed verification."""
        return bool(self.state.get("verdicts", {}).get(subtask_id, {}).get("passed"))

    def awaiting_human(self, subtask_id: str) -> bool:
        """Whether the subtask's escalation waits for a person."""
        record = self.state.get("escalations", {}).get(subtask_id, {})
        return bool(record.get("outcome") == "awaiting_human")

    def has_result(self, subtask_id: str) -> bool:
        return subtask_id in self.state.get("results", {})

    def has_verdict(self, subtask_id: str) -> bool:
        return subtask_id in self.state.get("verdicts", {})

    def has_escalation(self, subtask_id: str) -> bool:
        return subtask_id in self.state.get("escalations", {})

    def result_ids(self) -> list[str]:
        return list(self.state.get("results", {}))

    def escalation_ids(self) -> list[str]:
        return list(self.state.get("escalations", {}))

    @property
    def fields(self) -> dict[str, ResultField]:
        if self._fields is None:
            raw = self.state.get("fields", {})
            self._fields = {k: ResultField.model_validate(v) for k, v in raw.items()}
        return self._fields

    def field_values(self) -> dict[str, Any]:
        """Each field's value, without parsing its provenance (what conditions read)."""
        return {name: field["value"] for name, field in self.state.get("fields", {}).items()}

    @property
    def decisions(self) -> list[Decision]:
        return self.state.get("decisions", [])


_M = TypeVar("_M", SpecialistResult, Verdict, Escalation)


def _parsed(
    cache: dict[str, _M], raw: dict[str, Any] | None, key: str, model: type[_M]
) -> _M | None:
    found = cache.get(key)
    if found is None and raw is not None and key in raw:
        found = cache[key] = model.model_validate(raw[key])
    return found
