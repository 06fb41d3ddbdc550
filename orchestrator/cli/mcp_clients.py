"""``orchestrator mcp``: attach orchestrator's MCP servers to MCP clients."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator._errors import ConfigurationError
from orchestrator.cli._exit import ExitCode
from orchestrator.cli._lazy import command_group
from orchestrator.cli._output import out
from orchestrator.specialists._registry import default_registry

__all__ = ["app", "claude_desktop_config_path"]

app = command_group("Attach orchestrator's MCP servers to MCP clients.")


def claude_desktop_config_path() -> Path:
    """Where Claude Desktop keeps its configuration on this operating system."""
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    if sys.platform.startswith("win"):
        return Path(os.environ.get("APPDATA", home)) / "Claude" / "claude_desktop_config.json"
    return home / ".config" / "Claude" / "claude_desktop_config.json"


@app.command("config")
def mcp_config(
    client: Annotated[str, typer.Argument(help="The MCP client: claude-desktop.")],
    specialists: Annotated[
        list[str] | None, typer.Argument(help="Specialists to serve (default: all registered).")
    ] = None,
    name: Annotated[str, typer.Option(help="Key of the entry under mcpServers.")] = "orchestrator",
    merge: Annotated[
        Path | None,
        typer.Option(
            help=f"Merge the entry into this config file (Claude Desktop keeps it at "
            f"{claude_desktop_config_path()}); other entries are kept."
        ),
    ] = None,
) -> int:
    """Print (or merge into a file) the mcpServers entry that launches this installation."""
    if client != "claude-desktop":
        raise ConfigurationError(f"unknown MCP client {client!r}; supported: claude-desktop")
    for specialist in specialists or []:
        default_registry().get(specialist)
    entry = {
        "command": sys.executable,
        "args": ["-m", "orchestrator", "serve", *(specialists or [])],
    }
    if merge is None:
        out.print_json(json.dumps({"mcpServers": {name: entry}}))
        return ExitCode.OK
    config: dict[str, Any] = {}
    if merge.exists():
        try:
            config = json.loads(merge.read_text(encoding="utf-8") or "{}")
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{merge}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); "
                "fix or move it first"
            ) from None
        if not isinstance(config, dict) or not isinstance(config.get("mcpServers", {}), dict):
            raise ConfigurationError(f"{merge}: expected a JSON object with an mcpServers object")
    config.setdefault("mcpServers", {})[name] = entry
    merge.parent.mkdir(parents=True, exist_ok=True)
    partial = merge.with_name(merge.name + ".tmp")
    partial.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    partial.replace(merge)  # atomic: the file is never half-written
    out.print(f"added mcpServers.{name} to {merge}; restart the client to load it")
    return ExitCode.OK
