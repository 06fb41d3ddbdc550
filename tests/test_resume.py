"""A run killed midway resumes from its checkpoint without redoing finished subtasks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator import GraphSpec, Orchestrator, RunError, ThreadBusyError
from orchestrator._leases import SqliteThreadLeases
from orchestrator.specialists import SpecialistRegistry
from orchestrator.specialists.testing import ScriptedSpecialist

GRAPH = """\
name: crashy
specialists:
  fast: {{uses: scripted, options: {{log_file: "{a_log}", default: {{label: done}}}}}}
  slow: {{uses: scripted, options: {{log_file: "{b_log}", delay_s: {delay}}}}}
policies: {{durability: sync}}
nodes:
  work:
    kind: specialists
    subtasks:
      - {{id: a, specialist: fast}}
      - {{id: b, specialist: slow, depends_on: [a], input: {{text: "after {{{{ a.label }}}}"}}}}
edges:
  - {{from: START, to: work}}
"""

RUNNER = """\
import sys
from orchestrator import Orchestrator, register_specialist
from orchestrator.specialists.testing import ScriptedSpecialist
register_specialist(ScriptedSpecialist)
Orchestrator.from_file(sys.argv[1], state_dir=sys.argv[2]).run("go", thread_id="crash-1")
"""


@pytest.mark.slow
def test_killed_run_resumes_without_redoing_finished_subtasks(tmp_path: Path) -> None:
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    graph = tmp_path / "crashy.yaml"
    graph.write_text(GRAPH.format(a_log=a_log, b_log=b_log, delay=60))
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, str(runner), str(graph), str(state)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not (b_log.exists() and b_log.read_text()):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the slow subtask never started"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
    assert a_log.read_text() == "go\n"
    assert b_log.read_text() == "after done\n"

    registry = SpecialistRegistry(load_entry_points=False)
    registry.register(ScriptedSpecialist)
    graph.write_text(GRAPH.format(a_log=a_log, b_log=b_log, delay=0))
    orc = Orchestrator(
        GraphSpec.from_file(graph, registry=registry), state_dir=state, registry=registry
    )
    result = orc.resume("crash-1")

    assert result.status == "ok"
    assert [s.id for s in result.subtasks] == ["a", "b"]
    assert a_log.read_text() == "go\n", "the finished subtask ran again"
    assert b_log.read_text() == "after done\nafter done\n"
    assert result.value("b.label") == "other"


def test_a_checkpoint_with_only_the_input_runs_again_and_never_reads_as_done(
    tmp_path: Path,
) -> None:
    # A process killed while writing its first steps can leave a checkpoint that holds the
    # request and nothing else, with LangGraph reporting nothing left to run (`next == ()`).
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.memory import InMemorySaver

    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    registry = SpecialistRegistry(load_entry_points=False)
    registry.register(ScriptedSpecialist)
    spec = GraphSpec.from_text(GRAPH.format(a_log=a_log, b_log=b_log, delay=0), registry=registry)
    saver = InMemorySaver()
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"request": {"text": "go", "metadata": {}}}
    checkpoint["channel_versions"] = {"request": saver.get_next_version(None, None)}
    config: Any = {"configurable": {"thread_id": "orphan", "checkpoint_ns": ""}}
    versions = checkpoint["channel_versions"]
    saver.put(config, checkpoint, {"source": "input", "step": -1, "parents": {}}, versions)

    orc = Orchestrator(spec, checkpointer=saver, registry=registry)
    assert orc.resume("orphan").status == "ok"  # ran now: the request was there to run
    result = orc.resume("orphan")  # a finished run reads as done, without running again

    assert result.status == "ok"
    assert [s.id for s in result.subtasks] == ["a", "b"]
    assert a_log.read_text() == "go\n"
    assert b_log.read_text() == "after done\n"


def _scripted(tmp_path: Path, delay: float = 0) -> tuple[GraphSpec, SpecialistRegistry, Path, Path]:
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    registry = SpecialistRegistry(load_entry_points=False)
    registry.register(ScriptedSpecialist)
    spec = GraphSpec.from_text(
        GRAPH.format(a_log=a_log, b_log=b_log, delay=delay), registry=registry
    )
    return spec, registry, a_log, b_log


def _stored_checkpoint(saver: Any, thread_id: str, values: dict[str, Any]) -> None:
    """A checkpoint that holds `values` with nothing left to run, as LangGraph reads it."""
    from langgraph.checkpoint.base import empty_checkpoint

    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = values
    checkpoint["channel_versions"] = {k: saver.get_next_version(None, None) for k in values}
    config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    metadata: Any = {"source": "loop", "step": 1, "parents": {}}
    saver.put(config, checkpoint, metadata, checkpoint["channel_versions"])


def test_a_run_that_stopped_midway_with_nothing_left_to_run_fails_loudly(
    tmp_path: Path,
) -> None:
    # Steps ran but the run never decided to end: an empty `next` does not make it finished.
    from langgraph.checkpoint.memory import InMemorySaver

    spec, registry, _, _ = _scripted(tmp_path)
    saver = InMemorySaver()
    request = {"text": "go", "metadata": {}}
    _stored_checkpoint(saver, "torn", {"request": request, "path": ["work"]})
    orc = Orchestrator(spec, checkpointer=saver, registry=registry)
    with pytest.raises(RunError, match="stopped before it finished"):
        orc.resume("torn")


def test_a_thread_killed_before_its_first_checkpoint_runs_from_its_stored_request(
    tmp_path: Path,
) -> None:
    # The process took the lease (which keeps the request) and died before any checkpoint.
    import asyncio

    spec, registry, a_log, _ = _scripted(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    leases = SqliteThreadLeases(state / "threads.sqlite")
    request = {"text": "go", "metadata": {}}
    assert asyncio.run(leases.acquire("early", "gone-host:1:x", 0.0, request)) is None
    asyncio.run(leases.aclose())

    orc = Orchestrator(spec, state_dir=state, registry=registry)
    result = orc.resume("early")
    assert result.status == "ok"
    assert [s.id for s in result.subtasks] == ["a", "b"]
    assert orc.resume("early").subtasks == result.subtasks  # now finished: read, not rerun
    assert a_log.read_text() == "go\n"


def test_two_resumes_of_one_thread_run_its_pending_work_once(tmp_path: Path) -> None:
    import asyncio

    spec, registry, a_log, b_log = _scripted(tmp_path, delay=0.5)
    state = tmp_path / "state"

    async def racing(wait_s: float) -> list[Any]:
        # Two runners of one state directory (as two processes would be) on one thread.
        runners = [
            Orchestrator(spec, state_dir=state, registry=registry, lease_wait_s=wait_s)
            for _ in range(2)
        ]
        first = asyncio.create_task(runners[0].arun("go", thread_id=f"race-{wait_s}"))
        while not (b_log.exists() and b_log.read_text()):
            await asyncio.sleep(0.01)
        second = await asyncio.gather(runners[1].aresume(f"race-{wait_s}"), return_exceptions=True)
        return [await first, *second]

    done, refused = asyncio.run(racing(0.0))
    assert done.status == "ok"
    assert isinstance(refused, ThreadBusyError)
    assert "'race-0.0' is being run by another runner" in str(refused)
    assert a_log.read_text() == "go\n" and b_log.read_text() == "after done\n"

    a_log.unlink()
    b_log.unlink()
    done, waited = asyncio.run(racing(30.0))
    # The second runner waited, then found the run finished: nothing ran twice.
    assert done.status == waited.status == "ok"
    assert waited.subtasks == done.subtasks
    assert a_log.read_text() == "go\n" and b_log.read_text() == "after done\n"


def test_a_run_killed_between_a_step_s_writes_and_the_next_checkpoint_goes_on(
    tmp_path: Path,
) -> None:
    # The writes of the plan step are saved, the checkpoint that applies them is not (the
    # process died in between): LangGraph then reports nothing left to run. Resuming must
    # run the planned calls, once each, and not plan again.
    from langgraph.checkpoint.memory import InMemorySaver

    class DiesAfterThePlan(InMemorySaver):
        dead = True

        def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
            if self.dead and metadata.get("step", -1) >= 1:
                raise KeyboardInterrupt("killed")  # not an Exception: nothing catches it
            return super().put(config, checkpoint, metadata, new_versions)

    spec, registry, a_log, b_log = _scripted(tmp_path)
    saver = DiesAfterThePlan()
    orc = Orchestrator(spec, checkpointer=saver, registry=registry)
    with pytest.raises(KeyboardInterrupt):
        orc.run("go", thread_id="torn")
    assert list(saver.list({"configurable": {"thread_id": "torn"}})), "the plan was saved"
    saver.dead = False
    result = orc.resume("torn")
    assert result.status == "ok"
    assert [s.id for s in result.subtasks] == ["a", "b"]
    assert a_log.read_text() == "go\n" and b_log.read_text() == "after done\n"
