"""The blocking API keeps one set of servers and models per orchestrator, between calls."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator import ConfigurationError, GraphSpec, Orchestrator, RunResult
from orchestrator.specialists import SpecialistRegistry

from .processes import alive, running_with

SCRIPTED = Path(__file__).parent / "servers" / "scripted_server.py"


def _graph(pid_file: Path) -> str:
    return f"""\
name: over_mcp
servers:
  models:
    command: {sys.executable}
    args: [{SCRIPTED}, --pid-file, {pid_file}]
specialists:
  first: {{via: models, tool: scripted}}
nodes:
  work:
    kind: specialists
    subtasks:
      - {{id: a, specialist: first}}
edges:
  - {{from: START, to: work}}
  - {{from: work, to: END}}
"""


def _orc(pid_file: Path) -> Orchestrator:
    registry = SpecialistRegistry(load_entry_points=False)  # everything over MCP
    spec = GraphSpec.from_text(_graph(pid_file), registry=registry)
    return Orchestrator(spec, registry=registry, checkpointer="memory")


def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_sync_runs_share_one_server_until_close(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    orc = _orc(pid_file)
    first = orc.run("I want a refund")
    pid = int(pid_file.read_text())
    pid_file.unlink()
    second = orc.run("refund again")
    assert first.value("a.label") == second.value("a.label") == "refund"
    assert not pid_file.exists(), "the second run started another server"
    assert alive(pid)
    assert "startup" not in second.timings_ms  # nothing was opened for it
    orc.close()
    assert _gone(pid)
    orc.close()  # closing twice is harmless
    # A closed orchestrator opens again when it is used again, and then closes.
    assert orc.run("refund").value("a.label") == "refund"
    again = int(pid_file.read_text())
    assert again != pid and alive(again)
    orc.close()
    assert _gone(again)


def test_with_block_opens_at_entry_and_closes_at_exit(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    with _orc(pid_file) as orc:
        pid = int(pid_file.read_text())  # open before the first run
        assert orc.run("refund").status == "ok"
    assert _gone(pid)


def test_concurrent_sync_calls_run_on_the_one_loop(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    orc = _orc(pid_file)
    results: list[RunResult] = []
    errors: list[BaseException] = []

    def call(text: str) -> None:
        try:
            results.append(orc.run(text))
        except BaseException as exc:  # collected: the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(f"refund {i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        assert [r.value("a.label") for r in results] == ["refund"] * 4
        assert len({r.thread_id for r in results}) == 4
        assert len(running_with(pid_file)) == 1  # one server, started once
    finally:
        orc.close()


def test_async_use_of_an_orchestrator_open_for_sync_calls_is_refused(tmp_path: Path) -> None:
    orc = _orc(tmp_path / "server.pid")
    orc.run("refund")
    try:
        with pytest.raises(ConfigurationError, match=r"call close\(\) before using it with await"):
            asyncio.run(orc.arun("refund"))
    finally:
        orc.close()
    assert asyncio.run(orc.arun("refund")).value("a.label") == "refund"


def test_sync_calls_inside_an_event_loop_are_refused(tmp_path: Path) -> None:
    orc = _orc(tmp_path / "server.pid")

    async def main() -> None:
        with pytest.raises(ConfigurationError, match=r"use `await orchestrator.arun\(...\)`"):
            orc.run("refund")
        with pytest.raises(ConfigurationError, match="use `async with Orchestrator"):
            orc.__enter__()

    asyncio.run(main())
    assert not (tmp_path / "server.pid").exists()


@pytest.mark.slow
def test_no_server_outlives_the_interpreter_without_close(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parents[1])!r})
from tests.test_sync_pool import _orc
from pathlib import Path
orc = _orc(Path({str(pid_file)!r}))
assert orc.run("refund").value("a.label") == "refund"
keep = orc  # still referenced at exit: the interpreter's exit closes it
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert _gone(int(pid_file.read_text()), within_s=5)


def test_a_collected_orchestrator_closes_its_servers(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    orc = _orc(pid_file)
    orc.run("refund")
    pid = int(pid_file.read_text())
    del orc
    gc.collect()
    assert _gone(pid)
