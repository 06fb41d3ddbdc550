"""Planners turn a request into a typed plan of subtasks."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from orchestrator._contracts import Plan, RunRequest, Subtask, ToolInfo
from orchestrator.graph.spec import SubtaskSpec
from orchestrator.specialists.backends.encoder import TextEncoder, bundled_encoder

__all__ = ["LocalPlanner", "PlanStep", "Planner"]


@dataclass(frozen=True)
class PlanStep:
    """What a planner is asked to plan: one specialists node of the graph."""

    node: str
    declared: Sequence[SubtaskSpec]
    #: tool name -> what the toolset publishes about it (descriptions, schemas)
    tools: Mapping[str, ToolInfo]
    #: the tools this node may use (empty: all of them)
    allowed: Sequence[str] = ()


@runtime_checkable
class Planner(Protocol):
    name: str

    async def plan(self, request: RunRequest, step: PlanStep) -> Plan: ...


class LocalPlanner:
    """Plans without an LLM, from the graph file's declarations.

    Subtasks marked ``select: always`` always run. Subtasks marked ``select: similarity`` run
    when the cosine similarity between the request and the tool's description reaches the
    subtask's ``min_similarity``. A subtask whose dependency was left out is left out too.
    Every omission is recorded in the plan with its reason.
    """

    name = "local"

    def __init__(self, encoder: TextEncoder | None = None) -> None:
        self._encoder = encoder

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        encoder = self._encoder or bundled_encoder()
        return encoder.encode(texts)

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
