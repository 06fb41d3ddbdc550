"""Graph factories for ``langgraph dev`` and LangGraph Platform (see ``langgraph.json``).

The host supplies its own checkpointer and calls the factory inside its event loop. Invoke
the graph with ``{"request": {"text": "..."}}``; the final state holds fields, results and
verdicts as plain data.
"""

from __future__ import annotations

from typing import Any

from orchestrator._orchestrator import Orchestrator
from orchestrator.graphs import shipped_graphs

__all__ = ["contract_review", "support_triage"]


async def _shipped(name: str) -> Any:
    # In-process specialists: a graph factory may be called per run, and must not leave a
    # server process behind each time.
    spec = Orchestrator.from_file(shipped_graphs()[name]).spec
    return await Orchestrator(spec, checkpointer="none", inprocess=True).acompile()


async def support_triage() -> Any:
    """The shipped support-triage graph, compiled."""
    return await _shipped("support_triage")


async def contract_review() -> Any:
    """The shipped contract-review graph, compiled (needs a trained clauses artifact)."""
    return await _shipped("contract_review")
