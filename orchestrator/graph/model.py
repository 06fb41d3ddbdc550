"""The declarative graph format as pydantic models: every section of a graph file and
:class:`GraphModel`, the whole file. Loading lives in :mod:`.loader`; :mod:`.spec` joins the
two as :class:`~orchestrator.GraphSpec`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.specialists.backends.endpoint import EndpointConfig
from orchestrator.tools._config import transport_problem

__all__ = [
    "DEFAULT_INPUT",
    "END",
    "START",
    "ComposeNodeSpec",
    "EdgeSpec",
    "FrontierRung",
    "FrontierSpec",
    "GraphModel",
    "HumanRung",
    "Identifier",
    "LearnSpec",
    "MCPServerSpec",
    "NodeSpec",
    "Policies",
    "Rung",
    "ServedEndpointSpec",
    "SetNodeSpec",
    "SpecialistBinding",
    "SpecialistRung",
    "SpecialistsNodeSpec",
    "SubtaskSpec",
    "VoteRung",
]

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
START = "START"
END = "END"
DEFAULT_INPUT: dict[str, Any] = {"text": "{{ request.text }}"}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Policies(_Spec):
    """Limits and thresholds for the whole graph; specialists may override some."""

    timeout_s: float = Field(default=30.0, gt=0, le=3600, description="Per tool call, in seconds.")
    retries: int = Field(
        default=2, ge=0, le=10, description="Extra attempts after a transport failure or timeout."
    )
    retry_backoff_s: float = Field(
        default=0.2, ge=0, le=60, description="First back-off between attempts; doubles each time."
    )
    min_confidence: float = Field(
        default=0.5, ge=0, le=1, description="Results below this confidence fail verification."
    )
    durability: Literal["sync", "async", "exit"] = Field(
        default="async",
        description=(
            "When checkpoints are written: 'sync' before each step goes on, 'async' while the "
            "next step runs, 'exit' only when the run ends (fastest; no mid-run resume)."
        ),
    )
    max_steps: int = Field(
        default=100, ge=1, le=10_000, description="Upper bound on graph steps (loops included)."
    )


class MCPServerSpec(_Spec):
    """An MCP server, declared as desktop assistants declare them: a command to launch
    (stdio) or a URL (streamable HTTP)."""

    command: str | None = Field(
        default=None,
        description=(
            "Program to launch for a stdio server. `orchestrator` means this installation's "
            "own server (`orchestrator serve ...`), whatever is on PATH."
        ),
    )
    args: list[str] = Field(default_factory=list, description="Arguments of the command.")
    env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment variables for the command."
    )
    cwd: str | None = Field(
        default=None, description="Working directory of the command (relative to the file)."
    )
    url: str | None = Field(default=None, description="Endpoint of a streamable HTTP server.")
    bearer_token_env: str | None = Field(
        default=None,
        description="Name of the environment variable that holds the HTTP bearer token.",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers.")
    pool_size: int = Field(
        default=1, ge=1, le=32, description="Long-lived sessions kept open to this server."
    )
    connect_timeout_s: float = Field(
        default=120, gt=0, le=3600, description="How long starting and connecting may take."
    )

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerSpec:
        problem = transport_problem(self)
        if problem:
            raise ValueError(problem)
        return self


class FrontierSpec(_Spec):
    """The frontier model: it plans where a node asks it to, answers subtasks the ladder
    escalates to it, and writes composed answers."""

    provider: Literal["anthropic", "openai"] = Field(
        default="anthropic",
        description="anthropic (Claude), or openai for any OpenAI-compatible server (vLLM...).",
    )
    model: str = Field(default="claude-sonnet-5", description="Model name sent to the API.")
    base_url: str | None = Field(
        default=None, description="API endpoint; required for an OpenAI-compatible server."
    )
    api_key_env: str | None = Field(
        default=None,
        description="Environment variable with the API key (default ANTHROPIC_API_KEY, or "
        "OPENAI_API_KEY for openai).",
    )
    max_tokens: int = Field(default=1024, ge=16, le=64_000, description="Per answer.")
    timeout_s: float = Field(default=60, gt=0, le=600, description="Per API request.")
    retries: int = Field(
        default=4, ge=0, le=10, description="Extra attempts on 429, 529, 5xx and lost connections."
    )
    max_corrections: int = Field(
        default=2, ge=0, le=5, description="Times an invalid plan or answer is sent back."
    )
    plans_read_metadata: bool = Field(
        default=False,
        description="Whether the model's plans may read request.metadata in their templates "
        "(off: metadata may hold what no tool should see).",
    )

    def key_env(self) -> str:
        if self.api_key_env:
            return self.api_key_env
        return "ANTHROPIC_API_KEY" if self.provider == "anthropic" else "OPENAI_API_KEY"


class VoteRung(_Spec):
    """Ask the same specialist again on variants of the input and take the majority."""

    kind: Literal["vote"]
    variants: int = Field(default=3, ge=2, le=9, description="How many variants of the input.")


class SpecialistRung(_Spec):
    """Ask a stronger specialist (another binding of this graph)."""

    kind: Literal["specialist"]
    specialist: Identifier


class FrontierRung(_Spec):
    """Let the frontier model answer the subtask itself."""

    kind: Literal["frontier"]


class HumanRung(_Spec):
    """Pause the run until a person approves, corrects or rejects the answer."""

    kind: Literal["human"]
    note: str = Field(default="", description="Shown to the reviewer.")


Rung = Annotated[VoteRung | SpecialistRung | FrontierRung | HumanRung, Field(discriminator="kind")]


class ServedEndpointSpec(_Spec, EndpointConfig):
    """Where a specialist's model is hosted when ``backend`` is ``vllm``: a vLLM server, or any
    server that speaks the OpenAI-compatible API (llama.cpp's, for one)."""


class LearnSpec(_Spec):
    """Distillation in the background: every escalation teaches the specialist."""

    every: int = Field(
        ge=1,
        le=1_000_000,
        description="Distil a candidate after this many new teacher labels (escalations a "
        "teacher answered); it replaces the served version only if the promotion gate passes.",
    )
    self_labels: bool = Field(
        default=False,
        description="Train candidates on the specialist's own accepted answers too "
        "(self-training); held-out teacher labels still decide the promotion.",
    )


class SpecialistBinding(_Spec):
    """A specialist the graph uses, and how it is reached."""

    uses: Identifier | None = Field(
        default=None, description="Registered specialist name; defaults to this entry's key."
    )
    via: str = Field(
        default="inprocess",
        description="`inprocess`, or the name of an MCP server declared under `servers`.",
    )
    tool: str | None = Field(
        default=None, description="Tool name on the MCP server; defaults to `uses`, then the key."
    )
    description: str | None = Field(
        default=None, description="Overrides the specialist's own description for planners."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Passed to the specialist; checked against its options."
    )
    min_confidence: float | None = Field(
        default=None, ge=0, le=1, description="Overrides policies.min_confidence."
    )
    timeout_s: float | None = Field(
        default=None, gt=0, le=3600, description="Overrides policies.timeout_s."
    )
    escalation: list[Rung] | None = Field(
        default=None, description="Overrides the graph's escalation ladder for this specialist."
    )
    backend: Identifier = Field(
        default="local",
        description="A registered backend. local: the model runs on this machine's CPU; vllm: "
        "on the server that `endpoint` names (see `orchestrator specialists serve-command`); "
        "others through the `orchestrator.backends` entry point.",
        examples=["local", "vllm"],
    )
    endpoint: ServedEndpointSpec | None = Field(
        default=None,
        description="The server of a backend that runs the model elsewhere (`backend: vllm`).",
    )
    record: bool = Field(
        default=True,
        description="Keep each subtask in the trace store (input, answer, confidence, verdict, "
        "final answer and its source); secrets are never stored.",
    )
    redact: list[str] = Field(
        default_factory=list,
        description="Fields of the input and answers stored as *** in the trace store "
        "(`a.b` for a nested key).",
    )
    learn: LearnSpec | None = Field(
        default=None,
        description="Distil new versions of the binding's trained artifact from its teacher "
        "labels, off the request path; later runs use the promoted version.",
    )

    @model_validator(mode="after")
    def _learns_from_records(self) -> SpecialistBinding:
        if self.learn is not None and not self.record:
            raise ValueError("`learn` needs the traces that `record: false` switches off")
        if self.learn is not None and not isinstance(self.options.get("artifact"), str):
            raise ValueError(
                "`learn` distils a trained artifact: name it in `options.artifact` (a name in "
                "the artifact store; train one with `orchestrator specialists train`)"
            )
        return self


class SubtaskSpec(_Spec):
    """A subtask a specialists node may run."""

    id: Identifier = Field(description="Unique in the graph; conditions read the result by it.")
    specialist: Identifier = Field(description="A key of the graph's `specialists` section.")
    input: dict[str, Any] = Field(
        default_factory=lambda: dict(DEFAULT_INPUT),
        description="Arguments; strings may hold {{ expressions }}. Default: the request text.",
    )
    depends_on: list[Identifier] = Field(
        default_factory=list, description="Subtasks of the same node that must finish first."
    )
    select: Literal["always", "similarity"] = Field(
        default="always",
        description=(
            "'always' runs the subtask; 'similarity' lets the local planner run it only when the "
            "request is similar enough to the specialist's description."
        ),
    )
    min_similarity: float = Field(
        default=0.2, ge=-1, le=1, description="Cosine threshold for select: similarity."
    )


class SpecialistsNodeSpec(_Spec):
    """A node that plans, dispatches, verifies and merges specialist subtasks."""

    kind: Literal["specialists"]
    description: str = ""
    planner: Literal["local", "frontier"] = Field(
        default="local",
        description=(
            "local: the declared subtasks (no LLM); frontier: the frontier model plans from the "
            "tools' descriptions, falling back to the declared subtasks when no key is set."
        ),
    )
    tools: list[Identifier] | None = Field(
        default=None, description="Specialists the frontier planner may use (default: all)."
    )
    subtasks: list[SubtaskSpec] = Field(
        default_factory=list, description="Declared subtasks (required for the local planner)."
    )

    @model_validator(mode="after")
    def _has_work(self) -> SpecialistsNodeSpec:
        if self.planner == "local" and not self.subtasks:
            raise ValueError("a node with the local planner needs `subtasks`")
        return self


class SetNodeSpec(_Spec):
    """A node that writes result fields: literals, or {{ expressions }} over earlier results."""

    kind: Literal["set"]
    description: str = ""
    set: dict[Identifier, Any] = Field(min_length=1)


class ComposeNodeSpec(_Spec):
    """The frontier model writes one field (say, a reply) from verified fields only."""

    kind: Literal["compose"]
    description: str = ""
    instructions: str = Field(min_length=1, description="What to write, for the model.")
    fields: list[str] | None = Field(
        default=None, description="Fields it may read (default: every verified field)."
    )
    output: Identifier = Field(default="answer", description="The field it writes.")


NodeSpec = Annotated[
    SpecialistsNodeSpec | SetNodeSpec | ComposeNodeSpec, Field(discriminator="kind")
]


class EdgeSpec(_Spec):
    """A transition. Edges out of a node are tried in file order; the first whose `when`
    holds is taken, and the one edge without `when` is the default."""

    source: str = Field(alias="from", description="A node name, or START.")
    to: str = Field(description="A node name, or END.")
    when: str | None = Field(
        default=None, description="A condition such as \"sentiment.label == 'negative'\"."
    )


class GraphModel(_Spec):
    """A whole graph file, as data (see GraphSpec for loading one)."""

    version: Literal[1] = 1
    name: Identifier
    description: str = ""
    servers: dict[Identifier, MCPServerSpec] = Field(
        default_factory=dict, description="MCP servers that specialists are reached through."
    )
    specialists: dict[Identifier, SpecialistBinding] = Field(min_length=1)
    policies: Policies = Field(default_factory=Policies)
    frontier: FrontierSpec | None = Field(
        default=None, description="The frontier model (planner, escalation rung, composer)."
    )
    escalation: list[Rung] = Field(
        default_factory=list,
        description="What to try, in order, when a result fails verification.",
    )
    nodes: dict[Identifier, NodeSpec] = Field(min_length=1)
    edges: list[EdgeSpec] = Field(min_length=1)

    # -- helpers used by the compiler and the checks ---------------------------------------
    def subtasks(self) -> dict[str, tuple[str, SubtaskSpec]]:
        """Every subtask id with the node that owns it."""
        found: dict[str, tuple[str, SubtaskSpec]] = {}
        for node_name, node in self.nodes.items():
            if isinstance(node, SpecialistsNodeSpec):
                for sub in node.subtasks:
                    found.setdefault(sub.id, (node_name, sub))
        return found

    def specialist_name(self, binding_key: str) -> str:
        binding = self.specialists[binding_key]
        return binding.uses or binding_key

    def tool_name(self, binding_key: str) -> str:
        """The tool's name where the binding reaches it (on its MCP server)."""
        binding = self.specialists[binding_key]
        return binding.tool or binding.uses or binding_key

    def min_confidence(self, binding_key: str) -> float:
        value = self.specialists[binding_key].min_confidence
        return self.policies.min_confidence if value is None else value

    def timeout_s(self, binding_key: str) -> float:
        value = self.specialists[binding_key].timeout_s
        return self.policies.timeout_s if value is None else value

    def ladder(self, binding_key: str) -> list[Rung]:
        own = self.specialists[binding_key].escalation if binding_key in self.specialists else None
        return list(self.escalation if own is None else own)

    def edges_from(self, node: str) -> list[EdgeSpec]:
        return [e for e in self.edges if e.source == node]
