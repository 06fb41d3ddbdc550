"""Typed contracts that cross node, tool and API boundaries.

Everything stored in the run state is the JSON form of these models (``model_dump(mode="json")``)
so that checkpoints hold plain data and load back on any machine.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator._visible_text import require_visible_text

__all__ = [
    "Escalation",
    "EscalationStep",
    "FieldProvenance",
    "LedgerEntry",
    "ModelCall",
    "Plan",
    "ResultField",
    "RunEvent",
    "RunLedger",
    "RunRequest",
    "RunResult",
    "SpecialistResult",
    "Subtask",
    "SubtaskReport",
    "ToolInfo",
    "ToolOutput",
    "Verdict",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunRequest(_Model):
    """What a caller asks the orchestrator to do."""

    text: str = Field(min_length=1, description="The request, e.g. a customer message.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Caller data that conditions may read (request.metadata)."
    )
    request_id: str = Field(default_factory=lambda: uuid.uuid4().hex)

    @field_validator("text")
    @classmethod
    def _has_visible_text(cls, text: str) -> str:
        return require_visible_text(text)


class Subtask(_Model):
    """One unit of work for one specialist."""

    id: str = Field(description="Unique within the run; conditions refer to the result by this id.")
    specialist: str = Field(description="Name of the specialist (tool) to call.")
    input: dict[str, Any] = Field(
        description="Arguments, valid against the specialist's input schema."
    )
    depends_on: tuple[str, ...] = Field(
        default=(), description="Subtask ids that must finish first."
    )
    step: str = Field(default="", description="The graph node that owns this subtask.")


class Plan(_Model):
    """A planner's answer: the subtasks to run and why."""

    subtasks: tuple[Subtask, ...]
    planner: str = Field(description="Which planner produced the plan.")
    rationale: str = ""
    skipped: dict[str, str] = Field(
        default_factory=dict, description="Declared subtasks left out, with the reason."
    )
    model_calls: tuple[ModelCall, ...] = Field(
        default=(), description="Remote model calls the planner made (with corrections)."
    )
    error: str | None = Field(
        default=None, description="Why no valid plan could be made; the run then fails."
    )


class ToolInfo(_Model):
    """What a toolset publishes about one tool: enough for a planner to choose it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    labels: tuple[str, ...] | None = None
    summary_fields: tuple[str, ...] | None = Field(
        default=None, description="Output keys that become result fields (None: all of them)."
    )
    threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The specialist's own calibrated acceptance threshold, when it has one.",
    )
    rungs: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Escalation rungs' confidences fitted on validation data for this "
        "specialist (rung name -> its fitted logistic model and threshold).",
    )


class ToolOutput(_Model):
    """The envelope a specialist tool returns, in process or over MCP."""

    output: dict[str, Any]
    confidence: float | None = Field(
        ge=0.0, le=1.0, description="None when the tool reports no confidence (third-party tools)."
    )
    model: str = Field(description="Identifier of the model that produced the output.")
    compute_ms: float = Field(ge=0.0, description="Time spent in the model itself.")
    tokens: int = Field(default=0, ge=0, description="Input tokens processed by the model.")


class ModelCall(_Model):
    """One call to a remote model (a planner, an escalation, a composer), with its usage as
    the API reported it."""

    role: Literal["planner", "escalation", "composer"]
    provider: str = Field(description="anthropic, or openai for any OpenAI-compatible server.")
    model: str
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cache_read_tokens: int = Field(default=0, ge=0)
    cache_write_tokens: int = Field(default=0, ge=0)
    latency_ms: float = Field(ge=0)
    attempts: int = Field(default=1, ge=1)
    subtask_id: str | None = None


class SpecialistResult(_Model):
    """The outcome of one subtask's call, successful or not."""

    subtask_id: str
    specialist: str
    ok: bool
    input: dict[str, Any] = Field(default_factory=dict, description="The arguments sent.")
    output: dict[str, Any] | None = None
    confidence: float | None = None
    model: str | None = None
    latency_ms: float = Field(ge=0.0, description="Wall time of the call, including transport.")
    compute_ms: float = 0.0
    tokens: int = 0
    attempts: int = 1
    error: str | None = Field(default=None, description="Why the call failed, when ok is false.")
    error_kind: str | None = None
    source: Literal["specialist", "vote", "frontier", "human"] = Field(
        default="specialist", description="Who produced the output (escalations replace it)."
    )
    model_calls: tuple[ModelCall, ...] = Field(
        default=(), description="Remote model calls made to produce this result."
    )


class Verdict(_Model):
    """The verifier's judgement of one result."""

    subtask_id: str
    passed: bool
    checks: dict[str, bool] = Field(description="Each check run and whether it passed.")
    reasons: tuple[str, ...] = ()


