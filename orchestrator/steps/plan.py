"""plan: the planner turns the request into this node's subtasks."""

from __future__ import annotations

import time
from typing import Any

from orchestrator._logging import get_logger
from orchestrator._state import RunState, RunView
from orchestrator.agents._planner import DeclaredSubtask, PlanStep
from orchestrator.graph.spec import SpecialistsNodeSpec, SubtaskSpec
from orchestrator.steps.context import StepContext, timing

__all__ = ["declared", "plan"]

log = get_logger(__name__)


async def plan(ctx: StepContext, node: str, state: RunState) -> dict[str, Any]:
    start = time.perf_counter()
    spec_node = ctx.spec.nodes[node]
    assert isinstance(spec_node, SpecialistsNodeSpec)
    step = PlanStep(
        node=node,
        declared=[declared(sub) for sub in spec_node.subtasks],
        tools=ctx.tools,
        allowed=tuple(spec_node.tools or ()),
    )
    planner = ctx.planner
    if spec_node.planner == "frontier" and ctx.frontier_planner is not None:
        planner = ctx.frontier_planner
    made = await planner.plan(RunView(state).request, step)
    if made.error:
        log.warning("no plan", node=node, error=made.error)
    log.debug("planned", node=node, subtasks=[s.id for s in made.subtasks], skipped=made.skipped)
    return {
        "plans": {node: made.model_dump(mode="json")},
        "path": [node],
        "timings": [timing(node, "plan", start)],
    }


def declared(sub: SubtaskSpec) -> DeclaredSubtask:
    """A graph file's subtask as planners see it (they do not depend on the file's schema)."""
    return DeclaredSubtask(
        id=sub.id,
        specialist=sub.specialist,
        input=sub.input,
        depends_on=tuple(sub.depends_on),
        select=sub.select,
        min_similarity=sub.min_similarity,
    )
