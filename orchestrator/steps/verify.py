"""verify: judge every new result of this node against its contract."""

from __future__ import annotations

import time
from typing import Any

from orchestrator._contracts import Plan, SpecialistResult
from orchestrator._state import RunState
from orchestrator.steps.context import StepContext, timing

__all__ = ["verify"]


def verify(ctx: StepContext, node: str, state: RunState) -> dict[str, Any]:
    """Verdicts for the results not judged yet; escalating is the escalate step's job."""
    start = time.perf_counter()
    plan = Plan.model_validate(state["plans"][node])
    done = state.get("verdicts", {})
    verdicts: dict[str, Any] = {}
    for sub in plan.subtasks:
        raw = state.get("results", {}).get(sub.id)
        if raw is None or sub.id in done:
            continue
        verdict = ctx.checker.verdict(SpecialistResult.model_validate(raw))
        verdicts[sub.id] = verdict.model_dump(mode="json")
    return {"verdicts": verdicts, "timings": [timing(node, "verify", start)]}