class EscalationStep(_Model):
    """One rung of the escalation ladder, tried for one subtask."""

    rung: str = Field(description="vote, specialist:NAME, frontier or human.")
    passed: bool
    detail: str = ""
    confidence: float | None = None
    model: str | None = None


class Escalation(_Model):
    """A result that did not pass verification, and what was done about it."""

    subtask_id: str
    reason: str
    rungs_tried: tuple[str, ...] = ()
    steps: tuple[EscalationStep, ...] = ()
    outcome: Literal["resolved", "unresolved", "awaiting_human"] = "unresolved"
    resolved_by: str | None = None


class FieldProvenance(_Model):
    """Where one result field came from."""

    source: Literal["specialist", "rule", "request", "vote", "frontier", "human"] = Field(
        description="Who produced the value: a specialist (or a rung of its ladder: vote, "
        "frontier, human), a rule of the graph, or the request itself (never verified)."
    )
    node: str = Field(description="The graph node that produced the field.")
    specialist: str | None = None
    model: str | None = None
    confidence: float | None = None
    verified: bool
    escalated: bool = False
    derived_from: tuple[str, ...] = Field(
        default=(), description="Subtask ids a rule's branch condition read."
    )


class ResultField(_Model):
    """One field of a run's result: its value, and where it came from."""

    value: Any
    provenance: FieldProvenance


class SubtaskReport(_Model):
    """One subtask as the caller sees it: result, verdict and cost in one row."""

    id: str
    specialist: str
    ok: bool
    verified: bool
    confidence: float | None
    model: str | None
    latency_ms: float
    compute_ms: float
    tokens: int
    attempts: int
    output: dict[str, Any] | None = None
    error: str | None = None
    reasons: tuple[str, ...] = ()
    source: str = Field(default="specialist", description="Who produced the final output.")


class LedgerEntry(_Model):
    """One priced line of the cost ledger: a specialist call or a remote model call."""

    kind: Literal["specialist", "frontier"]
    role: str = Field(description="specialist, planner, escalation or composer.")
    subtask_id: str | None = None
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    compute_ms: float = 0.0
    latency_ms: float = 0.0
    cost_usd: float = Field(ge=0)
    priced: bool = Field(description="False when the price table has no entry for the model.")


class RunLedger(_Model):
    """What a run cost, and what it would have cost with the frontier model doing everything."""

    entries: tuple[LedgerEntry, ...]
    total_usd: float
    frontier_usd: float
    specialist_usd: float
    frontier_share: float = Field(description="Share of the cost spent on frontier calls.")
    frontier_calls: int
    specialist_calls: int
    input_tokens: int
    output_tokens: int
    all_frontier_usd: float = Field(
        description="Estimated cost had the frontier model answered every subtask itself."
    )
    all_frontier_basis: str = Field(description="How that estimate was made.")
    frontier_model: str
    price_table: str


class RunEvent(_Model):
    """A progress event of a streamed run."""

    kind: Literal[
        "started",
        "resumed",
        "planned",
        "called",
        "verified",
        "escalated",
        "merged",
        "set",
        "composed",
        "awaiting_human",
        "finished",
    ]
    node: str = ""
    thread_id: str
    elapsed_ms: float
    detail: dict[str, Any] = Field(default_factory=dict)
    result: RunResult | None = None


class RunResult(_Model):
    """One typed result with provenance for every field, the cost and the timings."""

    graph: str
    thread_id: str
    request: RunRequest
    status: Literal["ok", "partial", "failed", "awaiting_human"] = Field(
        description=(
            "ok: every field verified; partial: some unverified or failed; failed: nothing "
            "usable; awaiting_human: paused until a person answers (resume the thread)."
        )
    )
    error: str | None = Field(default=None, description="Why the run failed, when it did.")
    fields: dict[str, ResultField]
    subtasks: tuple[SubtaskReport, ...]
    skipped: dict[str, str] = Field(
        default_factory=dict, description="Subtasks that did not run, with the reason."
    )
    escalations: tuple[Escalation, ...]
    path: tuple[str, ...] = Field(description="Graph nodes visited, in order.")
    planner: str
    timings_ms: dict[str, float] = Field(
        description=(
            "Wall time per node kind (plan, call, verify, merge, set), the run's total, and "
            "startup (loading models) when the run opened the orchestrator itself."
        )
    )
    compute_ms: float = Field(description="Model compute time summed over calls.")
    tokens: int
    ledger: RunLedger | None = None
    pending_review: tuple[str, ...] = Field(
        default=(), description="Subtasks waiting for a person (resume the thread to answer)."
    )
    notes: tuple[str, ...] = Field(default=(), description="What a person should know.")

    def value(self, name: str) -> Any:
        """The value of one field (``result.value("intent.label")``)."""
        return self.fields[name].value


RunEvent.model_rebuild()
