"""A pool of long-lived MCP client sessions to one server.

Sessions are opened once and reused for every call (an MCP session multiplexes concurrent
requests). A session whose server died or whose connection broke is closed and reopened on
the next call; the caller sees a :class:`~orchestrator.ToolTransportError` for the call that
failed and retries it. Each session lives in its own task, which enters and leaves the SDK's
context managers, so shutdown never crosses anyio cancel scopes between tasks.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage
from mcp.types import (
    INTERNAL_ERROR,
    CallToolRequest,
    CallToolRequestParams,
    CallToolResult,
    ErrorData,
    JSONRPCError,
    Tool,
)
from pydantic import ValidationError

from orchestrator._errors import ConfigurationError, SpecialistError, ToolTransportError
from orchestrator._logging import get_logger, logging_configured
from orchestrator._secrets import register_secret_env
from orchestrator.tools._config import MCPServerConfig
from orchestrator.tools.server import META_KEY

__all__ = ["MCPSessionPool", "resolve_command"]

log = get_logger(__name__)

# JSON-RPC codes that mean "your request was wrong", as opposed to "the connection failed".
_REQUEST_ERRORS = {-32600, -32601, -32602, -32700}


def resolve_command(command: str, args: list[str]) -> tuple[str, list[str]]:
    """`orchestrator` means this installation's own CLI, run by this Python."""
    if command == "orchestrator":
        return sys.executable, ["-m", "orchestrator", *args]
    return command, list(args)


def _errlog() -> TextIO | int:
    # The server's stderr goes to ours (its crashes stay visible) when ours is a real file and
    # the application has configured logging; until then the library stays silent.
    if not logging_configured():
        return subprocess.DEVNULL
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return subprocess.DEVNULL
    return sys.stderr


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _malformed_reply(exc: Exception) -> SessionMessage | None:
    """An error answering the request that a malformed reply (``"result": "string"``) was
    meant for, so that its caller fails at once instead of waiting for its timeout (the SDK
    drops frames it cannot read). None when the frame names no request."""
    if not isinstance(exc, ValidationError):
        return None
    for error in exc.errors():
        frame = error.get("input")
        # A field missing from one member of the message union reports the whole frame.
        if (
            error["type"] == "missing"
            and isinstance(frame, dict)
            and isinstance(frame.get("id"), int | str)
            and not isinstance(frame.get("id"), bool)
            and ("result" in frame or "error" in frame)
        ):
            reply = JSONRPCError(
                jsonrpc="2.0",
                id=frame["id"],
                error=ErrorData(
                    code=INTERNAL_ERROR,
                    message=f"the server sent a malformed reply: {str(frame)[:200]}",
                ),
            )
            return SessionMessage(reply)
    return None


@asynccontextmanager
async def _answering_malformed(transport: AbstractAsyncContextManager[Any]) -> AsyncIterator[Any]:
    """The transport's streams, with malformed replies turned into errors for their callers."""
    async with transport as (read, write):
        forward, forwarded = anyio.create_memory_object_stream[Any](0)

        async def pump() -> None:
            async with forward:
                async for item in read:
                    if isinstance(item, Exception):
                        item = _malformed_reply(item) or item
                    await forward.send(item)

        async with anyio.create_task_group() as group:
            group.start_soon(pump)
            yield forwarded, write
            group.cancel_scope.cancel()


