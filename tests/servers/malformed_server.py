"""A stdio MCP server that answers every tool call with `"result": "a string"` (malformed:
a result is an object), for the client's tests. It speaks JSON-RPC by hand on purpose."""

from __future__ import annotations

import json
import sys


def reply(request_id: object, result: object) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}) + "\n")
    sys.stdout.flush()


def main() -> None:
    for line in sys.stdin:
        message = json.loads(line)
        method, request_id = message.get("method"), message.get("id")
        if request_id is None:
            continue  # a notification
        if method == "initialize":
            reply(
                request_id,
                {
                    "protocolVersion": message["params"]["protocolVersion"],
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "malformed", "version": "1"},
                },
            )
        elif method == "tools/list":
            schema = {"type": "object", "properties": {"text": {"type": "string"}}}
            reply(request_id, {"tools": [{"name": "echo", "inputSchema": schema}]})
        elif method == "tools/call":
            reply(request_id, "a string")
        else:
            reply(request_id, {})


if __name__ == "__main__":
    main()
