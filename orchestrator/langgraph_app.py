"""Graph factories for ``langgraph dev`` and LangGraph Platform (see ``langgraph.json``).

The host supplies its own checkpointer and calls the factory inside its event loop. Invoke
the graph with ``{"request": {"text": "..."}}``; the final state holds fields, results and
verdicts as plain data.
"""

from __future__ import annotations

import asyncio
from typing import Any

from orchestrator._orchestrator import Orchestrator
from orchestrator.graphs import shipped_graphs

__all__ = ["contract_review", "support_triage"]


def _orchestrator(name: str) -> Orchestrator:
    # In-process specialists: the host's process holds the models, no server process is
    # started behind it.
    return Orchestrator.from_file(shipped_graphs()[name], checkpointer="none", inprocess=True)


# The compiled graphs, built once per process: the host calls a factory for every run, and
# loading the models each time made each run slow (`langgraph dev` logged "Slow graph load").
_built: dict[str, Any] = {}


async def _shipped(name: str) -> Any:
    graph = _built.get(name)
    if graph is None:
        # The host runs factories on its event loop and fails a blocking call there
        # (`langgraph dev` checks with blockbuster): the graph file is read in a thread.
        orchestrator = await asyncio.to_thread(_orchestrator, name)
        graph = _built.setdefault(name, await orchestrator.acompile())
    return graph


async def support_triage() -> Any:
    """The shipped support-triage graph, compiled."""
    return await _shipped("support_triage")


async def contract_review() -> Any:
    """The shipped contract-review graph, compiled (needs a trained clauses artifact)."""
    return await _shipped("contract_review")
