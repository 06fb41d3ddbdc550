"""Specialists served as MCP tools with the official ``mcp`` SDK (``MCPServer``).

Each specialist becomes two tools: ``NAME`` takes the specialist's own input (``text`` for the
text classifiers) and ``NAME_batch`` takes ``items``, a list of inputs run in one forward pass.
Both return structured content: the specialist's output with its confidence, the model that
produced it, the model's compute time and the tokens it read. The tool listing carries the
specialist's contract (output schema, labels, summary fields) in ``_meta`` so that the
framework's client can verify results exactly as it does in process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import signal
import threading
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from types import GenericAlias
from typing import Any, cast

import anyio
import anyio.to_thread
import pydantic_core
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp import MCPError
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE, TransportSecuritySettings
from mcp.shared.message import SessionMessage
from mcp.types import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from orchestrator._errors import InvalidArgumentError, one_line
from orchestrator._recorder import artifact_of
from orchestrator._tracing import attributes, child_span
from orchestrator._version import __version__
from orchestrator.specialists._base import AnySpecialist

__all__ = [
    "META_KEY",
    "BearerTokenMiddleware",
    "InvalidRequestMiddleware",
    "ServerLimits",
    "ToolServer",
    "build_server",
    "run_server",
    "serve_mcp",
    "transport_security",
]

#: Key of the specialist contract inside each tool's ``_meta``.
META_KEY = "dev.orchestrator/specialist"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: Addresses the SDK already guards against DNS rebinding.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class ServerLimits(BaseModel):
    """Bounds that keep one bad request from taking the server down."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_input_chars: int = Field(
        default=100_000, ge=1, description="Longest string argument accepted, in characters."
    )
    max_batch: int = Field(default=256, ge=1, description="Most items in one batch call.")


def _envelope(key: str, output_model: type[BaseModel]) -> type[BaseModel]:
    return create_model(
        f"{key.title().replace('_', '')}Result",
        __config__=ConfigDict(extra="forbid"),
        output=(output_model, Field(description="The specialist's answer.")),
        confidence=(float, Field(ge=0, le=1, description="How sure the specialist is.")),
        model=(str, Field(description="The model that produced the answer.")),
        compute_ms=(float, Field(ge=0, description="Time spent in the model.")),
        tokens=(int, Field(ge=0, description="Input tokens the model read.")),
    )


