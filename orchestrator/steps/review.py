"""review: a person approves, corrects or rejects what escalation left to them.

The run stops in a LangGraph interrupt until ``Orchestrator.resume`` supplies a decision per
subtask; :func:`after_escalate` sends the run here only when something awaits a person.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import Send, interrupt

from orchestrator._contracts import Escalation, EscalationStep, SpecialistResult, Verdict
from orchestrator._state import RunState
from orchestrator.steps.context import StepContext
from orchestrator.steps.dispatch import dispatch
from orchestrator.steps.names import review_name

__all__ = ["after_escalate", "awaiting_review", "review"]


def awaiting_review(node: str, state: RunState) -> list[dict[str, Any]]:
    """The escalation records of this node that wait for a person."""
    ids = {s["id"] for s in state["plans"][node]["subtasks"]}
    return [
        e
        for sid, e in state.get("escalations", {}).items()
        if sid in ids and e["outcome"] == "awaiting_human"
    ]


def after_escalate(node: str, state: RunState) -> list[Send] | str:
    """A router: to the review when a person is awaited, else the next wave of calls."""
    if awaiting_review(node, state):
        return review_name(node)
    return dispatch(node, state)


def review(ctx: StepContext, node: str, state: RunState) -> dict[str, Any]:
    pending = awaiting_review(node, state)
    items = []
    for record in pending:
        sid = record["subtask_id"]
        result = state["results"][sid]
        tool = ctx.tools.get(result["specialist"])
        rung = next((r for r in ctx.spec.ladder(result["specialist"]) if r.kind == "human"), None)
        items.append(
            {
                "subtask_id": sid,
                "specialist": result["specialist"],
                "input": result["input"],
                "output": result["output"],
                "confidence": result["confidence"],
                "reason": record["reason"],
                "note": getattr(rung, "note", ""),
                "output_schema": tool.output_schema if tool else {},
                "labels": list(tool.labels) if tool and tool.labels else None,
            }
        )
    # The run stops here until `resume` supplies {subtask_id: decision}; see Orchestrator.
    decisions = interrupt({"node": node, "pending": items})
    update: dict[str, Any] = {"escalations": {}, "results": {}, "verdicts": {}}
    for record in pending:
        sid = record["subtask_id"]
        decision = decisions.get(sid, {"action": "reject"})
        result = SpecialistResult.model_validate(state["results"][sid])
        step = EscalationStep(
            rung="human", passed=decision["action"] != "reject", detail=decision["action"]
        )
        escalation = Escalation.model_validate(record).model_copy(
            update={
                "steps": (*Escalation.model_validate(record).steps, step),
                "outcome": "unresolved" if decision["action"] == "reject" else "resolved",
                "resolved_by": None if decision["action"] == "reject" else "human",
            }
        )
        update["escalations"][sid] = escalation.model_dump(mode="json")
        if decision["action"] == "reject":
            continue
        if decision["action"] == "answer":
            result = result.model_copy(
                update={
                    "output": decision["output"],
                    "ok": True,
                    "source": "human",
                    "model": "human",
                    "confidence": 1.0,
                    "error": None,
                }
            )
        else:  # approve: the specialist's own answer, vouched for by a person
            result = result.model_copy(update={"source": "human"})
        update["results"][sid] = result.model_dump(mode="json")
        update["verdicts"][sid] = Verdict(
            subtask_id=sid,
            passed=True,
            checks={"human": True},
            reasons=(f"human {decision['action']}",),
        ).model_dump(mode="json")
    return update
