"""merge: this node's successful results become result fields with provenance, and the node
decides where the run goes next."""

from __future__ import annotations

import time
from typing import Any

from orchestrator._contracts import FieldProvenance, Plan, ResultField
from orchestrator._state import RunState
from orchestrator.steps.context import StepContext, timing
from orchestrator.steps.route import decide_with_fields

__all__ = ["merge"]


def merge(ctx: StepContext, node: str, state: RunState) -> dict[str, Any]:
    start = time.perf_counter()
    plan = Plan.model_validate(state["plans"][node])
    escalated = set(state.get("escalations", {}))
    fields: dict[str, Any] = {}
    for sub in plan.subtasks:
        raw = state.get("results", {}).get(sub.id)
        if raw is None or not raw["ok"]:
            continue
        verdict = state.get("verdicts", {}).get(sub.id)
        tool = ctx.tools.get(sub.specialist)
        keys = (
            tool.summary_fields
            if tool and tool.summary_fields is not None
            else tuple(raw["output"])
        )
        provenance = FieldProvenance(
            source=raw.get("source", "specialist"),
            node=node,
            specialist=sub.specialist,
            model=raw["model"],
            confidence=raw["confidence"],
            verified=bool(verdict and verdict["passed"]),
            escalated=sub.id in escalated,
        )
        for key in keys:
            if key in raw["output"]:
                fields[f"{sub.id}.{key}"] = ResultField(
                    value=raw["output"][key], provenance=provenance
                ).model_dump(mode="json")
    return {
        "fields": fields,
        "timings": [timing(node, "merge", start)],
        "decisions": [decide_with_fields(ctx, node, state, fields)],
    }