@asynccontextmanager
async def _http_transport(
    url: str, headers: dict[str, str], on_refused: Callable[[int], None]
) -> AsyncIterator[Any]:
    async def note_refusal(response: httpx2.Response) -> None:
        # The SDK turns every HTTP error into "Server returned an error response"; the
        # status is read here so that a refused token can be named as such.
        if response.status_code in (401, 403):
            on_refused(response.status_code)

    # The SDK leaves a client it is given open: this one is closed with the session.
    async with (
        httpx2.AsyncClient(
            headers=headers,
            timeout=httpx2.Timeout(30, read=300),
            event_hooks={"response": [note_refusal]},
        ) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


class _Session:
    """One client session, owned by its own task."""

    def __init__(
        self, connect: Callable[[], Client], server: str, label: str, tools: dict[str, Tool]
    ) -> None:
        self._connect = connect
        self.server = server
        self.label = label
        #: the server's tool listing, shared with the pool (filled once it is read)
        self.tools = tools
        self.client: Client | None = None
        self.error: BaseException | None = None
        self.in_flight = 0
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.client is not None and self._task is not None and not self._task.done()

    async def open(self, timeout: float) -> None:
        self._task = asyncio.create_task(self._run(), name=f"mcp-session {self.label}")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            await self.close()
            raise ToolTransportError(
                f"MCP server {self.server!r} did not start within {timeout:g} s "
                "(raise connect_timeout_s if it loads large models)"
            ) from None
        if self.client is None:
            cause = _leaf(self.error) if self.error else None
            raise ToolTransportError(
                f"cannot connect to MCP server {self.server!r}: {cause}; run its command by "
                "hand to see why it stops"
            ) from cause

    async def _run(self) -> None:
        try:
            async with self._connect() as client:
                self.client = client
                self._ready.set()
                await self._closing.wait()
        except BaseException as exc:  # recorded; the pool decides what to do
            self.error = exc
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self.client = None
            self._ready.set()

    async def close(self) -> None:
        self._closing.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 10)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        except BaseException:  # the session's own failure was recorded in self.error
            pass


