"""set and compose: nodes that write result fields rather than call specialists.

``set`` writes values (templates filled from the run) with provenance derived from the
subtasks its branch read; ``compose`` has the frontier model write one field from verified
fields only.
"""

from __future__ import annotations

import time
from typing import Any

from orchestrator._contracts import FieldProvenance, ModelCall, ResultField
from orchestrator._state import RunState, RunView
from orchestrator.agents._frontier import FrontierError
from orchestrator.graph.spec import ComposeNodeSpec, SetNodeSpec
from orchestrator.steps.context import StepContext, timing
from orchestrator.steps.route import decide
from orchestrator.steps.templates import expression_context, render, template

__all__ = ["compose", "set_fields"]


def set_fields(ctx: StepContext, node: str, state: RunState) -> dict[str, Any]:
    start = time.perf_counter()
    spec_node = ctx.spec.nodes[node]
    assert isinstance(spec_node, SetNodeSpec)
    run = RunView(state)
    context = expression_context(run)
    entered = next((d for d in reversed(run.decisions) if d["to"] == node), None)
    # A rule's field depends on the conditions that led here and on the results its own
    # templates read.
    subtasks = ctx.subtask_ids
    templated = {
        name
        for value in spec_node.set.values()
        if isinstance(value, str) and "{{" in value
        for expression in template(value).expressions
        for name in expression.names
        if name in subtasks
    }
    reads = tuple(sorted({*(entered["reads"] if entered else ()), *templated}))
    read_results = [r for r in map(run.result, reads) if r is not None]
    confidences = [r.confidence for r in read_results if r.confidence is not None]
    provenance = FieldProvenance(
        source="rule",
        node=node,
        verified=all(run.succeeded(r) and run.verified(r) for r in reads),
        confidence=min(confidences) if confidences else None,
        derived_from=reads,
    )
    # A value written only from the request (its text, its metadata) is the caller's own
    # words: no specialist checked it, so it is never verified.
    from_request = FieldProvenance(source="request", node=node, verified=False)
    fields = {
        key: ResultField(
            value=render(value, context),
            provenance=from_request if _only_request(value) else provenance,
        )
        for key, value in spec_node.set.items()
    }
    return {
        "fields": _dumped(fields),
        "path": [node],
        "timings": [timing(node, "set", start)],
        "decisions": [decide(ctx, node, run, fields)],
    }


def _only_request(value: Any) -> bool:
    """Whether a set value is a template that reads nothing but ``request``."""
    if not isinstance(value, str) or "{{" not in value:
        return False
    names = {name for expression in template(value).expressions for name in expression.names}
    return bool(names) and names <= {"request"}


async def compose(ctx: StepContext, node: str, state: RunState) -> dict[str, Any]:
    """The frontier model writes one field from verified fields only."""
    start = time.perf_counter()
    spec_node = ctx.spec.nodes[node]
    assert isinstance(spec_node, ComposeNodeSpec)
    run = RunView(state)
    named = spec_node.fields
    verified = {
        name: field.value
        for name, field in run.fields.items()
        if field.provenance.verified and (named is None or name in named)
    }
    # The request's own words reach the composer only where the node names them, apart
    # from the verified fields.
    from_request = {
        name: field.value
        for name, field in run.fields.items()
        if field.provenance.source == "request" and named is not None and name in named
    }
    calls: list[ModelCall] = []
    model: str | None = None
    if ctx.composer is None:
        value = None
        note = f"not written: no frontier model configured ({ctx.frontier_key()} is not set)"
    else:
        model = f"{ctx.composer.model.provider}:{ctx.composer.model.model}"
        try:
            value, calls = await ctx.composer.compose(
                spec_node.instructions, verified, from_request
            )
            note = ""
        except FrontierError as exc:
            value, note, calls = None, f"not written: {exc}", list(exc.calls)
    provenance = FieldProvenance(
        source="frontier",
        node=node,
        model=model,
        verified=False,
        derived_from=tuple(sorted({*verified, *from_request})),
    )
    fields = {spec_node.output: ResultField(value=value, provenance=provenance)}
    return {
        "fields": _dumped(fields),
        "path": [node],
        "notes": [note] if note else [],
        "model_calls": [c.model_dump(mode="json") for c in calls],
        "timings": [timing(node, "compose", start)],
        "decisions": [decide(ctx, node, run, fields)],
    }


def _dumped(fields: dict[str, ResultField]) -> dict[str, Any]:
    return {name: field.model_dump(mode="json") for name, field in fields.items()}
