"""route: which edge leaves a node. The node records its decision in the state (so a result
can say which conditions its fields depend on); the router only follows it."""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator._contracts import ResultField
from orchestrator._state import Decision, RunState, RunView
from orchestrator.graph.spec import END
from orchestrator.steps.context import StepContext
from orchestrator.steps.templates import condition, expression_context

__all__ = ["decide", "route"]


def decide(
    ctx: StepContext,
    node: str,
    run: RunView,
    written: Mapping[str, ResultField] | None = None,
) -> Decision:
    """Pick the edge out of `node`: the first whose condition holds, else the default.

    Conditions see the fields the node has just ``written``. ``reads`` lists the subtasks read
    by every condition evaluated on the way, since the default edge is taken *because* the
    conditions before it failed.
    """
    context = expression_context(run, written)
    subtasks = ctx.subtask_ids
    default = END
    reads: set[str] = set()
    for edge in ctx.spec.edges_from(node):
        if edge.when is None:
            default = edge.to
            continue
        test = condition(edge.when)
        reads.update(n for n in test.names if n in subtasks)
        if test.evaluate(context):
            return {"from": node, "to": edge.to, "when": edge.when, "reads": sorted(reads)}
    return {"from": node, "to": default, "when": None, "reads": sorted(reads)}


def route(node: str, state: RunState) -> str:
    """The target of the node's latest decision."""
    decision = next(d for d in reversed(state["decisions"]) if d["from"] == node)
    return decision["to"]
