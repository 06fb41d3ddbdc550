"""SIGKILL of the orchestrator at random points of a batch of runs, then resume.

A subprocess runs a batch of concurrent runs against SQLite checkpoints (and again against
PostgreSQL ones) and is killed at a random moment; a second process runs the same batch
again (each thread's own request, so a finished thread reads as done, an unfinished one
resumes, one never started starts). Each trial checks that no thread is lost (every one
ends ``ok`` with all its subtasks and the right values) and that no subtask that had
finished before the kill (its result in the checkpoint or in the checkpoint's pending
writes) runs again: the scripted specialists log every call to a file.

CI runs a few kills of a small batch. ``make chaos`` runs 100 kills of a 100-run batch
(``ORCHESTRATOR_CHAOS_TRIALS`` and ``ORCHESTRATOR_CHAOS_RUNS``) and writes its figures to
``ORCHESTRATOR_CHAOS_REPORT`` when set; RELIABILITY.md holds the latest.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

TRIALS = int(os.environ.get("ORCHESTRATOR_CHAOS_TRIALS", "3"))
RUNS = int(os.environ.get("ORCHESTRATOR_CHAOS_RUNS", "20"))
REPORT = os.environ.get("ORCHESTRATOR_CHAOS_REPORT")

# Two subtasks at once, a third that reads the first: fan-out, a dependency and a second
# wave, each call a short sleep so that kills land inside calls as well as between them.
GRAPH = """\
name: chaos_batch
specialists:
  first: {{uses: scripted, options: {{log_file: "{log}", delay_s: 0.05, default: {{label: done}}}}}}
  other: {{uses: scripted, options: {{log_file: "{log}", delay_s: 0.08}}}}
nodes:
  work:
    kind: specialists
    subtasks:
      - {{id: a, specialist: first, input: {{text: "a {{{{ request.text }}}}"}}}}
      - {{id: c, specialist: other, input: {{text: "c {{{{ request.text }}}}"}}}}
      - {{id: b, specialist: other, depends_on: [a],
          input: {{text: "b {{{{ request.text }}}} {{{{ a.label }}}}"}}}}
edges:
  - {{from: START, to: work}}
"""

BATCH = """\
import asyncio, json, sys
from orchestrator import Orchestrator, register_specialist
from orchestrator.specialists.testing import ScriptedSpecialist

register_specialist(ScriptedSpecialist)


async def one(orc, i):
    try:
        result = await orc.arun(f"run-{i}", thread_id=f"run-{i}")
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}"
    values = (result.value("a.label"), result.value("b.label"), result.value("c.label"))
    return f"{result.status} {len(result.subtasks)} {values[0]} {values[1]} {values[2]}"


async def main(graph, state, runs, url):
    where = {"checkpointer": "postgres", "database_url": url} if url else {}
    async with Orchestrator.from_file(graph, state_dir=state, **where) as orc:
        print("ready", flush=True)
        outcomes = await asyncio.gather(*(one(orc, i) for i in range(runs)))
    print(json.dumps(outcomes), flush=True)


asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
"""

EXPECTED = "ok 3 done other other"


def _start(
    script: Path, graph: Path, state: Path, runs: int, url: str | None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), str(graph), str(state), str(runs), url or ""],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def calls(log: Path) -> list[str]:
    """Each call as 'subtask thread' (the scripted specialist logs its input text)."""
    if not log.exists():
        return []
    return [" ".join(line.split()[:2]) for line in log.read_text().splitlines() if line]


def _saver(state: Path, url: str | None) -> Any:
    if url:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        return AsyncPostgresSaver.from_conn_string(url)
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    return AsyncSqliteSaver.from_conn_string(str(state / "checkpoints.sqlite"))


async def finished_subtasks(state: Path, threads: list[str], url: str | None) -> set[str]:
    """'subtask thread' of every subtask whose result the checkpoints hold: in the state of
    the latest checkpoint, or among its pending writes (a task of the step under way that
    finished; LangGraph does not run it again)."""
    finished: set[str] = set()
    if not url and not (state / "checkpoints.sqlite").exists():
        return finished
    async with _saver(state, url) as saver:
        for thread in threads:
            config: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
            saved = await saver.aget_tuple(config)
            if saved is None:
                continue
            results = dict(saved.checkpoint["channel_values"].get("results") or {})
            for _task, channel, value in saved.pending_writes or []:
                if channel == "results" and isinstance(value, dict):
                    results.update(value)
            finished.update(f"{sid} {thread}" for sid in results)
    return finished


def _trial(tmp: Path, runs: int, kill_after: float, url: str | None) -> dict[str, Any]:
    tmp.mkdir(parents=True)
    log, state = tmp / "calls.log", tmp / "state"
    graph, script = tmp / "batch.yaml", tmp / "batch.py"
    graph.write_text(GRAPH.format(log=log))
    script.write_text(BATCH)

    proc = _start(script, graph, state, runs, url)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", (
        proc.stderr.read() if proc.stderr else ""
    )
    time.sleep(kill_after)
    finished_in_time = proc.poll() is not None
    if not finished_in_time:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    before = calls(log)
    threads = [f"run-{i}" for i in range(runs)]
    finished = asyncio.run(finished_subtasks(state, threads, url))

    again = _start(script, graph, state, runs, url)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    outcomes = json.loads(out.splitlines()[-1])
    after = calls(log)[len(before) :]
    duplicated = [call for call in after if call in finished]
    counts = Counter(calls(log))
    return {
        "kill_after_s": round(kill_after, 3),
        "batch_had_finished": finished_in_time,
        "subtasks_finished_at_kill": len(finished),
        "calls_before_kill": len(before),
        "calls_after_kill": len(after),
        "lost": [f"run-{i}: {o}" for i, o in enumerate(outcomes) if o != EXPECTED],
        "duplicated": duplicated,
        "max_calls_of_one_subtask": max(counts.values()) if counts else 0,
    }


@pytest.mark.parametrize("checkpointer", ["sqlite", "postgres"])
def test_killed_batches_resume_with_no_thread_lost_and_no_finished_subtask_rerun(
    checkpointer: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(int(os.environ.get("ORCHESTRATOR_CHAOS_SEED", "17")))
    trials: list[dict[str, Any]] = []
    for t in range(TRIALS):
        # Each trial on a fresh database, as each has a fresh state directory.
        url = (
            request.getfixturevalue("postgres_cluster").new_database("chaos")
            if checkpointer == "postgres"
            else None
        )
        # Kill anywhere from the first checkpoints to past the end of a batch (about
        # 0.3 s + 0.05 s per run on 2 busy cores).
        kill_after = rng.uniform(0.0, 0.3 + 0.05 * RUNS)
        trials.append(_trial(tmp_path / f"trial-{t}", RUNS, kill_after, url))
        _report(trials, checkpointer)
    summary = _report(trials, checkpointer)
    assert summary["lost_runs"] == 0, [t["lost"] for t in trials if t["lost"]]
    assert summary["duplicated_subtasks"] == 0, [t["duplicated"] for t in trials]


def _report(trials: list[dict[str, Any]], checkpointer: str) -> dict[str, Any]:
    """The figures so far (written after each trial, so a long run can be watched); one
    report per checkpointer (``chaos.json``, ``chaos-postgres.json``)."""
    summary: dict[str, Any] = {
        "checkpointer": checkpointer,
        "trials": len(trials),
        "runs_per_batch": RUNS,
        "kills_inside_the_batch": sum(not t["batch_had_finished"] for t in trials),
        "lost_runs": sum(len(t["lost"]) for t in trials),
        "duplicated_subtasks": sum(len(t["duplicated"]) for t in trials),
        "subtasks_finished_at_kill": sum(t["subtasks_finished_at_kill"] for t in trials),
        "calls_after_kill": sum(t["calls_after_kill"] for t in trials),
    }
    if REPORT:
        path = Path(REPORT)
        if checkpointer != "sqlite":
            path = path.with_name(f"{path.stem}-{checkpointer}{path.suffix}")
        path.write_text(json.dumps({"summary": summary, "trials": trials}, indent=1))
    return summary