def _check_sizes(value: Any, limits: ServerLimits, where: str) -> None:
    if isinstance(value, str) and len(value) > limits.max_input_chars:
        raise ToolError(
            f"{where} has {len(value)} characters; this server accepts at most "
            f"{limits.max_input_chars} (raise it with `orchestrator serve --max-input-chars`)"
        )
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_sizes(v, limits, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_sizes(v, limits, f"{where}[{i}]")


def _predict(specialist: AnySpecialist, items: Sequence[BaseModel]) -> tuple[list[Any], float]:
    specialist.ensure_loaded()
    start = time.perf_counter()
    predictions = specialist.predict_batch(items)
    return predictions, (time.perf_counter() - start) * 1000


def _list_of(model: type[BaseModel]) -> Any:
    """``list[model]`` for a model known only at run time."""
    return GenericAlias(list, (model,))


def _arguments(name: str, fields: dict[str, tuple[Any, FieldInfo]]) -> type[ArgModelBase]:
    """The model a tool's arguments are validated with; its JSON Schema is the tool's
    published input schema."""
    definitions: dict[str, Any] = fields
    return create_model(f"{name}Arguments", __base__=ArgModelBase, **definitions)


def _tool(
    fn: Callable[..., Awaitable[BaseModel]],
    *,
    name: str,
    description: str,
    arguments: type[ArgModelBase],
    result: type[BaseModel],
    meta: dict[str, Any],
) -> Tool:
    """A tool whose input schema is stated (`arguments`) instead of read from `fn`'s
    signature: the SDK validates a call with `arguments` and passes its fields to `fn` as
    keyword arguments, and validates what `fn` returns against `result`."""
    return Tool(
        fn=fn,
        name=name,
        title=None,
        description=description,
        parameters=arguments.model_json_schema(by_alias=True),
        fn_metadata=FuncMetadata(arg_model=arguments, output_model=result),
        is_async=True,
        context_kwarg=None,
        annotations=None,
        meta=meta,
    )


def _tools_for(key: str, specialist: AnySpecialist, limits: ServerLimits) -> tuple[Tool, Tool]:
    """The specialist as two tools: ``KEY`` (its own input) and ``KEY_batch`` (``items``)."""
    input_model = specialist.input_model
    envelope = _envelope(key, specialist.output_model)
    batch_result = create_model(
        f"{envelope.__name__}Batch",
        results=(_list_of(envelope), Field(description="One per item.")),
    )

    def wrap(predictions: list[Any], compute_ms: float) -> list[BaseModel]:
        share = compute_ms / max(1, len(predictions))
        return [
            envelope(
                output=p.output,
                confidence=min(1.0, max(0.0, float(p.confidence))),
                model=specialist.model_id,
                compute_ms=share,
                tokens=p.tokens,
            )
            for p in predictions
        ]

    async def single(**arguments: Any) -> BaseModel:
        _check_sizes(arguments, limits, "argument")
        try:
            # The schema checked each field; validators on the whole input run only here.
            item = input_model.model_validate(arguments)
        except ValidationError as exc:
            raise ToolError(one_line(exc)) from None
        return (await predict([item]))[0]

    async def batch(items: list[Any]) -> BaseModel:
        _check_sizes(items, limits, "items")
        return batch_result(results=await predict(items))

    async def predict(items: Sequence[BaseModel]) -> list[BaseModel]:
        # Under the SDK's span of the request, itself a child of the caller's (`_meta`).
        with child_span(f"predict {key}") as span:
            predictions, ms = await anyio.to_thread.run_sync(_predict, specialist, items)
            if span.is_recording():
                confidences = [float(p.confidence) for p in predictions]
                span.set_attributes(
                    attributes(
                        {
                            "orchestrator.specialist": key,
                            "orchestrator.model": specialist.model_id,
                            "orchestrator.artifact": artifact_of(specialist.model_id),
                            "orchestrator.batch_size": len(items),
                            "orchestrator.compute_ms": ms,
                            "orchestrator.confidence": min(confidences, default=None),
                        }
                    )
                )
            return wrap(predictions, ms)

    info = specialist.tool_info()
    meta = {
        META_KEY: {
            "output_schema": info.output_schema,
            "labels": list(info.labels) if info.labels is not None else None,
            "summary_fields": list(info.summary_fields) if info.summary_fields else None,
            "threshold": info.threshold,
            "rungs": info.rungs,
        }
    }
    # The published input schema is the specialist's own: its fields for `KEY`, a list of
    # its inputs for `KEY_batch`.
    own_fields = {name: (f.annotation, f) for name, f in input_model.model_fields.items()}
    items = Field(min_length=1, max_length=limits.max_batch, description="Inputs, one per item.")
    return (
        _tool(
            single,
            name=key,
            description=specialist.description,
            arguments=_arguments(key, own_fields),
            result=envelope,
            meta=meta,
        ),
        _tool(
            batch,
            name=f"{key}_batch",
            description=f"Batch form of `{key}`: {specialist.description}",
            arguments=_arguments(f"{key}_batch", {"items": (_list_of(input_model), items)}),
            result=batch_result,
            meta=meta,
        ),
    )


class ToolServer(MCPServer):
    """The SDK's server, except that an unknown prompt is the caller's mistake (INVALID_PARAMS):
    the SDK raises ValueError, which goes out as error code 0 with a logged traceback."""

    async def get_prompt(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._prompt_manager.get_prompt(name) is None:
            raise MCPError(INVALID_PARAMS, f"unknown prompt {name!r}: this server has no prompts")
        return await super().get_prompt(name, *args, **kwargs)


def build_server(
    specialists: Mapping[str, AnySpecialist],
    *,
    name: str = "orchestrator-specialists",
    limits: ServerLimits | None = None,
) -> MCPServer:
    """An MCP server exposing each specialist (keyed by tool name) and its batch form."""
    limits = limits or ServerLimits()
    return ToolServer(
        name,
        version=__version__,
        log_level="WARNING",
        instructions=(
            "Small specialist models. Each tool returns structured content with the answer "
            "(`output`), a `confidence` in [0, 1] and the `model` that produced it. Use the "
            "`_batch` form to send many inputs at once."
        ),
        tools=[tool for key, s in specialists.items() for tool in _tools_for(key, s, limits)],
    )


def invalid_request(frame: str | bytes) -> JSONRPCError | None:
    """The JSON-RPC error for a request whose ``id`` is neither a string nor an integer
    (1.5, true, null, {} or []), else None. The SDK reads such a frame as a notification
    and never answers it, so the client would wait forever."""
    try:
        payload = pydantic_core.from_json(frame)
    except ValueError:
        return None  # not JSON: the SDK answers it with a parse error
    if not isinstance(payload, dict) or "method" not in payload or "id" not in payload:
        return None
    request_id = payload["id"]
    if isinstance(request_id, str) or (
        isinstance(request_id, int) and not isinstance(request_id, bool)
    ):
        return None
    return JSONRPCError(
        jsonrpc="2.0",
        id=None,
        error=ErrorData(
            code=INVALID_REQUEST,
            message=f"invalid request id {pydantic_core.to_json(request_id).decode()[:100]}: "
            "a request id is a string or an integer",
        ),
    )


async def _send_json(send: Send, status: int, body: bytes, headers: Sequence[Any] = ()) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class InvalidRequestMiddleware:
    """ASGI middleware that answers a POSTed request with a wrong-typed ``id`` with a JSON-RPC
    Invalid Request error (HTTP 400), where the SDK would answer 202 and nothing else."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        received: list[MutableMapping[str, Any]] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            size += len(message.get("body", b""))
            if not message.get("more_body") or size > DEFAULT_MAX_REQUEST_BODY_SIZE:
                break
        complete = message["type"] == "http.request" and not message.get("more_body")
        if complete:
            error = invalid_request(b"".join(m.get("body", b"") for m in received))
            if error is not None:
                body = error.model_dump_json(by_alias=True, exclude_unset=True).encode()
                await _send_json(send, 400, body)
                return

        async def replay() -> MutableMapping[str, Any]:
            # What was read first, then the rest (an oversized body goes on to the SDK's limit).
            return received.pop(0) if received else await receive()

        await self.app(scope, replay, send)


class BearerTokenMiddleware:
    """ASGI middleware that answers 401 unless the request carries the expected bearer token."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], token: str) -> None:
        if not token:
            raise InvalidArgumentError("the bearer token is empty")
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                await _send_json(
                    send,
                    401,
                    b'{"error": "missing or wrong bearer token"}',
                    [(b"www-authenticate", b'Bearer realm="orchestrator"')],
                )
                return
        await self.app(scope, receive, send)


def _stdin_lines(fd: int) -> AsyncIterator[str]:
    """Lines read from file descriptor ``fd`` by a daemon thread.

    The SDK reads stdin in an anyio worker thread, which neither cancellation (Ctrl-C) nor
    the interpreter's exit can abandon: the server stopped only once another line arrived.
    A daemon thread is left behind at once; it reads the descriptor itself (``os.read``),
    since one blocked inside ``sys.stdin.buffer`` holds its lock and aborts the exit. The
    queue is bounded, so a client that floods stdin waits instead of filling memory.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)

    def put(item: bytes | None) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def pump() -> None:
        pending = b""
        try:
            while chunk := os.read(fd, 65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    put(line)
            if pending:  # a last line without a newline
                put(pending)
            put(None)
        except (RuntimeError, OSError):  # the loop or the descriptor is closed
            return

    threading.Thread(target=pump, name="mcp-stdin", daemon=True).start()

    async def lines() -> AsyncIterator[str]:
        while (line := await queue.get()) is not None:
            yield line.decode("utf-8", errors="replace")

    return lines()


async def _serve_stdio(server: MCPServer, stdin_fd: int = 0) -> None:
    """``MCPServer.run_stdio_async``, except that stdin is read by a daemon thread (Ctrl-C
    stops the server at once), a line that is not JSON-RPC gets a parse error back and a
    request with a wrong-typed id an Invalid Request error (the SDK drops both silently),
    and the session goes on."""
    lowlevel = server._lowlevel_server  # the SDK's own stdio runner uses it the same way
    errors_in, errors_out = anyio.create_memory_object_stream[JSONRPCError](16)

    async def screened(lines: AsyncIterator[str]) -> AsyncIterator[str]:
        async for line in lines:
            error = invalid_request(line)
            if error is None:
                yield line
            else:
                await errors_in.send(error)

    source = screened(_stdin_lines(stdin_fd))
    with _forced_exit_after_interrupt():
        await _run_stdio(lowlevel, source, errors_out)


# How long a stdio server may take to stop after Ctrl-C before the process exits anyway.
INTERRUPT_GRACE_S = 5.0


@contextlib.contextmanager
def _forced_exit_after_interrupt() -> Iterator[None]:
    """Ctrl-C cancels the server as asyncio does; if the cancellation has not ended the
    process ``INTERRUPT_GRACE_S`` later (a task that swallowed it), the process exits with
    130, as after a second Ctrl-C. Only the main thread can take signals, so a server run in
    another thread keeps the default handling."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:  # started to ignore Ctrl-C (in the background): keep it so
        yield
        return

    def interrupted(signum: int, frame: Any) -> None:
        timer = threading.Timer(INTERRUPT_GRACE_S, os._exit, args=(130,))
        timer.daemon = True
        timer.start()
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def _run_stdio(
    lowlevel: Any,
    source: AsyncIterator[str],
    errors_out: MemoryObjectReceiveStream[JSONRPCError],
) -> None:
    """The SDK's stdio session over ``source``, with the screened-out lines' errors sent back
    between its answers."""
    async with stdio_server(stdin=cast(Any, source)) as (sdk_read, write):
        send, receive = anyio.create_memory_object_stream[Any](0)

        async def screen() -> None:
            async with send:
                async for item in sdk_read:
                    if isinstance(item, Exception):
                        error = JSONRPCError(
                            jsonrpc="2.0",
                            id=None,
                            error=ErrorData(
                                code=PARSE_ERROR, message=f"not a JSON-RPC message: {item}"[:500]
                            ),
                        )
                        await write.send(SessionMessage(error))
                    else:
                        await send.send(item)

        async def answer_invalid() -> None:
            async for error in errors_out:
                await write.send(SessionMessage(error))

        async with anyio.create_task_group() as group:
            group.start_soon(screen)
            group.start_soon(answer_invalid)
            await lowlevel.run(receive, write, lowlevel.create_initialization_options())
            group.cancel_scope.cancel()


def transport_security(
    host: str, token: str | None, allowed_hosts: Sequence[str]
) -> TransportSecuritySettings | None:
    """Host/Origin checks against DNS rebinding. The SDK turns them on for a loopback host
    only; on any other host they stay on for the names in ``allowed_hosts`` (plus ``host``
    unless it is a wildcard address). None: the SDK's default."""
    if host in LOOPBACK_HOSTS:
        return None
    names = [*allowed_hosts, *([] if host in ("0.0.0.0", "::", "") else [host])]
    if not names:
        if token is not None:
            raise InvalidArgumentError(
                f"serving on {host} with a bearer token: name the host clients reach this "
                "server by with --allowed-host NAME (repeatable), so that Host/Origin checks "
                "against DNS rebinding stay on"
            )
        return None  # no token: the warning about an open server already says it all
    bracketed = [f"[{n}]" if ":" in n and not n.startswith("[") else n for n in names]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[form for n in bracketed for form in (n, f"{n}:*")],
        allowed_origins=[
            form
            for n in bracketed
            for scheme in ("http", "https")
            for form in (f"{scheme}://{n}", f"{scheme}://{n}:*")
        ],
    )


async def run_server(
    specialists: Mapping[str, AnySpecialist],
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    limits: ServerLimits | None = None,
    announce: Callable[[str], None] | None = None,
    allowed_hosts: Sequence[str] = (),
) -> None:
    """Load the specialists, then serve them until cancelled.

    ``transport`` is ``stdio`` (for desktop assistants) or ``http`` (streamable HTTP on
    ``host:port``; ``port=0`` picks a free port). With ``token``, HTTP requests must carry
    ``Authorization: Bearer <token>``. On a host other than loopback, ``allowed_hosts`` are
    the names clients reach the server by (Host and Origin headers are checked against
    them; required with a token). ``announce`` receives a line saying where the server
    listens once it does.
    """
    security = transport_security(host, token, allowed_hosts) if transport == "http" else None
    for specialist in specialists.values():
        await anyio.to_thread.run_sync(specialist.ensure_loaded)
    await serve_mcp(
        build_server(specialists, limits=limits),
        ", ".join(specialists),
        transport=transport,
        host=host,
        port=port,
        token=token,
        announce=announce,
        security=security,
    )


async def serve_mcp(
    server: MCPServer,
    what: str,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    announce: Callable[[str], None] | None = None,
    security: TransportSecuritySettings | None = None,
) -> None:
    """Serve ``server`` over stdio or streamable HTTP until cancelled (see :func:`run_server`
    for the arguments; ``what`` names what is served in the announced line)."""
    say = announce or (lambda _line: None)
    if transport == "stdio":
        say(f"serving {what} over stdio")
        await _serve_stdio(server)
        return
    if transport != "http":
        raise InvalidArgumentError(f"unknown transport {transport!r}: use stdio or http")
    import uvicorn

    app: Any = InvalidRequestMiddleware(
        server.streamable_http_app(host=host, transport_security=security)
    )
    if token:
        app = BearerTokenMiddleware(app, token)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    web = uvicorn.Server(config)
    serving = asyncio.ensure_future(web.serve())
    while not web.started and not serving.done():
        await asyncio.sleep(0.02)
    if web.started:
        bound = web.servers[0].sockets[0].getsockname()[1]
        auth = "bearer token required" if token else "no authentication"
        say(f"serving {what} on http://{host}:{bound}/mcp ({auth})")
    await serving
