"""Thread leases in PostgreSQL: one runner per thread across every worker of one database.

The same lease record as the SQLite store (owner, expiry, start request), in a table of the
database the checkpoints are in. The check-and-take is one transaction that locks the
thread's row (``SELECT ... FOR UPDATE``), so two workers that resume one thread at once
serialise there: the second waits for the lease or is refused, as on SQLite.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from orchestrator._leases import LeaseState, ThreadLeases, _free
from orchestrator._postgres import connect_pool, schema_lock

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

__all__ = ["PostgresThreadLeases"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orchestrator_thread_leases (
    thread_id TEXT PRIMARY KEY,
    owner TEXT,
    expires_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    request JSONB,
    started_at DOUBLE PRECISION NOT NULL
)
"""


class PostgresThreadLeases(ThreadLeases):
    """Leases in the ``orchestrator_thread_leases`` table: through a pool that is open
    (the checkpointer's), or through one of its own to `url`, opened on first use and
    closed by :meth:`aclose`."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any] | None = None,
        *,
        url: str | None = None,
        ttl_s: float = 30.0,
    ) -> None:
        if (pool is None) == (url is None):
            raise ValueError("give the pool of a session, or the url of a database")
        self._pool, self._url = pool, url
        self._loop: asyncio.AbstractEventLoop | None = None  # of the pool it opened
        self._opening: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self.ttl_s = ttl_s
        self._ready = False

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        assert self._pool is not None, "the pool opens on first use"
        return self._pool

    async def _schema(self) -> None:
        loop = asyncio.get_running_loop()
        if self._url is not None and self._loop is not loop:
            # A pool of its own serves one event loop (a script may run several); the
            # first caller on a loop opens it, the others wait for it.
            if self._opening is None or self._opening[0] is not loop:
                self._opening = (loop, asyncio.Lock())
            async with self._opening[1]:
                if self._loop is not loop:
                    self._pool = await connect_pool(self._url, max_size=4)
                    self._loop = loop
        if not self._ready:
            async with self.pool.connection() as conn, schema_lock(conn):
                await conn.execute(_SCHEMA)
            self._ready = True

    async def aclose(self) -> None:
        if self._url is not None and self._pool is not None:
            pool, loop, self._pool, self._loop = self._pool, self._loop, None, None
            if loop is asyncio.get_running_loop():  # else it went with its loop
                await pool.close()

    async def acquire(
        self, thread_id: str, owner: str, ttl_s: float, request: dict[str, Any] | None
    ) -> str | None:
        from psycopg.types.json import Jsonb  # the postgres extra, installed with the pool

        await self._schema()
        now = time.time()
        async with self.pool.connection() as conn, conn.transaction():
            # The row exists before it is locked, so that two first takers also serialise.
            await conn.execute(
                "INSERT INTO orchestrator_thread_leases (thread_id, owner, expires_at, request, "
                "started_at) VALUES (%s, NULL, 0, %s, %s) ON CONFLICT (thread_id) DO NOTHING",
                (thread_id, Jsonb(request) if request is not None else None, now),
            )
            cur = await conn.execute(
                "SELECT owner, expires_at FROM orchestrator_thread_leases "
                "WHERE thread_id = %s FOR UPDATE",
                (thread_id,),
            )
            row = await cur.fetchone()
            assert row is not None
            state = LeaseState(_get(row, "owner", 0), float(_get(row, "expires_at", 1)))
            if not _free(state, owner, now):
                return str(state.owner)
            await conn.execute(
                "UPDATE orchestrator_thread_leases SET owner = %s, expires_at = %s, "
                "request = COALESCE(request, %s) WHERE thread_id = %s",
                (owner, now + ttl_s, Jsonb(request) if request is not None else None, thread_id),
            )
        return None

    async def renew(self, thread_id: str, owner: str, ttl_s: float) -> bool:
        await self._schema()
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE orchestrator_thread_leases SET expires_at = %s "
                "WHERE thread_id = %s AND owner = %s",
                (time.time() + ttl_s, thread_id, owner),
            )
            return bool(cur.rowcount == 1)

    async def release(self, thread_id: str, owner: str) -> None:
        await self._schema()
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE orchestrator_thread_leases SET owner = NULL, expires_at = 0 "
                "WHERE thread_id = %s AND owner = %s",
                (thread_id, owner),
            )

    async def start_request(self, thread_id: str) -> dict[str, Any] | None:
        await self._schema()
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT request FROM orchestrator_thread_leases WHERE thread_id = %s",
                (thread_id,),
            )
            row = await cur.fetchone()
        stored = _get(row, "request", 0) if row is not None else None
        return dict(stored) if isinstance(stored, dict) else None


def _get(row: Any, name: str, index: int) -> Any:
    """A column of a row from a pool with either row factory (dicts, or tuples)."""
    return row[name] if isinstance(row, dict) else row[index]
