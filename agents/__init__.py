"""Planners, verifiers and composers: the LLM-backed roles, and a local planner that needs none."""

from orchestrator.agents._planner import (
    DeclaredSubtask,
    LocalPlanner,
    Planner,
    PlanStep,
    SentenceEncoder,
)

__all__ = ["DeclaredSubtask", "LocalPlanner", "PlanStep", "Planner", "SentenceEncoder"]
