"""Reaching specialists (ours or any MCP server's tools) through pooled MCP sessions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcp.types import CallToolResult, TextContent, Tool
from pydantic import ValidationError

from orchestrator._contracts import ToolInfo, ToolOutput
from orchestrator._errors import ConfigurationError, SpecialistError
from orchestrator.tools._config import MCPServerConfig
from orchestrator.tools._pool import MCPSessionPool
from orchestrator.tools._toolset import Toolset
from orchestrator.tools.server import META_KEY

__all__ = ["CompositeToolset", "MCPToolset"]


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


class MCPToolset:
    """Tools on MCP servers, each bound to a name the graph uses.

    ``bindings`` maps the graph's tool name to ``(server, tool on that server)``. Tools served
    by ``orchestrator serve`` carry their contract (confidence, model, output schema, labels);
    any other server's tool is used as it is: its structured content (or its text) becomes the
    output, and it reports no confidence.
    """

    def __init__(
        self,
        servers: Mapping[str, MCPServerConfig],
        bindings: Mapping[str, tuple[str, str]],
        *,
        base_dir: Path | None = None,
    ) -> None:
        unknown = {server for server, _ in bindings.values()} - set(servers)
        if unknown:
            raise ConfigurationError(f"bindings name undeclared servers: {sorted(unknown)}")
        used = {server for server, _ in bindings.values()}
        self.pools = {
            name: MCPSessionPool(name, spec, base_dir=base_dir)
            for name, spec in servers.items()
            if name in used
        }
        self._bindings = dict(bindings)

    async def warm_up(self) -> None:
        await asyncio.gather(*(pool.start() for pool in self.pools.values()))

    def _tool(self, key: str) -> tuple[MCPSessionPool, Tool]:
        server, tool_name = self._bindings[key]
        pool = self.pools[server]
        tool = pool.tools.get(tool_name)
        if tool is None:
            has = ", ".join(sorted(pool.tools)) or "none"
            raise ConfigurationError(
                f"MCP server {server!r} has no tool {tool_name!r} (it has: {has}); fix `tool:` "
                f"of specialist {key!r}"
            )
        return pool, tool

    async def list_tools(self) -> list[ToolInfo]:
        infos = []
        for key in self._bindings:
            _, tool = self._tool(key)
            contract = (tool.meta or {}).get(META_KEY) or {}
            output_schema = contract.get("output_schema") or tool.output_schema or {}
            labels = contract.get("labels")
            summary = contract.get("summary_fields")
            infos.append(
                ToolInfo(
                    name=key,
                    description=tool.description or tool.title or tool.name,
                    input_schema=tool.input_schema,
                    output_schema=output_schema,
                    labels=tuple(labels) if labels is not None else None,
                    summary_fields=tuple(summary) if summary else None,
                    threshold=contract.get("threshold"),
                    rungs=contract.get("rungs") or {},
                )
            )
        return infos

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> ToolOutput:
        pool, tool = self._tool(name)
        result = await pool.call_tool(tool.name, dict(arguments))
        if result.is_error:
            raise SpecialistError(
                f"{pool.name}/{tool.name}: {_text(result) or 'tool error'}", tool=name
            )
        content = result.structured_content
        if (tool.meta or {}).get(META_KEY) is not None:
            if not isinstance(content, dict) or "output" not in content:
                raise SpecialistError(
                    f"{pool.name}/{tool.name} returned no structured output", tool=name
                )
            try:
                return ToolOutput.model_validate(content)
            except ValidationError as exc:
                raise SpecialistError(
                    f"{pool.name}/{tool.name} answered outside its contract: {exc}", tool=name
                ) from exc
        if isinstance(content, dict):
            output = content
        else:
            text = _text(result)
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            output = parsed if isinstance(parsed, dict) else {"text": text}
        return ToolOutput(
            output=output, confidence=None, model=f"mcp:{pool.name}/{tool.name}", compute_ms=0.0
        )

    async def aclose(self) -> None:
        await asyncio.gather(*(p.aclose() for p in self.pools.values()), return_exceptions=True)


class CompositeToolset:
    """Several toolsets behind one: each tool name is served by exactly one of them."""

    def __init__(self, toolsets: Mapping[str, Toolset]) -> None:
        #: tool name -> the toolset that serves it
        self._route = dict(toolsets)
        self._members: list[Toolset] = []
        for toolset in toolsets.values():
            if all(toolset is not m for m in self._members):
                self._members.append(toolset)

    async def warm_up(self) -> None:
        await asyncio.gather(*(t.warm_up() for t in self._members))

    async def list_tools(self) -> list[ToolInfo]:
        listings = await asyncio.gather(*(t.list_tools() for t in self._members))
        return [
            info
            for toolset, listing in zip(self._members, listings, strict=True)
            for info in listing
            if self._route.get(info.name) is toolset
        ]

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> ToolOutput:
        try:
            toolset = self._route[name]
        except KeyError:
            raise ConfigurationError(f"no tool named {name!r}") from None
        return await toolset.call_tool(name, arguments)

    async def aclose(self) -> None:
        await asyncio.gather(*(t.aclose() for t in self._members), return_exceptions=True)
