"""Planners, verifiers and composers: the LLM-backed roles, and a local planner that needs none."""
