"""Checkpointer factories: where a run's progress is saved so that it can be resumed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from orchestrator._errors import ConfigurationError

__all__ = ["CheckpointerKind", "open_checkpointer"]

CheckpointerKind = Literal["sqlite", "memory", "none"]
"""The checkpointers named by a string: ``sqlite`` (resumable, on disk), ``memory`` (for the
life of the process) or ``none``."""
SQLITE_FILE = "checkpoints.sqlite"


@asynccontextmanager
async def open_checkpointer(
    kind: CheckpointerKind | BaseCheckpointSaver[str],
    state_dir: Path,
    memory: InMemorySaver | None = None,
) -> AsyncIterator[BaseCheckpointSaver[str] | None]:
    """Open the checkpointer for a session of runs, and close it afterwards.

    ``sqlite`` (the default) writes ``checkpoints.sqlite`` in ``state_dir``; ``memory`` keeps
    checkpoints for the life of the process; ``none`` keeps nothing (no resume). Any
    LangGraph ``BaseCheckpointSaver`` instance is used as given.
    """
    if isinstance(kind, BaseCheckpointSaver):
        yield kind
    elif kind == "none":
        yield None
    elif kind == "memory":
        yield memory or InMemorySaver()
    elif kind == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the state directory {state_dir}: {exc}; choose another with "
                "state_dir= (CLI: --state-dir)"
            ) from exc
        async with AsyncSqliteSaver.from_conn_string(str(state_dir / SQLITE_FILE)) as saver:
            yield saver
    else:
        raise ConfigurationError(
            f"unknown checkpointer {kind!r}; use 'sqlite', 'memory', 'none' or a LangGraph "
            "BaseCheckpointSaver instance"
        )
