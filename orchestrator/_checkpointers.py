"""Checkpointer factories: where a run's progress is saved so that it can be resumed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal, get_args

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from orchestrator import _postgres as postgres
from orchestrator._errors import ConfigurationError

__all__ = ["CHECKPOINTER_KINDS", "CheckpointerKind", "open_checkpointer"]

CheckpointerKind = Literal["sqlite", "postgres", "memory", "none"]
"""The checkpointers named by a string: ``sqlite`` (resumable, on disk), ``postgres``
(resumable, shared by every worker of one database), ``memory`` (for the life of the process)
or ``none``."""
CHECKPOINTER_KINDS: tuple[str, ...] = get_args(CheckpointerKind)
SQLITE_FILE = "checkpoints.sqlite"


@asynccontextmanager
async def open_checkpointer(
    kind: CheckpointerKind | BaseCheckpointSaver[str],
    state_dir: Path,
    memory: InMemorySaver | None = None,
    database_url: str | None = None,
) -> AsyncIterator[BaseCheckpointSaver[str] | None]:
    """Open the checkpointer for a session of runs, and close it afterwards.

    ``sqlite`` (the default) writes ``checkpoints.sqlite`` in ``state_dir``; ``memory`` keeps
    checkpoints for the life of the process; ``none`` keeps nothing (no resume);
    ``postgres`` uses LangGraph's PostgreSQL saver on a pool of connections to
    `database_url` (else ``ORCHESTRATOR_DATABASE_URL``). Any LangGraph
    ``BaseCheckpointSaver`` instance is used as given.
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
            await asyncio.to_thread(state_dir.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the state directory {state_dir}: {exc}; choose another with "
                "state_dir= (CLI: --state-dir)"
            ) from exc
        async with AsyncSqliteSaver.from_conn_string(str(state_dir / SQLITE_FILE)) as saver:
            yield saver
    elif kind == "postgres":
        async with open_postgres_saver(database_url) as saver:
            yield saver
    else:
        raise ConfigurationError(
            f"unknown checkpointer {kind!r}; use 'sqlite', 'postgres', 'memory', 'none' or a "
            "LangGraph BaseCheckpointSaver instance"
        )


_SET_UP: set[str] = set()


@asynccontextmanager
async def open_postgres_saver(database_url: str | None) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """LangGraph's async PostgreSQL saver over a pool; its tables are created (``setup()``)
    once per database and process."""
    url = postgres.database_url(database_url)
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError:
        raise postgres.missing_extra("PostgreSQL") from None
    async with postgres.open_pool(url) as pool:
        saver = AsyncPostgresSaver(pool)
        if url not in _SET_UP:
            async with pool.connection() as conn, postgres.schema_lock(conn):
                await saver.setup()
            _SET_UP.add(url)
        yield saver
