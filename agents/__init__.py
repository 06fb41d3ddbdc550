"""Planners, verifiers and composers: the LLM-backed roles, and a local planner that needs none."""

from orchestrator.agents._planner import LocalPlanner, Planner, PlanStep

__all__ = ["LocalPlanner", "PlanStep", "Planner"]
