"""``orchestrator serve``: serve specialists as MCP tools."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from orchestrator._errors import ConfigurationError
from orchestrator._tracing import enable_tracing
from orchestrator.cli._exit import ExitCode
from orchestrator.cli._graph_files import resolve_graph
from orchestrator.cli._output import err
from orchestrator.graph.bindings import specialist_for_binding
from orchestrator.graph.spec import GraphSpec
from orchestrator.specialists._registry import default_registry
from orchestrator.tools.server import ServerLimits, run_server, serve_mcp, transport_security

__all__ = ["serve"]


def _served_specialists(names: list[str], graph: str | None) -> dict[str, Any]:
    registry = default_registry()
    if graph is not None:
        spec = GraphSpec.from_file(resolve_graph(graph))
        known = set(registry.names())
        chosen = {
            key: specialist_for_binding(registry, spec.specialist_name(key), binding)
            for key, binding in spec.specialists.items()
            if spec.specialist_name(key) in known and (not names or key in names)
        }
        if not chosen:
            raise ConfigurationError(f"graph {graph!r} binds no registered specialist to serve")
        return chosen
    for name in names:
        registry.get(name)  # an unknown name fails here, with a did-you-mean
    if names:
        return {name: registry.create(name) for name in names}
    # "Everything registered": a specialist that cannot load here (no trained artifact, an
    # extra not installed) is left out with its reason, rather than stopping the others.
    ready: dict[str, Any] = {}
    for name in registry.names():
        specialist = registry.create(name)
        try:
            specialist.ensure_loaded()
        except ConfigurationError as exc:
            err.print(f"not serving {name}: {exc}", markup=False)
            continue
        ready[name] = specialist
    if not ready:
        raise ConfigurationError("no registered specialist can load here")
    return ready


def _limits(*, max_input_chars: int, max_batch: int) -> ServerLimits:
    """The server's limits, or one line naming the option that is out of range."""
    try:
        return ServerLimits(max_input_chars=max_input_chars, max_batch=max_batch)
    except ValidationError as exc:
        error = exc.errors()[0]
        option = "--" + str(error["loc"][0]).replace("_", "-")
        least = error.get("ctx", {}).get("ge", 1)
        raise ConfigurationError(
            f"{option} {error['input']}: give a whole number of at least {least}"
        ) from None


def serve(
    specialists: Annotated[
        list[str] | None, typer.Argument(help="Specialists to serve (default: all registered).")
    ] = None,
    graph: Annotated[
        str | None,
        typer.Option(help="Serve the specialists a graph file binds, with its options."),
    ] = None,
    transport: Annotated[str, typer.Option(help="stdio or http (streamable HTTP).")] = "stdio",
    host: Annotated[str, typer.Option(help="HTTP: address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP: port (0 picks a free one).")] = 8765,
    token_env: Annotated[
        str | None,
        typer.Option(help="HTTP: environment variable holding the bearer token clients must send."),
    ] = None,
    max_input_chars: Annotated[
        int, typer.Option(help="Longest string argument accepted.")
    ] = ServerLimits().max_input_chars,
    max_batch: Annotated[
        int, typer.Option(help="Most items in one batch call.")
    ] = ServerLimits().max_batch,
    as_tool: Annotated[
        bool,
        typer.Option(
            "--as-tool",
            help="With --graph: serve the whole graph as one tool (the request in, the result "
            "fields with provenance out) instead of its specialists.",
        ),
    ] = False,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="HTTP on a non-loopback --host: a name clients reach the server by "
            "(repeatable; Host/Origin checks against DNS rebinding, required with --token-env)."
        ),
    ] = None,
    otel: Annotated[
        bool,
        typer.Option(
            "--otel",
            help="Export OpenTelemetry spans (OTLP/HTTP, configured by the OTEL_* variables); "
            "a request's spans join its caller's trace.",
        ),
    ] = False,
) -> int:
    """Serve specialists as MCP tools (stdio for desktop assistants, HTTP for remote use)."""
    if transport not in ("stdio", "http"):
        raise ConfigurationError(f"--transport {transport!r}: use stdio or http")
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"--port {port}: give a port from 1 to 65535 (0 picks a free one)")
    limits = _limits(max_input_chars=max_input_chars, max_batch=max_batch)
    token = None
    if token_env is not None:
        token = os.environ.get(token_env)
        if not token:
            raise ConfigurationError(
                f"--token-env {token_env}: that environment variable is not set"
            )
    if transport == "http" and token is None and host not in ("127.0.0.1", "::1", "localhost"):
        err.print(
            f"warning: serving on {host} without --token-env: anyone who can reach it may "
            "call the models",
            markup=False,
        )
    if otel:
        enable_tracing(service_name="orchestrator-serve")

    def announce(line: str) -> None:
        err.print(line, markup=False)  # stderr: in stdio mode stdout carries the protocol

    if as_tool:
        security = transport_security(host, token, allowed_host or ())
        server, what = _graph_as_tool(graph, specialists, limits)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                serve_mcp(
                    server,
                    what,
                    transport=transport,
                    host=host,
                    port=port,
                    token=token,
                    announce=announce,
                    security=security if transport == "http" else None,
                )
            )
        return ExitCode.OK
    served = _served_specialists(list(specialists or []), graph)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_server(
                served,
                transport=transport,
                host=host,
                port=port,
                token=token,
                limits=limits,
                announce=announce,
                allowed_hosts=allowed_host or (),
            )
        )
    return ExitCode.OK


def _graph_as_tool(
    graph: str | None, specialists: list[str] | None, limits: ServerLimits
) -> tuple[Any, str]:
    """The server of `--as-tool` and what it serves, or one line saying what is missing."""
    if graph is None:
        raise ConfigurationError("--as-tool serves a graph: give it with --graph GRAPH")
    if specialists:
        raise ConfigurationError(
            "--as-tool serves the whole graph as one tool: leave out the specialist names"
        )
    from orchestrator._orchestrator import Orchestrator  # the run layer, only when asked
    from orchestrator.tools.graph_server import build_graph_server

    # The graph's registered specialists run in this process (no server behind a server);
    # third-party MCP tools it binds are still reached over MCP. Runs are kept in memory.
    orchestrator = Orchestrator.from_file(
        resolve_graph(graph), checkpointer="memory", inprocess=True
    )
    server = build_graph_server(orchestrator, limits=limits)
    return server, f"graph {orchestrator.spec.name} as one tool"
