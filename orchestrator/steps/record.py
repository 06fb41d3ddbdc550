"""record: each finished subtask goes to the trace store (when the orchestrator keeps one).

Escalated subtasks are recorded where their escalation ends (the ladder, or a person's
review), with the specialist's own answer beside the final one; the others at merge. A trace
is keyed by run and subtask, so a step that runs again after a crash replaces it.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator._contracts import Escalation, SpecialistResult, Verdict
from orchestrator._recorder import trace_of
from orchestrator._state import RunView
from orchestrator.steps.context import StepContext

__all__ = ["record_escalations", "record_plain", "record_reviews"]


def record_escalations(
    ctx: StepContext,
    run: RunView,
    outcomes: Iterable[tuple[SpecialistResult, Verdict, Escalation, SpecialistResult | None]],
) -> None:
    """(the specialist's answer, its verdict, the escalation, the result kept) per subtask;
    those left to a person are recorded by their review."""
    if ctx.recorder is None:
        return
    run_id = run.request.request_id
    ctx.recorder.record(
        [
            trace_of(run_id, answer, verdict, kept or answer, rung=record.resolved_by)
            for answer, verdict, record, kept in outcomes
            if record.outcome != "awaiting_human"
        ]
    )


def record_reviews(
    ctx: StepContext, run: RunView, decided: Iterable[tuple[str, SpecialistResult | None]]
) -> None:
    """(subtask id, the result a person approved or wrote, None: rejected) per review."""
    if ctx.recorder is None:
        return
    traces = []
    for sid, kept in decided:
        answer = run.result(sid)
        assert answer is not None  # a review judges a result
        traces.append(
            trace_of(run.request.request_id, answer, run.verdict(sid), kept, rung="human")
        )
    ctx.recorder.record(traces)


def record_plain(ctx: StepContext, node: str, run: RunView) -> None:
    """The subtasks of `node` that were not escalated: the specialist's answer is final."""
    if ctx.recorder is None:
        return
    traces = []
    for sub in run.plan(node).subtasks:
        result = run.result(sub.id)
        if result is None or run.has_escalation(sub.id):
            continue
        kept = result if result.ok else None
        traces.append(trace_of(run.request.request_id, result, run.verdict(sub.id), kept))
    ctx.recorder.record(traces)
