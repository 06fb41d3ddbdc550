"""Toolsets: how the graph reaches specialists."""

from orchestrator.tools._toolset import InProcessToolset, Toolset

__all__ = ["InProcessToolset", "Toolset"]
