"""The PostgreSQL database that checkpoints, leases, traces and the run queue share.

Where its URL comes from (``database_url=`` / ``--database-url``, else the
``ORCHESTRATOR_DATABASE_URL`` variable), how it is shown (never with its password), and one
connection pool per session of runs with one clear error when the ``postgres`` extra is
missing or the server cannot be reached.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from orchestrator._errors import ConfigurationError
from orchestrator._secrets import register_secret, scrub_secrets

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

__all__ = [
    "DATABASE_URL_ENV",
    "SCHEMA_LOCK_KEY",
    "connect_pool",
    "database_url",
    "missing_extra",
    "open_pool",
    "schema_lock",
    "schema_lock_sync",
    "show_url",
    "unreachable",
]

DATABASE_URL_ENV = "ORCHESTRATOR_DATABASE_URL"
#: The advisory lock held while tables are created: workers that start together would
#: otherwise race in ``CREATE TABLE IF NOT EXISTS`` (which is not safe concurrently).
SCHEMA_LOCK_KEY = 0x6F726368  # "orch"
_TRY_LOCK = "SELECT pg_try_advisory_lock(%s) AS taken"
_UNLOCK = "SELECT pg_advisory_unlock(%s)"


def _taken(row: Any) -> bool:
    return bool(row["taken"] if isinstance(row, dict) else row[0])


@asynccontextmanager
async def schema_lock(conn: Any) -> AsyncIterator[None]:
    """Hold the schema lock on `conn` (autocommit) for the body. Taken by polling, never by
    waiting in a statement: LangGraph's setup builds an index ``CONCURRENTLY``, which waits
    for every open transaction, a blocked lock request included (a deadlock)."""
    while not _taken(await (await conn.execute(_TRY_LOCK, (SCHEMA_LOCK_KEY,))).fetchone()):
        await asyncio.sleep(0.05)
    try:
        yield
    finally:
        await conn.execute(_UNLOCK, (SCHEMA_LOCK_KEY,))


@contextmanager
def schema_lock_sync(conn: Any) -> Iterator[None]:
    """:func:`schema_lock` on a synchronous connection."""
    while not _taken(conn.execute(_TRY_LOCK, (SCHEMA_LOCK_KEY,)).fetchone()):
        time.sleep(0.05)
    try:
        yield
    finally:
        conn.execute(_UNLOCK, (SCHEMA_LOCK_KEY,))


_WHERE = f"--database-url (SDK: database_url=; or the {DATABASE_URL_ENV} variable)"


def show_url(url: str) -> str:
    """The URL as logs and errors show it: its password masked."""
    return scrub_secrets(url)


def database_url(given: str | None) -> str:
    """The database URL from the argument, else from ``ORCHESTRATOR_DATABASE_URL``; its
    password is masked wherever a secret is scrubbed from then on."""
    url = given or os.environ.get(DATABASE_URL_ENV, "")
    if not url.strip():
        raise ConfigurationError(
            f"the postgres checkpointer needs a database: give {_WHERE}, e.g. "
            "postgresql://USER@HOST:5432/DBNAME"
        )
    parts = urlsplit(url) if "://" in url else None
    if parts is not None and parts.scheme not in ("postgres", "postgresql"):
        raise ConfigurationError(
            f"{_WHERE}: {show_url(url)!r} is not a PostgreSQL URL; it starts with "
            "postgresql:// (or give a libpq 'key=value' string)"
        )
    if parts is not None and parts.password:
        register_secret(parts.password)
    for value in re.findall(r"\bpassword\s*=\s*'?([^'\s]+)", url):
        register_secret(value)
    return url


def missing_extra(what: str) -> ConfigurationError:
    return ConfigurationError(
        f"{what} needs the postgres extra: pip install 'specialist-orchestrator[postgres]'"
    )


def unreachable(url: str, exc: BaseException) -> ConfigurationError:
    """One line for a database that refused or could not be reached."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return ConfigurationError(
        f"cannot use the database {show_url(url)}: {scrub_secrets(reason)}; check {_WHERE}"
    )


#: Every connection of a pool: each statement commits (the checkpointer's setup needs it),
#: rows as dicts (the checkpointer reads them so), and no prepared statements (safe behind
#: a transaction-mode pooler such as PgBouncer).
CONNECTION_KWARGS: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0}


async def connect_pool(
    url: str, *, max_size: int = 10, timeout_s: float = 10.0
) -> AsyncConnectionPool[Any]:
    """An open pool of connections to `url` (close it with ``await pool.close()``); a
    clear error when the extra is missing or the first connection fails."""
    try:
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool, PoolTimeout
    except ImportError:
        raise missing_extra("PostgreSQL") from None
    try:
        # Checked before the pool retries in the background: a typo fails at once.
        probe = await psycopg.AsyncConnection.connect(url, connect_timeout=int(timeout_s))
        await probe.close()
    except psycopg.Error as exc:
        raise unreachable(url, exc) from None
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        kwargs={**CONNECTION_KWARGS, "row_factory": dict_row},
        open=False,
        timeout=60.0,
    )
    try:
        await pool.open(wait=True, timeout=timeout_s)
    except PoolTimeout as exc:
        await pool.close()
        raise unreachable(url, exc) from None
    return pool


@asynccontextmanager
async def open_pool(
    url: str, *, max_size: int = 10, timeout_s: float = 10.0
) -> AsyncIterator[AsyncConnectionPool[Any]]:
    """:func:`connect_pool` for the body, closed afterwards."""
    pool = await connect_pool(url, max_size=max_size, timeout_s=timeout_s)
    try:
        yield pool
    finally:
        await pool.close()
