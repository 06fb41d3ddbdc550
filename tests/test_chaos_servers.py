"""Chaos at the MCP servers: killed mid-run, between runs and under 60 concurrent runs, a
server that never answers, servers that answer garbage. Each run returns in bounded time
with the failure recorded on its subtask (never raised, never a hang), and the pool starts
a dead server again for the next call."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator import GraphSpec, Orchestrator, RunResult
from orchestrator.specialists import SpecialistRegistry

from .processes import alive

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

SERVERS = Path(__file__).parent / "servers"
BOUND_S = 60.0  # no run may take longer: a hang fails the test instead of stalling CI


def _graph(server_args: list[str], tool: str, *, retries: int = 0, timeout_s: float = 5.0) -> str:
    """One subtask calling `tool` on a stdio server run with `server_args`."""
    return f"""\
name: chaos_servers
servers:
  chaos: {{command: "{sys.executable}", args: {json.dumps(server_args)}}}
specialists:
  tool: {{via: chaos, tool: {tool}, min_confidence: 0}}
policies: {{retries: {retries}, retry_backoff_s: 0.05, timeout_s: {timeout_s}}}
nodes:
  work:
    kind: specialists
    subtasks:
      - {{id: s, specialist: tool}}
edges:
  - {{from: START, to: work}}
"""


def _chaos(tmp_path: Path) -> list[str]:
    return [str(SERVERS / "chaos_server.py"), "--pid-file", str(tmp_path / "server.pid")]


def _orchestrator(text: str) -> Orchestrator:
    registry = SpecialistRegistry(load_entry_points=False)
    return Orchestrator(
        GraphSpec.from_text(text, registry=registry), registry=registry, checkpointer="memory"
    )


async def _bounded(orc: Orchestrator, text: str) -> RunResult:
    return await asyncio.wait_for(orc.arun(text), BOUND_S)


async def _server_pid(pid_file: Path, other_than: int | None = None) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = pid_file.read_text() if pid_file.exists() else ""
        if text and int(text) != other_than:
            return int(text)
        await asyncio.sleep(0.02)
    raise AssertionError("the server never (re)started")


def _subtask(result: RunResult) -> Any:
    (sub,) = result.subtasks
    return sub


def test_a_server_killed_mid_run_is_a_recorded_failure_then_starts_again(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "server.pid"

    async def scenario() -> tuple[RunResult, RunResult, int, int]:
        async with _orchestrator(_graph(_chaos(tmp_path), "slow")) as orc:
            first_pid = await _server_pid(pid_file)
            running = asyncio.create_task(_bounded(orc, "in flight"))
            await asyncio.sleep(0.2)  # inside the tool's half second
            os.kill(first_pid, signal.SIGKILL)
            killed = await running
            after = await _bounded(orc, "next run")
            second_pid = await _server_pid(pid_file, other_than=first_pid)
        return killed, after, first_pid, second_pid

    killed, after, first_pid, second_pid = asyncio.run(scenario())
    sub = _subtask(killed)
    assert killed.status == "failed" and not sub.ok
    assert sub.error  # the transport failure, recorded on the subtask
    assert after.status == "ok" and _subtask(after).output == {"result": "next run"}
    assert first_pid != second_pid
    assert not alive(first_pid) and not alive(second_pid)  # both gone once closed


def test_a_server_killed_between_runs_starts_again(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"

    async def scenario() -> list[RunResult]:
        async with _orchestrator(_graph(_chaos(tmp_path), "quick", retries=1)) as orc:
            first = await _bounded(orc, "one")
            pid = await _server_pid(pid_file)
            os.kill(pid, signal.SIGKILL)
            while alive(pid):
                await asyncio.sleep(0.02)
            return [first, await _bounded(orc, "two")]

    first, second = asyncio.run(scenario())
    assert [r.status for r in (first, second)] == ["ok", "ok"]
    # The pool learns of the death from the first attempt, which is retried on a new server.
    assert _subtask(second).output == {"result": "two"} and _subtask(second).attempts == 2


def test_a_server_killed_under_60_concurrent_runs(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"

    async def scenario() -> tuple[list[RunResult], RunResult, float]:
        async with _orchestrator(_graph(_chaos(tmp_path), "slow", retries=1)) as orc:
            pid = await _server_pid(pid_file)
            start = time.monotonic()
            runs = [asyncio.create_task(_bounded(orc, f"run {i}")) for i in range(60)]
            await asyncio.sleep(0.25)
            os.kill(pid, signal.SIGKILL)
            results = await asyncio.gather(*runs)
            elapsed = time.monotonic() - start
            return results, await _bounded(orc, "after"), elapsed

    results, after, elapsed = asyncio.run(scenario())
    assert len(results) == 60 and elapsed < BOUND_S
    for i, result in enumerate(results):
        sub = _subtask(result)
        # Retried on the restarted server, or failed with the failure on record.
        assert (sub.ok and sub.output == {"result": f"run {i}"}) or (not sub.ok and sub.error)
        assert result.status in ("ok", "failed")
    assert after.status == "ok"


def test_a_server_that_never_answers_times_out_and_is_retried(tmp_path: Path) -> None:
    orc = _orchestrator(_graph(_chaos(tmp_path), "hang", retries=1, timeout_s=0.5))

    async def scenario() -> tuple[RunResult, float]:
        start = time.monotonic()
        async with orc:
            result = await _bounded(orc, "anyone there?")
        return result, time.monotonic() - start

    result, elapsed = asyncio.run(scenario())
    sub = _subtask(result)
    assert result.status == "failed" and not sub.ok and sub.attempts == 2
    assert "did not answer within 0.5 s" in sub.error
    assert elapsed < 20


@pytest.mark.parametrize("mode", ["text", "wrong_result", "bad_output", "exit"])
def test_a_server_that_answers_garbage_is_a_recorded_failure(mode: str) -> None:
    orc = _orchestrator(
        _graph([str(SERVERS / "garbage_server.py"), "--mode", mode], "echo", timeout_s=2)
    )

    async def scenario() -> tuple[list[RunResult], float]:
        start = time.monotonic()
        async with orc:
            # Twice: the garbage (or the dead server) does not spoil the next call either.
            results = [await _bounded(orc, "hello"), await _bounded(orc, "again")]
        return results, time.monotonic() - start

    results, elapsed = asyncio.run(scenario())
    for result in results:
        sub = _subtask(result)
        assert result.status == "failed" and not sub.ok and sub.error, (mode, sub)
    assert elapsed < BOUND_S
