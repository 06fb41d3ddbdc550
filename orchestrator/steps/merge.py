"""merge: this node's successful results become result fields with provenance, and the node
decides where the run goes next."""

from __future__ import annotations

import time
from typing import Any

from orchestrator._contracts import FieldProvenance, ResultField
from orchestrator._state import RunState, RunView
from orchestrator.steps.context import StepContext, timing
from orchestrator.steps.record import record_plain
from orchestrator.steps.route import decide

__all__ = ["merge"]


def merge(ctx: StepContext, node: str, state: RunState) -> dict[str, Any]:
    start = time.perf_counter()
    run = RunView(state)
    fields: dict[str, ResultField] = {}
    for sub in run.plan(node).subtasks:
        result = run.result(sub.id)
        if result is None or not result.ok:
            continue
        output = result.output or {}
        tool = ctx.tools.get(sub.specialist)
        keys = tool.summary_fields if tool and tool.summary_fields is not None else tuple(output)
        provenance = FieldProvenance(
            source=result.source,
            node=node,
            specialist=sub.specialist,
            model=result.model,
            confidence=result.confidence,
            verified=run.verified(sub.id),
            escalated=run.has_escalation(sub.id),
        )
        for key in keys:
            if key in output:
                fields[f"{sub.id}.{key}"] = ResultField(value=output[key], provenance=provenance)
    record_plain(ctx, node, run)
    return {
        "fields": {name: field.model_dump(mode="json") for name, field in fields.items()},
        "timings": [timing(node, "merge", start)],
        "decisions": [decide(ctx, node, run, fields)],
    }
