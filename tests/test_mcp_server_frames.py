"""Our MCP server at its boundaries: frames the SDK would leave unanswered get an error back,
an unknown prompt is the caller's mistake, Ctrl-C stops a stdio server at once, and Host/Origin
checks stay on for a server on a public address."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from mcp.server.transport_security import TransportSecurityMiddleware

from orchestrator._errors import InvalidArgumentError
from orchestrator.tools.server import invalid_request, run_server, transport_security

from ._stdio_peer import StdioPeer

WRONG_IDS: list[Any] = [1.5, True, {}, [], None]

pytestmark = pytest.mark.slow


@pytest.fixture
def peer() -> Iterator[StdioPeer]:
    server = StdioPeer()
    try:
        server.initialize()
        yield server
    finally:
        server.stop()


def test_requests_with_a_wrong_id_type_get_invalid_request(peer: StdioPeer) -> None:
    for wrong in WRONG_IDS:
        peer.send({"jsonrpc": "2.0", "id": wrong, "method": "ping"})
        answer = peer.receive()
        assert answer["id"] is None
        assert answer["error"]["code"] == -32600
        assert "a request id is a string or an integer" in answer["error"]["message"]
    peer.send({"jsonrpc": "2.0", "id": 9, "method": "ping"})
    assert peer.receive() == {"jsonrpc": "2.0", "id": 9, "result": {}}


def test_an_unknown_prompt_is_invalid_params_without_a_traceback(peer: StdioPeer) -> None:
    peer.send({"jsonrpc": "2.0", "id": 3, "method": "prompts/get", "params": {"name": "nope"}})
    answer = peer.receive()
    assert answer["error"] == {
        "code": -32602,
        "message": "unknown prompt 'nope': this server has no prompts",
    }
    assert "Traceback" not in peer.stop()


def test_ctrl_c_stops_the_server_without_another_line(peer: StdioPeer) -> None:
    peer.proc.send_signal(signal.SIGINT)
    peer.proc.wait(timeout=15)  # it waited for the next stdin line before
    assert "Fatal Python error" not in peer.stop()


def test_a_ctrl_c_that_something_swallows_still_ends_the_process() -> None:
    # A handler that ignores SIGINT stands for a task that swallows the cancellation.
    code = (
        "import signal, time\n"
        "from orchestrator.tools import server\n"
        "server.INTERRUPT_GRACE_S = 0.5\n"
        "signal.signal(signal.SIGINT, lambda *_: None)\n"
        "with server._forced_exit_after_interrupt():\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 130
    process.stdout.close()


@pytest.mark.parametrize("wrong", WRONG_IDS, ids=repr)
def test_invalid_request_recognises_wrong_ids(wrong: Any) -> None:
    error = invalid_request(json.dumps({"jsonrpc": "2.0", "id": wrong, "method": "ping"}))
    assert error is not None and error.id is None and error.error.code == -32600


@pytest.mark.parametrize(
    "frame",
    [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": "a", "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 1.5, "result": {}},  # not a request: the SDK's to judge
    ],
)
def test_invalid_request_passes_everything_else(frame: dict[str, Any]) -> None:
    assert invalid_request(json.dumps(frame)) is None
    assert invalid_request("{not json") is None


def _checked(settings: Any, host: str, origin: str | None = None) -> int | None:
    """The status the SDK's Host/Origin check answers a POST with, None if it passes."""
    headers = {"host": host, "content-type": "application/json"}
    if origin is not None:
        headers["origin"] = origin
    # The check reads nothing but the headers of the request it is given.
    request: Any = SimpleNamespace(headers=headers)
    refused = asyncio.run(TransportSecurityMiddleware(settings).validate_request(request, True))
    return None if refused is None else refused.status_code


def test_host_checks_stay_on_for_a_public_host() -> None:
    settings = transport_security("0.0.0.0", "secret", ["mcp.example.com"])
    assert _checked(settings, "mcp.example.com:8765") is None
    assert _checked(settings, "mcp.example.com") is None
    assert _checked(settings, "mcp.example.com", "https://mcp.example.com") is None
    assert _checked(settings, "evil.example:8765") == 421  # DNS rebinding: a foreign Host
    assert _checked(settings, "mcp.example.com", "http://evil.example") == 403
    named = transport_security("10.1.2.3", None, [])
    assert _checked(named, "10.1.2.3:8765") is None and _checked(named, "evil.example") == 421
    assert transport_security("127.0.0.1", "secret", []) is None  # the SDK's own loopback rules
    assert transport_security("0.0.0.0", None, []) is None  # open anyway: the CLI warns


def test_a_token_on_a_public_address_needs_allowed_hosts() -> None:
    with pytest.raises(InvalidArgumentError, match="--allowed-host NAME"):
        transport_security("0.0.0.0", "secret", [])
    with pytest.raises(InvalidArgumentError, match="--allowed-host NAME"):
        asyncio.run(run_server({}, transport="http", host="0.0.0.0", token="secret"))
