"""review: a person approves, corrects or rejects what escalation left to them.

The run stops in a LangGraph interrupt until ``Orchestrator.resume`` supplies a decision per
subtask; :func:`after_escalate` sends the run here only when something awaits a person.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import Send, interrupt

from orchestrator._contracts import Escalation, EscalationStep, SpecialistResult, Verdict
from orchestrator._state import RunState, RunView
from orchestrator.steps.context import StepContext
from orchestrator.steps.dispatch import next_wave
from orchestrator.steps.names import review_name
from orchestrator.steps.record import record_reviews

__all__ = ["after_escalate", "awaiting_review", "review"]


def awaiting_review(node: str, run: RunView) -> list[Escalation]:
    """The escalation records of this node that wait for a person."""
    waiting = [sid for sid in run.escalation_ids() if run.awaiting_human(sid)]
    if not waiting:  # the usual case: no plan to read
        return []
    ids = {s.id for s in run.plan(node).subtasks}
    return [record for sid in waiting if sid in ids and (record := run.escalation(sid))]


def after_escalate(node: str, state: RunState) -> list[Send] | str:
    """A router: to the review when a person is awaited, else the next wave of calls."""
    run = RunView(state)
    if awaiting_review(node, run):
        return review_name(node)
    return next_wave(node, run)


def review(ctx: StepContext, node: str, state: RunState) -> dict[str, Any]:
    run = RunView(state)
    pending = awaiting_review(node, run)
    items = []
    for record in pending:
        result = run.result(record.subtask_id)
        assert result is not None  # escalated results exist
        tool = ctx.tools.get(result.specialist)
        rung = next((r for r in ctx.spec.ladder(result.specialist) if r.kind == "human"), None)
        items.append(
            {
                "subtask_id": record.subtask_id,
                "specialist": result.specialist,
                "input": result.input,
                "output": result.output,
                "confidence": result.confidence,
                "reason": record.reason,
                "note": getattr(rung, "note", ""),
                "output_schema": tool.output_schema if tool else {},
                "labels": list(tool.labels) if tool and tool.labels else None,
            }
        )
    # The run stops here until `resume` supplies {subtask_id: decision}; see Orchestrator.
    decisions = interrupt({"node": node, "pending": items})
    update: dict[str, Any] = {"escalations": {}, "results": {}, "verdicts": {}}
    decided: list[tuple[str, SpecialistResult | None]] = []
    for record in pending:
        sid = record.subtask_id
        action = decisions.get(sid, {"action": "reject"})["action"]
        rejected = action == "reject"
        step = EscalationStep(rung="human", passed=not rejected, detail=action)
        escalation = record.model_copy(
            update={
                "steps": (*record.steps, step),
                "outcome": "unresolved" if rejected else "resolved",
                "resolved_by": None if rejected else "human",
            }
        )
        update["escalations"][sid] = escalation.model_dump(mode="json")
        if rejected:
            decided.append((sid, None))
            continue
        result = run.result(sid)
        assert result is not None
        if action == "answer":
            result = result.model_copy(
                update={
                    "output": decisions[sid]["output"],
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
        decided.append((sid, result))
        update["verdicts"][sid] = Verdict(
            subtask_id=sid, passed=True, checks={"human": True}, reasons=(f"human {action}",)
        ).model_dump(mode="json")
    record_reviews(ctx, run, decided)
    return update
