"""How to reach one MCP server: the tools layer's own configuration.

A graph file's ``servers:`` entries convert to it (see ``Orchestrator``); code that opens a
pool or a toolset itself builds it directly.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["MCPServerConfig", "transport_problem"]


class ServerTransport(Protocol):
    """The fields that say how a server is reached (shared with the graph file's spec)."""

    @property
    def command(self) -> str | None: ...
    @property
    def args(self) -> list[str]: ...
    @property
    def env(self) -> dict[str, str]: ...
    @property
    def cwd(self) -> str | None: ...
    @property
    def url(self) -> str | None: ...
    @property
    def bearer_token_env(self) -> str | None: ...
    @property
    def headers(self) -> dict[str, str]: ...


def transport_problem(server: ServerTransport) -> str | None:
    """What is wrong with how a server is to be reached, or None."""
    if (server.command is None) == (server.url is None):
        return "give either `command` (stdio) or `url` (streamable HTTP), not both"
    if server.url is not None and not server.url.startswith(("http://", "https://")):
        return "`url` must start with http:// or https://"
    if server.command is None and (server.args or server.env or server.cwd):
        return "`args`, `env` and `cwd` apply to a `command` server"
    if server.url is None and (server.bearer_token_env or server.headers):
        return "`bearer_token_env` and `headers` apply to a `url` server"
    return None


class MCPServerConfig(BaseModel):
    """An MCP server: a command to launch (stdio) or a URL (streamable HTTP)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str | None = Field(
        default=None,
        description="Program to launch for a stdio server; `orchestrator` means this "
        "installation's own CLI, run by this Python.",
    )
    args: list[str] = Field(default_factory=list, description="Arguments of the command.")
    env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment variables for the command."
    )
    cwd: str | None = Field(
        default=None,
        description="Working directory of the command (a relative one is relative to the "
        "toolset's base_dir).",
    )
    url: str | None = Field(default=None, description="Endpoint of a streamable HTTP server.")
    bearer_token_env: str | None = Field(
        default=None,
        description="Name of the environment variable that holds the HTTP bearer token.",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers.")
    pool_size: int = Field(default=1, ge=1, le=32, description="Long-lived sessions kept open.")
    connect_timeout_s: float = Field(
        default=120, gt=0, le=3600, description="How long starting and connecting may take."
    )

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerConfig:
        problem = transport_problem(self)
        if problem:
            raise ValueError(problem)
        return self
