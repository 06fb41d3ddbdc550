"""Planners turn a request into a typed plan of subtasks."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from orchestrator._contracts import Plan, RunRequest, Subtask, ToolInfo

__all__ = ["DeclaredSubtask", "LocalPlanner", "PlanStep", "Planner", "SentenceEncoder"]


@dataclass(frozen=True)
class DeclaredSubtask:
    """A subtask the graph declares for a node: what a planner may run."""

    id: str
    #: the specialist binding (tool) it calls
    specialist: str
    #: arguments; strings may hold {{ templates }} that dispatch fills in
    input: Mapping[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    #: "always" runs it; "similarity" runs it when the request is close enough to the tool
    select: Literal["always", "similarity"] = "always"
    #: cosine threshold for select="similarity"
    min_similarity: float = 0.2


@dataclass(frozen=True)
class PlanStep:
    """What a planner is asked to plan: one specialists node of the graph."""

    node: str
    declared: Sequence[DeclaredSubtask]
    #: tool name -> what the toolset publishes about it (descriptions, schemas)
    tools: Mapping[str, ToolInfo]
    #: the tools this node may use (empty: all of them)
    allowed: Sequence[str] = ()


@runtime_checkable
class Planner(Protocol):
    """Turns a request into a plan for one specialists node; ``name`` is recorded in the
    result (``local``, ``frontier``)."""

    name: str

    async def plan(self, request: RunRequest, step: PlanStep) -> Plan: ...


@runtime_checkable
class SentenceEncoder(Protocol):
    """What the local planner needs to compare a request with tool descriptions."""

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One L2-normalised row per text."""
        ...


class LocalPlanner:
    """Plans without an LLM, from the graph file's declarations.

    Subtasks marked ``select: always`` always run. Subtasks marked ``select: similarity`` run
    when the cosine similarity between the request and the tool's description reaches the
    subtask's ``min_similarity``. A subtask whose dependency was left out is left out too.
    Every omission is recorded in the plan with its reason.
    """

    name = "local"

    def __init__(self, encoder: SentenceEncoder | None = None) -> None:
        """``encoder`` defaults to the bundled one, loaded when a similarity subtask first
        needs it (graphs whose subtasks always run never load a model here)."""
        self._encoder = encoder

    def _encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if self._encoder is None:
            from orchestrator.specialists.backends.encoder import bundled_encoder

            self._encoder = bundled_encoder()
        return self._encoder.encode(texts)

    async def plan(self, request: RunRequest, step: PlanStep) -> Plan:
        similarity: dict[str, float] = {}
        wanted = [s for s in step.declared if s.select == "similarity"]
        if wanted:
            descriptions = [step.tools[s.specialist].description for s in wanted]
            vectors = await asyncio.to_thread(self._encode, [request.text, *descriptions])
            for sub, vec in zip(wanted, vectors[1:], strict=True):
                similarity[sub.id] = float(vectors[0] @ vec)
        chosen: list[Subtask] = []
        skipped: dict[str, str] = {}
        for sub in step.declared:
            if sub.id in similarity and similarity[sub.id] < sub.min_similarity:
                skipped[sub.id] = (
                    f"similarity {similarity[sub.id]:.2f} < min_similarity {sub.min_similarity:.2f}"
                )
                continue
            missing = [d for d in sub.depends_on if d in skipped]
            if missing:
                skipped[sub.id] = f"depends on skipped {', '.join(missing)}"
                continue
            chosen.append(
                Subtask(
                    id=sub.id,
                    specialist=sub.specialist,
                    input=dict(sub.input),
                    depends_on=tuple(sub.depends_on),
                    step=step.node,
                )
            )
        parts = [f"{len(chosen)} of {len(step.declared)} declared subtasks"]
        if similarity:
            parts.append(
                "similarity " + ", ".join(f"{k}={v:.2f}" for k, v in sorted(similarity.items()))
            )
        return Plan(
            subtasks=tuple(chosen), planner=self.name, rationale="; ".join(parts), skipped=skipped
        )
