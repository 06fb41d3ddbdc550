"""What every step reads while a run is going on: the graph, the tools and the roles."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from orchestrator._contracts import ToolInfo
from orchestrator._recorder import TraceRecorder
from orchestrator.agents._planner import Planner
from orchestrator.agents.answerer import FrontierAnswerer
from orchestrator.agents.composer import Composer
from orchestrator.graph.spec import GraphSpec
from orchestrator.steps.checks import OwnChecks, ResultChecker
from orchestrator.tools._toolset import Toolset

__all__ = ["StepContext", "timing"]


@dataclass(frozen=True)
class StepContext:
    """Shared by every step of one compiled graph; never changed during a run (parallel
    calls read it at once)."""

    spec: GraphSpec
    toolset: Toolset
    planner: Planner
    #: binding key -> what its tool publishes (descriptions, schemas, labels, threshold)
    tools: Mapping[str, ToolInfo]
    #: planner for nodes with `planner: frontier` (None: the frontier is not configured)
    frontier_planner: Planner | None = None
    answerer: FrontierAnswerer | None = None
    composer: Composer | None = None
    #: binding key -> the specialist's own output checks (``Specialist.verify_json``)
    verifiers: Mapping[str, OwnChecks] = field(default_factory=dict)
    #: where finished subtasks are recorded (None: no trace store)
    recorder: TraceRecorder | None = None
    #: binding key -> (MCP server, tool) for the bindings reached over MCP, named on spans
    mcp_routes: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    #: whether the graph's nodes run inside OpenTelemetry spans (see ``orchestrator._tracing``)
    traced: bool = False

    @cached_property
    def checker(self) -> ResultChecker:
        # One per context: it caches a compiled JSON Schema validator per tool.
        return ResultChecker(self.spec, self.tools, self.verifiers)

    @cached_property
    def subtask_ids(self) -> frozenset[str]:
        # Read on every routing decision: computed once per graph, not per run.
        return frozenset(self.spec.subtasks())

    def frontier_key(self) -> str:
        """The environment variable that would configure the frontier model, for messages."""
        return self.spec.frontier.key_env() if self.spec.frontier else "an API key"


def timing(node: str, kind: str, start: float) -> dict[str, Any]:
    """The ``timings`` entry of one step that started at ``start`` (perf_counter), with the
    wall-clock time it started at (``at``, seconds since the epoch): parallel steps overlap,
    so a run's parts are added up over time, not by summing them."""
    ms = (time.perf_counter() - start) * 1000
    return {"node": node, "kind": kind, "ms": ms, "at": time.time() - ms / 1000}
