"""orchestrator: specialist-first agent systems.

A planner splits a request into subtasks, small specialist models do the narrow work, the
framework verifies what they return, escalates what fails and merges the rest into one typed
result with provenance, cost and timings.
"""

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
    ToolTimeoutError,
    ToolTransportError,
    UnknownSpecialistError,
    UsageError,
)
from orchestrator._ledger import PriceTable
from orchestrator._logging import configure_logging
from orchestrator._orchestrator import Orchestrator
from orchestrator._version import __version__
from orchestrator.agents import DeclaredSubtask, LocalPlanner, Planner, PlanStep, SentenceEncoder
from orchestrator.agents._frontier import FrontierModel
from orchestrator.graph.spec import GraphSpec, graph_json_schema
from orchestrator.specialists import Prediction, Specialist, default_registry, register_specialist
from orchestrator.tools import InProcessToolset, Toolset

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
