"""A stdio "MCP server" that shakes hands properly and then answers every tool call with
garbage of one kind (``--mode``), for the chaos tests:

- ``text``: lines that are not JSON at all;
- ``wrong_result``: a JSON-RPC response whose result is a string, not a CallToolResult;
- ``bad_output``: a well-formed result whose structured content breaks the output schema;
- ``exit``: the process exits in the middle of the call.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

TOOL = {
    "name": "echo",
    "description": "Echo a text.",
    "inputSchema": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
    "outputSchema": {
        "type": "object",
        "properties": {"result": {"type": "string"}},
        "required": ["result"],
    },
}


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def answer(request: dict[str, Any], mode: str) -> None:
    rid = request["id"]
    if mode == "text":
        sys.stdout.write("}{ this is not json\n\x00\x01 neither is this\n")
        sys.stdout.flush()
    elif mode == "wrong_result":
        send({"jsonrpc": "2.0", "id": rid, "result": "string"})
    elif mode == "bad_output":
        content = {"result": 42, "extra": [1, 2]}
        send(
            {
                "jsonrpc": "2.0",
                "id": rid,
                "result": {
                    "content": [{"type": "text", "text": json.dumps(content)}],
                    "structuredContent": content,
                },
            }
        )
    elif mode == "exit":
        sys.exit(3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True)
    mode = parser.parse_args().mode
    for line in sys.stdin:
        request = json.loads(line)
        method = request.get("method")
        if "id" not in request:
            continue  # a notification
        if method == "initialize":
            result: dict[str, Any] = {
                "protocolVersion": request["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "garbage", "version": "0"},
            }
            send({"jsonrpc": "2.0", "id": request["id"], "result": result})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": request["id"], "result": {"tools": [TOOL]}})
        elif method == "tools/call":
            answer(request, mode)
        else:
            send({"jsonrpc": "2.0", "id": request["id"], "result": {}})


if __name__ == "__main__":
    main()
