"""Thread leases: one runner per thread, and the request each thread was started with.

A run takes its thread's lease before it reads the thread's checkpoint and keeps it, renewed
by a heartbeat, until it returns. A second runner of the same thread (another process, or
another task in this one) waits for the lease for a bounded time, then is refused with
:class:`ThreadBusyError`, so the pending work of a thread is never run twice at once.

The lease record also keeps the run's request, written when the thread starts and before
any step runs: a process killed before its first checkpoint leaves a thread that can still
be run from its input instead of being lost.

:class:`ThreadLeases` is the extension point (a PostgreSQL store implements the same five
methods with a row lock); :class:`SqliteThreadLeases` keeps them in ``threads.sqlite`` next
to the checkpoints, :class:`MemoryThreadLeases` in this process only.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator._errors import ThreadBusyError
from orchestrator._logging import get_logger

__all__ = [
    "LEASES_FILE",
    "MemoryThreadLeases",
    "SqliteThreadLeases",
    "ThreadLeases",
    "new_owner",
]

LEASES_FILE = "threads.sqlite"
log = get_logger(__name__)

_HOST = socket.gethostname()


def new_owner() -> str:
    """A lease owner: host and process (so a dead holder on this host is seen at once),
    and a token unique to one run."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _holder_is_dead(owner: str) -> bool:
    """Whether the owner is a process of this host that no longer exists (killed, crashed).
    A holder on another host is only taken over once its lease expires."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


@dataclass(frozen=True)
class LeaseState:
    """The lease record of one thread as a store holds it."""

    owner: str | None
    expires_at: float


def _free(state: LeaseState | None, owner: str, now: float) -> bool:
    """Whether `owner` may take a lease in `state`: none held, its own, expired, or held by
    a dead process."""
    return (
        state is None
        or state.owner is None
        or state.owner == owner
        or state.expires_at <= now
        or _holder_is_dead(state.owner)
    )


class ThreadLeases(ABC):
    """Where thread leases and start requests are kept. Implement the five methods for a
    store shared by every runner (each must be atomic in that store); :meth:`hold` is the
    protocol built on them."""

    #: how long a lease lasts without a heartbeat (a holder on another host that died is
    #: taken over after this long); the heartbeat renews it at a third of it.
    ttl_s: float = 30.0

    @abstractmethod
    async def acquire(
        self, thread_id: str, owner: str, ttl_s: float, request: dict[str, Any] | None
    ) -> str | None:
        """Take the thread's lease for `owner` when it is free (see :func:`_free`) and keep
        `request` as the thread's start request when it has none; return None on success,
        else the current holder."""

    @abstractmethod
    async def renew(self, thread_id: str, owner: str, ttl_s: float) -> bool:
        """Extend `owner`'s lease; False when it is no longer held by `owner`."""

    @abstractmethod
    async def release(self, thread_id: str, owner: str) -> None:
        """Give the lease up (only when `owner` still holds it)."""

    @abstractmethod
    async def start_request(self, thread_id: str) -> dict[str, Any] | None:
        """The request the thread was started with, or None for an unknown thread."""

    async def aclose(self) -> None:  # noqa: B027 - optional: most stores hold nothing
        """Release the store's resources."""

    @asynccontextmanager
    async def hold(
        self, thread_id: str, *, request: dict[str, Any] | None = None, wait_s: float = 0.0
    ) -> AsyncIterator[str]:
        """Hold the thread's lease for the body, renewed by a heartbeat; wait up to `wait_s`
        for a holder to finish, then raise :class:`ThreadBusyError`."""
        owner = new_owner()
        deadline = time.monotonic() + wait_s
        pause = 0.02
        while (holder := await self.acquire(thread_id, owner, self.ttl_s, request)) is not None:
            if time.monotonic() >= deadline:
                raise ThreadBusyError(thread_id, holder, wait_s)
            await asyncio.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, 0.5)
        heartbeat = asyncio.create_task(self._heartbeat(thread_id, owner))
        try:
            yield owner
        finally:
            heartbeat.cancel()
            # The release must happen even when the run was cancelled.
            await asyncio.shield(self.release(thread_id, owner))

    async def _heartbeat(self, thread_id: str, owner: str) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            if not await self.renew(thread_id, owner, self.ttl_s):
                log.warning("thread lease lost to another runner", thread_id=thread_id)
                return


