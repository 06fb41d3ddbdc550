"""A whole graph served as one MCP tool (``orchestrator serve --graph G --as-tool``).

The tool takes the request (``text`` and ``metadata``) and answers with structured content:
the run's status and its fields, each with its provenance (which node and model produced
it, its confidence, whether it was verified or escalated), the escalations and the cost.
A desktop assistant then calls the whole pipeline as it would call one tool. A run that
cannot start or that fails is a tool error (``isError: true``) with the reason; the
server goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from orchestrator._contracts import Escalation, ResultField, RunResult
from orchestrator._errors import OrchestratorError
from orchestrator._orchestrator import Orchestrator
from orchestrator._version import __version__
from orchestrator.tools.server import (
    ServerLimits,
    ToolServer,
    _arguments,
    _check_sizes,
    _tool,
)

__all__ = ["GraphAnswer", "build_graph_server", "graph_answer"]


class GraphAnswer(BaseModel):
    """What the graph tool returns: the result fields with their provenance."""

    model_config = ConfigDict(extra="forbid")
    graph: str
    thread_id: str = Field(description="The run's thread (its checkpoints, while the server runs).")
    status: str = Field(
        description="ok: every field verified; partial: some unverified or failed; "
        "awaiting_human: paused until a person answers."
    )
    fields: dict[str, ResultField] = Field(
        description="Each field's value and provenance: source, node, specialist, model, "
        "confidence, verified, escalated."
    )
    escalations: list[Escalation] = Field(description="Subtasks that failed verification.")
    skipped: dict[str, str] = Field(description="Subtasks that did not run, with the reason.")
    notes: list[str] = Field(description="What a person should know.")
    cost_usd: float | None = Field(description="The run's cost from the price table.")
    total_ms: float = Field(description="Wall time of the run.")


def graph_answer(result: RunResult) -> GraphAnswer:
    """The tool's answer for a run's result; a failed run is a tool error."""
    if result.status == "failed":
        reasons = [f"{s.id}: {s.error}" for s in result.subtasks if s.error]
        why = result.error or "; ".join(reasons) or "no field could be produced"
        raise ToolError(f"the run failed: {why}")
    return GraphAnswer(
        graph=result.graph,
        thread_id=result.thread_id,
        status=result.status,
        fields=result.fields,
        escalations=list(result.escalations),
        skipped=result.skipped,
        notes=list(result.notes),
        cost_usd=result.ledger.total_usd if result.ledger is not None else None,
        total_ms=result.timings_ms.get("total", 0.0),
    )


def build_graph_server(
    orchestrator: Orchestrator, *, limits: ServerLimits | None = None
) -> MCPServer:
    """An MCP server with one tool, named after the graph, that runs it on a request.

    The orchestrator is opened when the server starts (its specialists loaded, its MCP
    servers started) and closed when it stops.
    """
    limits = limits or ServerLimits()
    spec = orchestrator.spec

    async def run_graph(text: str, metadata: dict[str, Any]) -> GraphAnswer:
        _check_sizes({"text": text, "metadata": metadata}, limits, "argument")
        try:
            result = await orchestrator.arun(text, metadata=metadata)
        except OrchestratorError as exc:
            raise ToolError(str(exc)) from None
        return graph_answer(result)

    # Typed as FieldInfo: with a default factory, `Field` is typed as the factory's value.
    metadata = cast(
        FieldInfo,
        Field(
            default_factory=dict,
            description="Anything the graph's templates and conditions read as "
            "request.metadata (a customer tier, a channel).",
        ),
    )
    text = Field(min_length=1, description="The request, e.g. a customer message.")
    arguments = _arguments(spec.name, {"text": (str, text), "metadata": (dict[str, Any], metadata)})
    tool = _tool(
        run_graph,
        name=spec.name,
        description=f"Run the {spec.name} graph on a request; returns each result field with "
        "its provenance (model, confidence, verified or escalated).",
        arguments=arguments,
        result=GraphAnswer,
        meta={},
    )

    @asynccontextmanager
    async def opened(_server: MCPServer) -> AsyncIterator[None]:
        async with orchestrator:
            yield

    return ToolServer(
        f"orchestrator-{spec.name}",
        version=__version__,
        log_level="WARNING",
        instructions=(
            f"The {spec.name} graph as one tool: give it the request text; it answers with "
            "the run's status and each result field with its provenance (model, confidence, "
            "verified or escalated)."
        ),
        tools=[tool],
        lifespan=opened,
    )
