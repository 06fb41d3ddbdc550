"""The pooled MCP client against real servers: stdio subprocesses and streamable HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from orchestrator import GraphSpec, Orchestrator, ToolTransportError
from orchestrator.specialists import SpecialistRegistry
from orchestrator.tools._config import MCPServerConfig
from orchestrator.tools._pool import MCPSessionPool
from orchestrator.tools.mcp_toolset import MCPToolset

from .processes import alive, served_url

SERVERS = Path(__file__).parent / "servers"
SCRIPTED = str(SERVERS / "scripted_server.py")
THIRD_PARTY = str(SERVERS / "third_party_server.py")
TOKEN = "test-token-0123456789"

pytestmark = pytest.mark.slow


def _wait_pid(path: Path) -> int:
    deadline = time.monotonic() + 30
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, "the server never wrote its pid"
        time.sleep(0.05)
    return int(path.read_text())


def _stdio_spec(pid_file: Path | None = None) -> MCPServerConfig:
    args = [SCRIPTED] + (["--pid-file", str(pid_file)] if pid_file else [])
    return MCPServerConfig(command=sys.executable, args=args)


def test_stdio_pool_concurrent_calls_and_clean_shutdown(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    async def main() -> tuple[list[str], int]:
        pool = MCPSessionPool("scripted", _stdio_spec(pid_file))
        await pool.start()
        pid = _wait_pid(pid_file)
        try:
            assert {"scripted", "scripted_batch", "slow", "slow_batch"} <= set(pool.tools)
            texts = [f"refund #{i}" for i in range(60)]
            results = await asyncio.gather(
                *(pool.call_tool("scripted", {"text": t}) for t in texts)
            )
            echoed = [r.structured_content["output"]["text"] for r in results]  # type: ignore[index]
        finally:
            await pool.aclose()
        return echoed, pid

    echoed, pid = asyncio.run(main())
    assert echoed == [f"refund #{i}" for i in range(60)]
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "the server process outlived the pool"


def test_a_killed_server_is_restarted(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    async def main() -> tuple[int, int, int]:
        pool = MCPSessionPool("scripted", _stdio_spec(pid_file))
        await pool.start()
        try:
            first = _wait_pid(pid_file)
            await pool.call_tool("scripted", {"text": "before"})
            pid_file.write_text("")
            os.kill(first, signal.SIGKILL)
            await asyncio.sleep(0.3)
            with pytest.raises(ToolTransportError):
                await pool.call_tool("scripted", {"text": "while dead"})
            after = await pool.call_tool("scripted", {"text": "after"})
            assert after.structured_content["output"]["text"] == "after"  # type: ignore[index]
            return first, _wait_pid(pid_file), pool.restarts
        finally:
            await pool.aclose()

    first, second, restarts = asyncio.run(main())
    assert first != second and restarts == 1


def test_unreachable_server_is_a_transport_error() -> None:
    async def main() -> None:
        spec = MCPServerConfig(
            command=sys.executable, args=["-c", "import sys; sys.exit(3)"], connect_timeout_s=20
        )
        with pytest.raises(ToolTransportError, match="cannot connect to MCP server 'broken'"):
            await MCPSessionPool("broken", spec).start()

    asyncio.run(main())


@pytest.fixture
def http_server() -> Iterator[str]:
    env = {**os.environ, "SCRIPTED_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [
            sys.executable,
            SCRIPTED,
            "--transport",
            "http",
            "--port",
            "0",
            "--token-env",
            "SCRIPTED_TOKEN",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield served_url(proc)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stderr:
            proc.stderr.close()


def test_http_needs_the_bearer_token(http_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    denied = httpx2.post(http_server, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert denied.status_code == 401
    wrong = httpx2.post(http_server, json={}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401

    async def main(token_env: str) -> str:
        pool = MCPSessionPool(
            "http",
            MCPServerConfig(url=http_server, bearer_token_env=token_env, connect_timeout_s=20),
        )
        await pool.start()
        try:
            result = await pool.call_tool("scripted", {"text": "refund over http"})
            return str(result.structured_content["output"]["label"])  # type: ignore[index]
        finally:
            await pool.aclose()

    monkeypatch.setenv("GOOD_TOKEN", TOKEN)
    assert asyncio.run(main("GOOD_TOKEN")) == "refund"
    monkeypatch.setenv("BAD_TOKEN", "wrong")
    with pytest.raises(ToolTransportError):
        asyncio.run(main("BAD_TOKEN"))


def test_http_malformed_json_rpc_gets_an_error_and_the_server_goes_on(
    http_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    garbage = httpx2.post(http_server, content=b"{not json", headers=headers)
    assert 400 <= garbage.status_code < 500
    assert "-32700" in garbage.text or "Parse error" in garbage.text
    monkeypatch.setenv("GOOD_TOKEN", TOKEN)

    async def main() -> bool:
        pool = MCPSessionPool(
            "http", MCPServerConfig(url=http_server, bearer_token_env="GOOD_TOKEN")
        )
        await pool.start()
        try:
            return not (await pool.call_tool("scripted", {"text": "still fine"})).is_error
        finally:
            await pool.aclose()

    assert asyncio.run(main())


GRAPH = f"""\
name: over_mcp
servers:
  models:
    command: {sys.executable}
    args: [{SCRIPTED}]
  calculator:
    command: {sys.executable}
    args: [{THIRD_PARTY}]
specialists:
  first: {{via: models, tool: scripted}}
  slow: {{via: models, timeout_s: 0.3}}
  adder: {{via: calculator, tool: add, min_confidence: 0}}
  shouter: {{via: calculator, tool: shout}}