class MemoryThreadLeases(ThreadLeases):
    """Leases for the runs of this process (the ``memory`` checkpointer, or a checkpointer
    instance that only this process uses). A request is kept only while its run holds the
    lease: a process that dies loses it with its memory, and a long-lived server must not
    keep every request it served."""

    def __init__(self, ttl_s: float = 30.0) -> None:
        self.ttl_s = ttl_s
        self._leases: dict[str, LeaseState] = {}
        self._requests: dict[str, dict[str, Any]] = {}

    async def acquire(
        self, thread_id: str, owner: str, ttl_s: float, request: dict[str, Any] | None
    ) -> str | None:
        now = time.time()
        state = self._leases.get(thread_id)
        if not _free(state, owner, now):
            assert state is not None and state.owner is not None
            return state.owner
        self._leases[thread_id] = LeaseState(owner, now + ttl_s)
        if request is not None:
            self._requests.setdefault(thread_id, request)
        return None

    async def renew(self, thread_id: str, owner: str, ttl_s: float) -> bool:
        state = self._leases.get(thread_id)
        if state is None or state.owner != owner:
            return False
        self._leases[thread_id] = LeaseState(owner, time.time() + ttl_s)
        return True

    async def release(self, thread_id: str, owner: str) -> None:
        state = self._leases.get(thread_id)
        if state is not None and state.owner == owner:
            del self._leases[thread_id]
            self._requests.pop(thread_id, None)

    async def start_request(self, thread_id: str) -> dict[str, Any] | None:
        return self._requests.get(thread_id)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS thread_leases (
    thread_id TEXT PRIMARY KEY,
    owner TEXT,
    expires_at REAL NOT NULL DEFAULT 0,
    request TEXT,
    started_at REAL NOT NULL
)
"""


class SqliteThreadLeases(ThreadLeases):
    """Leases in a SQLite file, shared by every process that runs from the same state
    directory. Each call is one short transaction (``BEGIN IMMEDIATE`` serialises the
    check-and-take); the file is in WAL mode, so readers never wait."""

    def __init__(self, path: str | Path, ttl_s: float = 30.0) -> None:
        self.path = Path(path)
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)

    async def _call(self, fn: Any, *args: Any) -> Any:
        def locked() -> Any:
            with self._lock:
                return fn(*args)

        return await asyncio.to_thread(locked)

    def _acquire(
        self, thread_id: str, owner: str, ttl_s: float, request: dict[str, Any] | None
    ) -> str | None:
        conn = self._conn
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            with closing(conn.cursor()) as cur:
                row = cur.execute(
                    "SELECT owner, expires_at FROM thread_leases WHERE thread_id = ?",
                    (thread_id,),
                ).fetchone()
                state = LeaseState(row[0], row[1]) if row else None
                if not _free(state, owner, now):
                    conn.execute("ROLLBACK")
                    return str(row[0])
                text = json.dumps(request) if request is not None else None
                cur.execute(
                    "INSERT INTO thread_leases (thread_id, owner, expires_at, request, "
                    "started_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (thread_id) DO UPDATE SET "
                    "owner = excluded.owner, expires_at = excluded.expires_at, "
                    "request = COALESCE(thread_leases.request, excluded.request)",
                    (thread_id, owner, now + ttl_s, text, now),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return None

    def _renew(self, thread_id: str, owner: str, ttl_s: float) -> bool:
        cur = self._conn.execute(
            "UPDATE thread_leases SET expires_at = ? WHERE thread_id = ? AND owner = ?",
            (time.time() + ttl_s, thread_id, owner),
        )
        return cur.rowcount == 1

    def _release(self, thread_id: str, owner: str) -> None:
        self._conn.execute(
            "UPDATE thread_leases SET owner = NULL, expires_at = 0 "
            "WHERE thread_id = ? AND owner = ?",
            (thread_id, owner),
        )

    def _start_request(self, thread_id: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT request FROM thread_leases WHERE thread_id = ?", (thread_id,)
        ).fetchone()
        return json.loads(row[0]) if row and row[0] is not None else None

    async def acquire(
        self, thread_id: str, owner: str, ttl_s: float, request: dict[str, Any] | None
    ) -> str | None:
        holder: str | None = await self._call(self._acquire, thread_id, owner, ttl_s, request)
        return holder

    async def renew(self, thread_id: str, owner: str, ttl_s: float) -> bool:
        renewed: bool = await self._call(self._renew, thread_id, owner, ttl_s)
        return renewed

    async def release(self, thread_id: str, owner: str) -> None:
        await self._call(self._release, thread_id, owner)

    async def start_request(self, thread_id: str) -> dict[str, Any] | None:
        stored: dict[str, Any] | None = await self._call(self._start_request, thread_id)
        return stored

    async def aclose(self) -> None:
        with self._lock:
            self._conn.close()
