"""The scripted MCP server as a stdio subprocess, spoken to one JSON-RPC line at a time."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SCRIPTED = str(Path(__file__).parent / "servers" / "scripted_server.py")
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}


def _default_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class StdioPeer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, SCRIPTED],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Ctrl-C as a terminal delivers it, even when the tests run in the background
            # (where the shell starts them ignoring SIGINT, and the server keeps that).
            preexec_fn=_default_ctrl_c,
        )
        # Lines are split here: a buffered readline would keep a second answer out of
        # select's sight and read as a hang.
        self._pending = b""

    def send(self, frame: bytes | Any) -> None:
        """Write one frame (bytes as they are, anything else as JSON) as one line."""
        raw = frame if isinstance(frame, bytes) else json.dumps(frame).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(raw.replace(b"\n", b" ") + b"\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float = 10) -> Any:
        """The next line the server writes, as JSON; fails after `timeout` seconds."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, left))
            assert ready, f"no answer within {timeout} s: hung"
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            assert chunk, "the server died"
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return json.loads(line)  # every line the server writes is JSON

    def receive_answer(self, request_id: int, timeout: float = 10) -> dict[str, Any]:
        """Read answers (to earlier frames among them) until the one to `request_id`."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.receive(max(0.0, deadline - time.monotonic()))
            if isinstance(answer, dict) and answer.get("id") == request_id:
                return answer

    def initialize(self) -> None:
        self.send(INITIALIZE)
        assert "result" in self.receive_answer(0, timeout=60)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def stop(self) -> str:
        """Stop the server (if it still runs) and return what it wrote to stderr."""
        if self.proc.poll() is None:
            self.proc.kill()
        _, err = self.proc.communicate(timeout=20)  # closes the pipes
        return err.decode(errors="replace")
