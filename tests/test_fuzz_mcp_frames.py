"""Fuzzing our MCP server over both transports with malformed and hostile frames.

One scripted server per transport (a subprocess, stdio or streamable HTTP on 127.0.0.1)
receives random JSON, JSON-RPC-shaped frames with wrong fields and ids, tool calls with
random arguments, and raw bytes. After each frame the server must still be alive and answer
a ping within a bound; over HTTP no frame may get a 5xx. A normal run sends a few dozen
frames per transport; `make fuzz` sends thousands and reports the servers' RSS growth
(RELIABILITY.md).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ._stdio_peer import INITIALIZE, SCRIPTED, StdioPeer

TOKEN = "fuzz-token-0123456789"
#: How long a ping after any frame may take before the server counts as hung.
BOUND_S = 10.0
#: Where `make fuzz` collects frame counts and RSS (unset in a normal run).
REPORT = os.environ.get("ORCHESTRATOR_FUZZ_REPORT")

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=16),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
METHODS = st.sampled_from(
    [
        "ping", "tools/list", "tools/call", "prompts/get", "prompts/list", "resources/read",
        "resources/list", "initialize", "logging/setLevel", "completion/complete",
        "notifications/initialized", "notifications/cancelled", "nope", "",
    ]
) | st.text(max_size=12)  # fmt: skip
TOOLS = st.sampled_from(["scripted", "scripted_batch", "missing", ""])
ARGUMENTS = st.one_of(
    JSON,
    st.fixed_dictionaries({"text": JSON}),
    st.fixed_dictionaries({"text": st.text(max_size=1200)}),
    st.fixed_dictionaries({"items": st.lists(st.fixed_dictionaries({"text": JSON}), max_size=12)}),
)
FRAMES = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"jsonrpc": st.sampled_from(["2.0", "1.0", 2, None]), "id": JSON, "method": METHODS},
        optional={"params": JSON},
    ),
    st.fixed_dictionaries(
        {
            "jsonrpc": st.just("2.0"),
            "id": st.integers(1, 10**6) | st.text(max_size=6),
            "method": st.just("tools/call"),
            "params": st.fixed_dictionaries({"name": TOOLS, "arguments": ARGUMENTS}),
        }
    ),
    st.fixed_dictionaries(
        {"jsonrpc": st.just("2.0"), "id": JSON}, optional={"result": JSON, "error": JSON}
    ),
).map(lambda frame: json.dumps(frame).encode()) | st.binary(max_size=80)
PROBE_IDS = itertools.count(10**9)


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class _Record:
    """Frames sent and the server's RSS, appended to the report when one is asked for."""

    def __init__(self, transport: str, pid: int) -> None:
        self.transport, self.pid, self.frames = transport, pid, 0
        self.rss_start_kb = _rss_kb(pid)

    def close(self) -> None:
        if REPORT:
            with open(REPORT, "a", encoding="utf-8") as report:
                entry = {
                    "suite": f"mcp frames ({self.transport})",
                    "frames": self.frames,
                    "rss_start_kb": self.rss_start_kb,
                    "rss_end_kb": _rss_kb(self.pid),
                }
                report.write(json.dumps(entry) + "\n")


class StdioServer(StdioPeer):
    def __init__(self) -> None:
        super().__init__()
        self.initialize()
        self.record = _Record("stdio", self.proc.pid)


@pytest.fixture(scope="module")
def stdio_server() -> Iterator[StdioServer]:
    server = StdioServer()
    try:
        yield server
    finally:
        server.record.close()
        server.stop()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=FRAMES)
def test_stdio_survives_every_frame(frame: bytes, stdio_server: StdioServer) -> None:
    stdio_server.send(frame)
    stdio_server.record.frames += 1
    probe = next(PROBE_IDS)
    stdio_server.send({"jsonrpc": "2.0", "id": probe, "method": "ping"})
    stdio_server.receive_answer(probe, timeout=BOUND_S)
    assert stdio_server.proc.poll() is None


class HttpServer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, SCRIPTED, "--transport", "http", "--token-env", "FUZZ_TOKEN"],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "FUZZ_TOKEN": TOKEN},
        )
        assert self.proc.stderr is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None:
            assert time.monotonic() < deadline and self.proc.poll() is None, "no server"
            found = re.search(r"on (http://127\.0\.0\.1:\d+/mcp)", self.proc.stderr.readline())
            url = found.group(1) if found else None
        self.url = url
        self.http = httpx2.Client(timeout=BOUND_S)
        self.headers = {
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        hello = self.post(json.dumps(INITIALIZE).encode())
        assert hello.status_code == 200
        self.headers["mcp-session-id"] = hello.headers["mcp-session-id"]
        self.headers["mcp-protocol-version"] = "2025-06-18"
        self.post(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
        self.record = _Record("streamable HTTP", self.proc.pid)

    def post(self, frame: bytes) -> httpx2.Response:
        return self.http.post(self.url, content=frame, headers=self.headers)


@pytest.fixture(scope="module")
def http_server() -> Iterator[HttpServer]:
    server = HttpServer()
    try:
        yield server
    finally:
        server.record.close()
        server.http.close()
        server.proc.terminate()
        server.proc.communicate(timeout=20)  # closes the stderr pipe


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=FRAMES)
def test_http_survives_every_frame(frame: bytes, http_server: HttpServer) -> None:
    answer = http_server.post(frame)  # a hang is an httpx2 timeout after BOUND_S
    http_server.record.frames += 1
    assert answer.status_code < 500, (frame, answer.status_code, answer.text[:300])
    probe = next(PROBE_IDS)
    ping = http_server.post(json.dumps({"jsonrpc": "2.0", "id": probe, "method": "ping"}).encode())
    assert ping.status_code == 200 and str(probe) in ping.text
    assert http_server.proc.poll() is None
