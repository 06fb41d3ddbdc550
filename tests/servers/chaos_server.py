"""A plain MCP server for the chaos tests: a quick tool, a slow one and one that never answers.

Its pid goes to ``--pid-file`` (rewritten at each start), so that a test can kill it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from mcp.server.mcpserver import MCPServer

server = MCPServer("chaos")


@server.tool()
def quick(text: str) -> str:
    """Echo the text at once."""
    return text


@server.tool()
async def slow(text: str) -> str:
    """Echo the text after half a second."""
    await asyncio.sleep(0.5)
    return text


@server.tool()
async def hang(text: str) -> str:
    """Never answer."""
    await asyncio.Event().wait()
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--pid-file")
    args = parser.parse_args()
    if args.pid_file:
        Path(args.pid_file).write_text(str(os.getpid()))
    server.run("stdio")
