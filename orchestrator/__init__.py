"""orchestrator: specialist-first agent systems.

A planner splits a request into subtasks, small specialist models do the narrow work, the
framework verifies what they return, escalates what fails and merges the rest into one typed
result with provenance, cost and timings.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from orchestrator._version import __version__

if TYPE_CHECKING:  # what type checkers and editors see; at run time, __getattr__ below
    from orchestrator._checkpointers import CheckpointerKind
    from orchestrator._contracts import (
        Escalation,
        FieldProvenance,
        Plan,
        ResultField,
        RunEvent,
        RunRequest,
        RunResult,
        SpecialistResult,
        Subtask,
        SubtaskReport,
        ToolInfo,
        ToolOutput,
        Verdict,
    )
    from orchestrator._errors import (
        ConfigurationError,
        GraphFileError,
        GraphIssue,
        InvalidArgumentError,
        OrchestratorError,
        RunError,
        SpecialistError,
        ThreadBusyError,
        ToolTimeoutError,
        ToolTransportError,
        UnknownSpecialistError,
        UsageError,
    )
    from orchestrator._leases import ThreadLeases
    from orchestrator._ledger import PriceTable
    from orchestrator._logging import configure_logging
    from orchestrator._orchestrator import Orchestrator
    from orchestrator.agents import (
        DeclaredSubtask,
        LocalPlanner,
        Planner,
        PlanStep,
        SentenceEncoder,
    )
    from orchestrator.agents._frontier import FrontierModel
    from orchestrator.graph.spec import GraphSpec, graph_json_schema
    from orchestrator.specialists import (
        Prediction,
        Specialist,
        default_registry,
        register_specialist,
    )
    from orchestrator.tools import InProcessToolset, Toolset

# Where each public name lives. A name's module is imported when the name is first used, so
# `import orchestrator` loads no model runtime, graph engine, MCP SDK or provider SDK.
_LOCATIONS: dict[str, str] = {
    "CheckpointerKind": "orchestrator._checkpointers",
    "ConfigurationError": "orchestrator._errors",
    "DeclaredSubtask": "orchestrator.agents",
    "Escalation": "orchestrator._contracts",
    "FieldProvenance": "orchestrator._contracts",
    "FrontierModel": "orchestrator.agents._frontier",
    "GraphFileError": "orchestrator._errors",
    "GraphIssue": "orchestrator._errors",
    "GraphSpec": "orchestrator.graph.spec",
    "InProcessToolset": "orchestrator.tools",
    "InvalidArgumentError": "orchestrator._errors",
    "LocalPlanner": "orchestrator.agents",
    "Orchestrator": "orchestrator._orchestrator",
    "OrchestratorError": "orchestrator._errors",
    "Plan": "orchestrator._contracts",
    "PlanStep": "orchestrator.agents",
    "Planner": "orchestrator.agents",
    "Prediction": "orchestrator.specialists",
    "PriceTable": "orchestrator._ledger",
    "ResultField": "orchestrator._contracts",
    "RunError": "orchestrator._errors",
    "RunEvent": "orchestrator._contracts",
    "RunRequest": "orchestrator._contracts",
    "RunResult": "orchestrator._contracts",
    "SentenceEncoder": "orchestrator.agents",
    "Specialist": "orchestrator.specialists",
    "SpecialistError": "orchestrator._errors",
    "SpecialistResult": "orchestrator._contracts",
    "Subtask": "orchestrator._contracts",
    "SubtaskReport": "orchestrator._contracts",
    "ThreadBusyError": "orchestrator._errors",
    "ThreadLeases": "orchestrator._leases",
    "ToolInfo": "orchestrator._contracts",
    "ToolOutput": "orchestrator._contracts",
    "ToolTimeoutError": "orchestrator._errors",
    "ToolTransportError": "orchestrator._errors",
    "Toolset": "orchestrator.tools",
    "UnknownSpecialistError": "orchestrator._errors",
    "UsageError": "orchestrator._errors",
    "Verdict": "orchestrator._contracts",
    "configure_logging": "orchestrator._logging",
    "default_registry": "orchestrator.specialists",
    "graph_json_schema": "orchestrator.graph.spec",
    "register_specialist": "orchestrator.specialists",
}

__all__ = [
    "CheckpointerKind",
    "ConfigurationError",
    "DeclaredSubtask",
    "Escalation",
    "FieldProvenance",
    "FrontierModel",
    "GraphFileError",
    "GraphIssue",
    "GraphSpec",
    "InProcessToolset",
    "InvalidArgumentError",
    "LocalPlanner",
    "Orchestrator",
    "OrchestratorError",
    "Plan",
    "PlanStep",
    "Planner",
    "Prediction",
    "PriceTable",
    "ResultField",
    "RunError",
    "RunEvent",
    "RunRequest",
    "RunResult",
    "SentenceEncoder",
    "Specialist",
    "SpecialistError",
    "SpecialistResult",
    "Subtask",
    "SubtaskReport",
    "ThreadBusyError",
    "ThreadLeases",
    "ToolInfo",
    "ToolOutput",
    "ToolTimeoutError",
    "ToolTransportError",
    "Toolset",
    "UnknownSpecialistError",
    "UsageError",
    "Verdict",
    "__version__",
    "configure_logging",
    "default_registry",
    "graph_json_schema",
    "register_specialist",
]


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