policies: {{retries: 1, retry_backoff_s: 0}}
nodes:
  work:
    kind: specialists
    subtasks:
      - {{id: a, specialist: first}}
      - {{id: total, specialist: adder, input: {{a: 2, b: 3}}}}
      - {{id: loud, specialist: shouter, depends_on: [a], input: {{text: "{{{{ a.label }}}}"}}}}
      - {{id: late, specialist: slow}}
  refund_route:
    kind: set
    set: {{queue: refunds, sum: "{{{{ total.result }}}}"}}
edges:
  - {{from: START, to: work}}
  - {{from: work, to: refund_route, when: "a.label == 'refund' and a.verified"}}
  - {{from: work, to: END}}
"""


def test_graph_through_our_server_and_a_third_party_server() -> None:
    registry = SpecialistRegistry(load_entry_points=False)  # nothing in process: all over MCP
    spec = GraphSpec.from_text(GRAPH, registry=registry)

    async def main() -> list[object]:
        async with Orchestrator(spec, registry=registry, checkpointer="memory") as orc:
            first = await orc.arun("I want a refund")
            second = await orc.arun("refund again")  # the pooled sessions survive the timeout
            return [first, second]

    first, second = asyncio.run(main())
    for result in (first, second):
        assert result.value("a.label") == "refund"  # type: ignore[attr-defined]
    result = first
    a = result.fields["a.label"].provenance  # type: ignore[attr-defined]
    assert (a.model, a.verified, a.confidence) == ("scripted-v1", True, 0.95)
    total = result.fields["total.result"]  # type: ignore[attr-defined]
    assert total.value == 5 and total.provenance.model == "mcp:calculator/add"
    assert total.provenance.verified and total.provenance.confidence is None
    loud = next(s for s in result.subtasks if s.id == "loud")  # type: ignore[attr-defined]
    assert loud.output == {"result": "REFUND"} and not loud.verified
    assert any("reports no confidence" in r for r in loud.reasons)
    late = next(s for s in result.subtasks if s.id == "late")  # type: ignore[attr-defined]
    assert not late.ok and late.attempts == 2 and "did not answer within 0.3 s" in late.error
    assert result.value("sum") == 5  # type: ignore[attr-defined]


def test_binding_to_a_missing_tool_is_a_clear_error() -> None:
    async def main() -> None:
        toolset = MCPToolset({"models": _stdio_spec()}, {"x": ("models", "nope")})
        try:
            await toolset.warm_up()
            with pytest.raises(Exception, match="MCP server 'models' has no tool 'nope'"):
                await toolset.list_tools()
        finally:
            await toolset.aclose()

    asyncio.run(main())


def test_results_of_our_tools_skip_the_sdks_duplicate_schema_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mcp.client.session import ClientSession

    checked: list[str] = []

    async def sdk_validate(self: ClientSession, name: str, result: object) -> None:
        checked.append(name)

    monkeypatch.setattr(ClientSession, "validate_tool_result", sdk_validate)
    spec = MCPServerConfig(command=sys.executable, args=[SCRIPTED])
    third = MCPServerConfig(command=sys.executable, args=[THIRD_PARTY])

    async def main() -> None:
        ours, theirs = MCPSessionPool("ours", spec), MCPSessionPool("theirs", third)
        await asyncio.gather(ours.start(), theirs.start())
        try:
            result = await ours.call_tool("scripted", {"text": "refund"})
            assert result.structured_content["output"]["label"] == "refund"  # type: ignore[index]
            assert (await theirs.call_tool("add", {"a": 1, "b": 2})).structured_content == {
                "result": 3
            }
        finally:
            await asyncio.gather(ours.aclose(), theirs.aclose())

    asyncio.run(main())
    assert checked == ["add"]


@pytest.mark.parametrize("wrong", [1.5, True, {}, [], None], ids=repr)
def test_http_requests_with_a_wrong_id_type_get_invalid_request(
    http_server: str, wrong: object
) -> None:
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    answer = httpx2.post(
        http_server, json={"jsonrpc": "2.0", "id": wrong, "method": "ping"}, headers=headers
    )
    assert answer.status_code == 400  # the SDK answered 202 and never replied
    assert answer.json()["id"] is None
    assert answer.json()["error"]["code"] == -32600


def test_a_refused_token_names_its_variable(
    http_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def start(token_env: str | None) -> None:
        pool = MCPSessionPool(
            "remote",
            MCPServerConfig(url=http_server, bearer_token_env=token_env, connect_timeout_s=20),
        )
        await pool.start()
        await pool.aclose()

    monkeypatch.setenv("BAD_TOKEN", "wrong")
    with pytest.raises(ToolTransportError) as refused:
        asyncio.run(start("BAD_TOKEN"))
    assert str(refused.value) == (
        f"MCP server 'remote' ({http_server}) refused the token in $BAD_TOKEN "
        "(HTTP 401): set BAD_TOKEN to the token the server was started with"
    )
    with pytest.raises(
        ToolTransportError, match=r"\(HTTP 401\): it needs a token; name the environment variable"
    ):
        asyncio.run(start(None))


def test_a_malformed_reply_fails_the_call_at_once() -> None:
    malformed = MCPServerConfig(
        command=sys.executable, args=[str(SERVERS / "malformed_server.py")], connect_timeout_s=30
    )

    async def main() -> None:
        pool = MCPSessionPool("malformed", malformed)
        await pool.start()
        try:
            # Before, the reply was dropped and the call waited for its timeout: here, forever.
            with pytest.raises(ToolTransportError, match="the server sent a malformed reply"):
                await asyncio.wait_for(pool.call_tool("echo", {"text": "x"}), 30)
        finally:
            await pool.aclose()

    asyncio.run(main())
