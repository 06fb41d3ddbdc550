"""verify: judge every new result of this node against its contract."""

from __future__ import annotations

import time
from typing import Any

from orchestrator._state import RunState, RunView
from orchestrator._tracing import child_span, describe_verdict
from orchestrator.steps.context import StepContext, timing

__all__ = ["verify"]


def verify(ctx: StepContext, node: str, state: RunState) -> dict[str, Any]:
    """Verdicts for the results not judged yet; escalating is the escalate step's job."""
    start = time.perf_counter()
    run = RunView(state)
    verdicts: dict[str, Any] = {}
    for sub in run.plan(node).subtasks:
        result = run.result(sub.id)
        if result is None or run.has_verdict(sub.id):
            continue
        verdict = ctx.checker.verdict(result)
        with child_span(f"verify {sub.id}") as span:
            if span.is_recording():
                span.set_attributes(
                    {"orchestrator.subtask.id": sub.id, "orchestrator.specialist": sub.specialist}
                )
                describe_verdict(span, verdict)
        verdicts[sub.id] = verdict.model_dump(mode="json")
    return {"verdicts": verdicts, "timings": [timing(node, "verify", start)]}