class MCPSessionPool:
    """Long-lived sessions to one MCP server, safe for many concurrent calls."""

    def __init__(self, name: str, config: MCPServerConfig, *, base_dir: Path | None = None) -> None:
        self.name = name
        self.config = config
        self._base_dir = base_dir
        self._sessions: list[_Session] = []
        self._locks: list[asyncio.Lock] = []
        self._next = itertools.count()
        self.tools: dict[str, Tool] = {}
        self.restarts = 0
        #: the HTTP status (401 or 403) of the server's last refusal, if any
        self.refused: int | None = None

    # -- connecting ------------------------------------------------------------------------
    def _transport(self) -> AbstractAsyncContextManager[Any]:
        config = self.config
        if config.command is not None:
            command, args = resolve_command(config.command, config.args)
            cwd = config.cwd
            if cwd is not None and self._base_dir is not None and not Path(cwd).is_absolute():
                cwd = str(self._base_dir / cwd)
            env = dict(config.env)
            if config.command == "orchestrator":
                # Our own server runs in this installation's environment (PYTHONPATH, venv);
                # other commands get the SDK's small default environment plus `env`.
                env = {**os.environ, **env}
            params = StdioServerParameters(command=command, args=args, env=env, cwd=cwd)
            return stdio_client(params, errlog=_errlog())  # type: ignore[arg-type]
        assert config.url is not None
        headers = dict(config.headers)
        if config.bearer_token_env:
            token = os.environ.get(config.bearer_token_env)
            if not token:
                raise ConfigurationError(
                    f"server {self.name!r}: the environment variable {config.bearer_token_env} "
                    "(bearer_token_env) is not set"
                )
            register_secret_env(config.bearer_token_env)
            headers["Authorization"] = f"Bearer {token}"
        return _http_transport(config.url, headers, self._note_refusal)

    def _note_refusal(self, status: int) -> None:
        self.refused = status

    def _refusal(self) -> str:
        """What the server's 401 or 403 means, naming what to fix (and forgetting it)."""
        status, self.refused = self.refused, None
        env = self.config.bearer_token_env
        where = f"MCP server {self.name!r} ({self.config.url}) refused"
        if env:
            return (
                f"{where} the token in ${env} (HTTP {status}): set {env} to the "
                "token the server was started with"
            )
        return (
            f"{where} the request (HTTP {status}): it needs a token; name the "
            "environment variable that holds it with `bearer_token_env:` in the server's entry"
        )

    def _client(self) -> Client:
        return Client(_answering_malformed(self._transport()))

    async def start(self) -> None:
        """Open every session and read the server's tool listing."""
        if self._sessions:
            return
        self._sessions = [
            _Session(self._client, self.name, f"{self.name}#{i}", self.tools)
            for i in range(self.config.pool_size)
        ]
        self._locks = [asyncio.Lock() for _ in self._sessions]
        try:
            await asyncio.gather(*(s.open(self.config.connect_timeout_s) for s in self._sessions))
            client = self._sessions[0].client
            assert client is not None
            listing = await client.list_tools()
        except BaseException as exc:
            await self.aclose()
            if self.refused is not None and isinstance(exc, ToolTransportError | MCPError):
                raise ToolTransportError(self._refusal()) from exc
            raise
        self.tools.update((t.name, t) for t in listing.tools)
        log.debug("mcp server ready", server=self.name, tools=sorted(self.tools))

    async def _session(self) -> tuple[int, _Session]:
        """The least busy session, reopened first if its server died."""
        order = sorted(range(len(self._sessions)), key=lambda i: self._sessions[i].in_flight)
        index = order[0] if order else next(self._next) % max(1, len(self._sessions))
        session = self._sessions[index]
        if not session.alive:
            async with self._locks[index]:
                session = self._sessions[index]
                if not session.alive:
                    await session.close()
                    fresh = _Session(self._client, self.name, session.label, self.tools)
                    await fresh.open(self.config.connect_timeout_s)
                    self._sessions[index] = fresh
                    self.restarts += 1
                    log.warning(
                        "mcp session restarted",
                        server=self.name,
                        session=fresh.label,
                        reason=repr(session.error),
                    )
                    session = fresh
        return index, session

    # -- calling ---------------------------------------------------------------------------
    async def call_tool(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        if not self._sessions:
            raise ToolTransportError(f"MCP server {self.name!r} is not started")
        index, session = await self._session()
        client = session.client
        if client is None:
            raise ToolTransportError(f"MCP server {self.name!r}: session closed")
        session.in_flight += 1
        try:
            listed = self.tools.get(tool)
            if listed is not None and META_KEY in (listed.meta or {}):
                # Our own server: its result is built from pydantic models, the toolset parses
                # the envelope and verification checks `output` against the contract, so the
                # SDK's per-call jsonschema walk (40% of the client's CPU per call; 13.5 ->
                # 2.4 ms for a 32-item batch) is skipped. Other servers' tools keep it.
                return await client.session.send_request(
                    CallToolRequest(params=CallToolRequestParams(name=tool, arguments=arguments)),
                    CallToolResult,
                )
            try:
                return await client.call_tool(tool, arguments)
            except RuntimeError as exc:
                # The SDK checks a tool's structured result against the tool's own output
                # schema and raises RuntimeError when it does not fit: the server is alive
                # and answered outside its contract, a failure of that call.
                raise SpecialistError(f"{self.name}/{tool}: {exc}") from exc
        except MCPError as exc:
            if self.refused is not None:  # e.g. the token was rotated on the server
                self._mark_broken(index, session, exc)
                raise ToolTransportError(f"{self.name}/{tool}: {self._refusal()}") from exc
            if exc.error.code in _REQUEST_ERRORS:
                raise SpecialistError(f"{self.name}/{tool}: {exc.error.message}") from exc
            self._mark_broken(index, session, exc)
            raise ToolTransportError(f"{self.name}/{tool}: {exc.error.message}") from exc
        except (
            anyio.ClosedResourceError,
            anyio.BrokenResourceError,
            anyio.EndOfStream,
            OSError,
            httpx2.TransportError,
        ) as exc:
            self._mark_broken(index, session, exc)
            raise ToolTransportError(f"{self.name}/{tool}: connection lost ({exc!r})") from exc
        finally:
            session.in_flight -= 1

    def _mark_broken(self, index: int, session: _Session, exc: BaseException) -> None:
        if self._sessions[index] is session:
            session.error = exc
            session.client = None  # the next call reopens it

    async def aclose(self) -> None:
        sessions, self._sessions = self._sessions, []
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
