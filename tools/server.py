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
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from types import GenericAlias
from typing import Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from orchestrator._errors import InvalidArgumentError
from orchestrator._version import __version__
from orchestrator.specialists._base import AnySpecialist

__all__ = ["META_KEY", "BearerTokenMiddleware", "ServerLimits", "build_server", "run_server"]

#: Key of the specialist contract inside each tool's ``_meta``.
META_KEY = "dev.orchestrator/specialist"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


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
            raise ToolError(
                "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            ) from None
        predictions, ms = await anyio.to_thread.run_sync(_predict, specialist, [item])
        return wrap(predictions, ms)[0]

    async def batch(items: list[Any]) -> BaseModel:
        _check_sizes(items, limits, "items")
        predictions, ms = await anyio.to_thread.run_sync(_predict, specialist, items)
        return batch_result(results=wrap(predictions, ms))

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


def build_server(
    specialists: Mapping[str, AnySpecialist],
    *,
    name: str = "orchestrator-specialists",
    limits: ServerLimits | None = None,
) -> MCPServer:
    """An MCP server exposing each specialist (keyed by tool name) and its batch form."""
    limits = limits or ServerLimits()
    return MCPServer(
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
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="orchestrator"'),
                        ],
                    }
                )
                await send(
                    {
                        "type": "http.response.body",
                        "body": b'{"error": "missing or wrong bearer token"}',
                    }
                )
                return
        await self.app(scope, receive, send)


async def _serve_stdio(server: MCPServer) -> None:
    """``MCPServer.run_stdio_async``, except that a line that is not JSON-RPC gets a
    JSON-RPC parse error back (the SDK drops it silently) and the session goes on."""
    lowlevel = server._lowlevel_server  # the SDK's own stdio runner uses it the same way
    async with stdio_server() as (sdk_read, write):
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

        async with anyio.create_task_group() as group:
            group.start_soon(screen)
            await lowlevel.run(receive, write, lowlevel.create_initialization_options())
            group.cancel_scope.cancel()


async def run_server(
    specialists: Mapping[str, AnySpecialist],
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    limits: ServerLimits | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Load the specialists, then serve them until cancelled.

    ``transport`` is ``stdio`` (for desktop assistants) or ``http`` (streamable HTTP on
    ``host:port``; ``port=0`` picks a free port). With ``token``, HTTP requests must carry
    ``Authorization: Bearer <token>``. ``announce`` receives a line saying where the server
    listens once it does.
    """
    for specialist in specialists.values():
        await anyio.to_thread.run_sync(specialist.ensure_loaded)
    server = build_server(specialists, limits=limits)
    say = announce or (lambda _line: None)
    if transport == "stdio":
        say(f"serving {', '.join(specialists)} over stdio")
        await _serve_stdio(server)
        return
    if transport != "http":
        raise InvalidArgumentError(f"unknown transport {transport!r}: use stdio or http")
    import uvicorn

    app: Any = server.streamable_http_app(host=host)
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
        say(f"serving {', '.join(specialists)} on http://{host}:{bound}/mcp ({auth})")
    await serving
