"""Compiling a graph spec into a LangGraph ``StateGraph``.

Each ``specialists`` node N becomes these LangGraph nodes::

    N (plan) --dispatch--> N.call (one per ready subtask, via Send) --> N.verify --> N.escalate
                 \\                                                                 |
                  +--> N.merge <--dispatch (none left)--+-- [N.review: a person] <--+
                                                        +--> next wave of N.call

and each ``set`` node becomes one. Edges from the file become conditional edges out of
``N.merge`` (or the set node) that follow the decision the node recorded in the state; a node
with one way out gets a plain edge.

Every node and edge function is a coroutine, even where its body never awaits: LangGraph runs
a plain function in a thread pool, and that hand-off (about 0.1 ms a step) cost more than the
bodies themselves, which are short CPU work that gains nothing from a thread.
"""

from __future__ import annotations

import functools
from typing import Any

from langgraph.graph import END as LG_END
from langgraph.graph import START as LG_START
from langgraph.graph import StateGraph
from langgraph.types import Send

from orchestrator._state import RunState, RunView
from orchestrator._tracing import child_span
from orchestrator.graph.spec import END, START, ComposeNodeSpec, SetNodeSpec, SpecialistsNodeSpec
from orchestrator.steps import call as call_step
from orchestrator.steps import dispatch as dispatch_step
from orchestrator.steps import escalate as escalate_step
from orchestrator.steps import fields as fields_step
from orchestrator.steps import merge as merge_step
from orchestrator.steps import plan as plan_step
from orchestrator.steps import review as review_step
from orchestrator.steps import route as route_step
from orchestrator.steps import verify as verify_step
from orchestrator.steps.context import StepContext
from orchestrator.steps.names import call_name, escalate_name, merge_name, review_name, verify_name

__all__ = ["build_state_graph"]


def _entry(target: str) -> str:
    return LG_END if target == END else target


def build_state_graph(ctx: StepContext) -> StateGraph[Any]:
    spec = ctx.spec
    graph: StateGraph[Any] = StateGraph(RunState)
    for name, node in spec.nodes.items():
        if isinstance(node, SpecialistsNodeSpec):
            _add_specialists_node(graph, ctx, name)
            exit_node = merge_name(name)
        elif isinstance(node, ComposeNodeSpec):
            graph.add_node(name, _traced(ctx, name, "compose", _compose_node(ctx, name)))
            exit_node = name
        else:
            assert isinstance(node, SetNodeSpec)
            graph.add_node(name, _traced(ctx, name, "set", _set_node(ctx, name)))
            exit_node = name
        edges = spec.edges_from(name)
        if all(e.when is None for e in edges) and len({e.to for e in edges}) <= 1:
            # One way out: a plain edge, so LangGraph need not read the state to route. The
            # node still records its decision.
            graph.add_edge(exit_node, _entry(edges[0].to if edges else END))
            continue
        targets = {e.to for e in edges} | {END}
        graph.add_conditional_edges(
            exit_node, _router(name), {t: _entry(t) for t in sorted(targets)}
        )
    start_edges = spec.edges_from(START)
    if len(start_edges) == 1 and start_edges[0].when is None:
        graph.add_edge(LG_START, _entry(start_edges[0].to))
    else:
        targets = {e.to for e in start_edges} | {END}

        async def from_start(state: RunState) -> str:
            return route_step.decide(ctx, START, RunView(state))["to"]

        graph.add_conditional_edges(LG_START, from_start, {t: _entry(t) for t in sorted(targets)})
    return graph


def _add_specialists_node(graph: StateGraph[Any], ctx: StepContext, name: str) -> None:
    # The inner functions keep their names: LangGraph names branches after them.
    async def plan(state: RunState) -> dict[str, Any]:
        return await plan_step.plan(ctx, name, state)

    async def call(payload: Any) -> dict[str, Any]:
        # `Any`, not CallPayload: LangGraph would read a TypedDict annotation as the node's
        # own input schema and add its keys to the state.
        return await call_step.call(ctx, payload)

    async def verify(state: RunState) -> dict[str, Any]:
        return verify_step.verify(ctx, name, state)

    async def merge(state: RunState) -> dict[str, Any]:
        return merge_step.merge(ctx, name, state)

    async def escalate(state: RunState) -> dict[str, Any]:
        return await escalate_step.escalate(ctx, name, state)

    async def review(state: RunState) -> dict[str, Any]:
        return review_step.review(ctx, name, state)

    async def dispatch(state: RunState) -> list[Send] | str:
        return dispatch_step.dispatch(name, state)

    async def after_escalate(state: RunState) -> list[Send] | str:
        return review_step.after_escalate(name, state)

    graph.add_node(name, _traced(ctx, name, "plan", plan))
    graph.add_node(
        call_name(name),
        _traced(ctx, call_name(name), "call", call),  # Send payloads, not RunState
    )
    graph.add_node(verify_name(name), _traced(ctx, verify_name(name), "verify", verify))
    graph.add_node(escalate_name(name), _traced(ctx, escalate_name(name), "escalate", escalate))
    graph.add_node(merge_name(name), _traced(ctx, merge_name(name), "merge", merge))
    destinations = [call_name(name), merge_name(name)]
    graph.add_conditional_edges(name, dispatch, destinations)
    graph.add_edge(call_name(name), verify_name(name))
    graph.add_edge(verify_name(name), escalate_name(name))
    if any(r.kind == "human" for key in ctx.spec.specialists for r in ctx.spec.ladder(key)):
        graph.add_node(review_name(name), _traced(ctx, review_name(name), "review", review))
        graph.add_conditional_edges(
            escalate_name(name), after_escalate, [*destinations, review_name(name)]
        )
        graph.add_conditional_edges(review_name(name), dispatch, destinations)
    else:
        graph.add_conditional_edges(escalate_name(name), dispatch, destinations)


def _traced(ctx: StepContext, node: str, step: str, fn: Any) -> Any:
    """The node inside a span of its own when the graph's runs are traced; else the function
    itself, so that an untraced run pays nothing for it. ``wraps`` keeps the annotations
    LangGraph reads the node's input schema from."""
    if not ctx.traced:
        return fn

    @functools.wraps(fn)
    async def traced(arg: Any) -> Any:
        with child_span(f"node {node}", {"orchestrator.node": node, "orchestrator.step": step}):
            return await fn(arg)

    return traced


def _set_node(ctx: StepContext, name: str) -> Any:
    async def set_fields(state: RunState) -> dict[str, Any]:
        return fields_step.set_fields(ctx, name, state)

    return set_fields


def _compose_node(ctx: StepContext, name: str) -> Any:
    async def compose(state: RunState) -> dict[str, Any]:
        return await fields_step.compose(ctx, name, state)

    return compose


def _router(name: str) -> Any:
    async def route(state: RunState) -> str:
        return route_step.route(name, state)

    return route
