"""The run queue: submit, workers, batch, and a worker killed with SIGKILL mid-run.

The runs go through procrastinate's queue in a throwaway PostgreSQL; the scripted
specialists log every call, so a subtask run twice shows in the log.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator._batch import BatchOutput, read_items, thread_for
from orchestrator._errors import ConfigurationError
from orchestrator._postgres import DATABASE_URL_ENV
from orchestrator.cli.main import main

# The chaos test's graph: a first subtask, a second at once and a third that reads the first,
# each call a short sleep (so that a kill lands inside runs) logged to a file.
from tests.test_chaos_kill import GRAPH, calls, finished_subtasks

SPECIALISTS = """\
from orchestrator import register_specialist
from orchestrator.specialists.testing import ScriptedSpecialist

register_specialist(ScriptedSpecialist)
"""
EXPECTED = {"a.label": "done", "c.label": "other", "b.label": "other"}


def _setup(tmp: Path, runs: int) -> tuple[Path, Path, Path, Path, list[str]]:
    """The graph, the specialists module, the input file (each request's text is its own
    thread id, so the call log names threads) and the output path."""
    log = tmp / "calls.log"
    graph, specs = tmp / "chaos_batch.yaml", tmp / "specs.py"
    graph.write_text(GRAPH.format(log=log))
    specs.write_text(SPECIALISTS)
    out = tmp / "out.jsonl"
    threads = [thread_for(out, "chaos_batch", f"r{i}") for i in range(runs)]
    lines = [{"id": f"r{i}", "text": t, "metadata": {"i": i}} for i, t in enumerate(threads)]
    (tmp / "in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return graph, specs, tmp / "in.jsonl", out, threads


def _cli(specs: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", "--specialists", str(specs), *args]


def _run(specs: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cli(specs, *args), env=env, capture_output=True, text=True, timeout=120)


def _results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_a_batch_writes_one_result_per_request_and_a_rerun_skips_them(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    graph, specs, inp, out, _ = _setup(tmp_path, runs=6)
    args = ["--specialists", str(specs), "batch", str(graph), "--input", str(inp)]
    args += ["--out", str(out), "--database-url", database_url, "--inprocess", "--json"]
    assert main([*args, "--workers", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["written"], summary["skipped"], summary["statuses"]) == (6, 0, {"ok": 6})
    results = _results(out)
    assert sorted(r["id"] for r in results) == [f"r{i}" for i in range(6)]
    assert all(r["fields"] == EXPECTED and r["status"] == "ok" for r in results)
    assert {r["id"]: r["metadata"] for r in results}["r3"] == {"i": 3}
    # A rerun writes nothing again and starts no worker's run.
    assert main([*args, "--workers", "0"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["written"], again["skipped"], again["submitted"]) == (0, 6, 0)
    assert len(_results(out)) == 6


def test_submit_puts_a_run_in_the_queue_and_a_worker_runs_it(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    graph, specs, _, _, _ = _setup(tmp_path, runs=1)
    env = {**os.environ, DATABASE_URL_ENV: database_url}
    (tmp_path / "request.txt").write_text("hello")  # --input @FILE, as run takes it
    request = f"@{tmp_path / 'request.txt'}"
    submitted = _run(
        specs, env, "submit", str(graph), "--input", request, "--thread", "t-1", "--json"
    )
    assert submitted.returncode == 0, submitted.stderr
    assert json.loads(submitted.stdout)["thread_id"] == "t-1"
    worker = subprocess.Popen(
        _cli(specs, "worker", str(graph), "--inprocess"), env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "calls.log").exists() or len(calls(tmp_path / "calls.log")) < 3:
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)  # graceful: the run under way finishes
        worker.communicate(timeout=60)
    shown = _run(
        specs, env, "run", str(graph), "--thread", "t-1", "--checkpointer", "postgres", "--json"
    )
    assert shown.returncode == 0, shown.stderr
    result = json.loads(shown.stdout)
    assert result["status"] == "ok" and result["request"]["text"] == "hello"
    assert sorted(calls(tmp_path / "calls.log")) == ["a hello", "b hello", "c hello"]


@pytest.mark.chaos
@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_no_run_and_reruns_no_finished_subtask(
    tmp_path: Path, database_url: str
) -> None:
    runs = 50
    graph, specs, inp, out, threads = _setup(tmp_path, runs=runs)
    log = tmp_path / "calls.log"
    env = {**os.environ, DATABASE_URL_ENV: database_url}
    worker_cmd = _cli(specs, "worker", str(graph), "--inprocess", "--concurrency", "4")
    workers = [
        subprocess.Popen(worker_cmd, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    batch_args = ["--input", str(inp), "--out", str(out), "--workers", "0", "--inprocess", "--json"]
    batch = subprocess.Popen(
        _cli(specs, "batch", str(graph), *batch_args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for worker in workers:
            assert worker.stderr is not None and "takes runs" in worker.stderr.readline()
        deadline = time.monotonic() + 120
        while len(calls(log)) < 40:  # both workers well into the batch
            assert time.monotonic() < deadline and batch.poll() is None, batch.stderr
            time.sleep(0.05)
        workers[0].kill()  # SIGKILL: no release of its jobs, leases or connections
        workers[0].wait()
        killed_at = len(calls(log))
        # What had finished, then every call started so far (a call starts before it
        # finishes): a later call of a finished subtask is a rerun.
        finished = asyncio.run(finished_subtasks(tmp_path, threads, database_url))
        before = calls(log)
        stdout, stderr = batch.communicate(timeout=240)
    finally:
        for proc in (*workers, batch):
            if proc.poll() is None:
                proc.terminate()
        for worker in workers:
            worker.communicate(timeout=60)  # reaps it and closes its pipe
        if batch.poll() is None:
            batch.communicate(timeout=60)
    assert batch.returncode == 0, stderr
    summary = json.loads(stdout)
    results = _results(out)
    # No run lost: every request has one line, with the right values.
    assert sorted(r["id"] for r in results) == sorted(f"r{i}" for i in range(runs))
    assert [r["id"] for r in results if r["status"] != "ok" or r["fields"] != EXPECTED] == []
    # No finished subtask ran again; only subtasks cut off by the kill ran a second time.
    after = calls(log)[len(before) :]
    assert [call for call in after if call in finished] == []
    counts = Counter(calls(log))
    assert max(counts.values()) <= 2
    assert len(counts) == 3 * runs
    assert killed_at < 3 * runs  # the kill landed inside the batch
    assert summary["written"] == runs


def test_a_batch_whose_workers_all_stopped_says_so_instead_of_waiting(
    tmp_path: Path, database_url: str
) -> None:
    import runpy

    from orchestrator._batch import run_batch
    from orchestrator._errors import OrchestratorError
    from orchestrator._queue import open_queue
    from orchestrator.cli.queue import _orchestrator

    graph, specs, inp, out, _ = _setup(tmp_path, runs=2)
    runpy.run_path(str(specs))  # registers the scripted specialist in this process
    orc = _orchestrator(str(graph), database_url, inprocess=True)
    output = BatchOutput(out)

    async def go() -> None:
        async with open_queue(database_url) as app:
            await run_batch(
                orc, app, read_items(inp), output, poll_s=0.05, workers_alive=lambda: False
            )

    try:
        with pytest.raises(OrchestratorError, match="every worker of the batch stopped with 2"):
            asyncio.run(go())
    finally:
        output.close()
    assert out.read_text() == ""  # nothing written as done; a rerun goes on with both


def test_bad_input_lines_are_named_with_the_fix(tmp_path: Path) -> None:
    cases = {
        '{"id": 1, "text": "a"}\nnot json\n': ":2: not JSON",
        '{"id": 1}\n': ":1: text must be",
        '{"id": 1, "text": "a", "extra": 2}\n': ":1: unknown field 'extra'",
        '{"id": 1, "text": "a"}\n{"id": "1", "text": "b"}\n': ":2: id '1' is also on line 1",
        "[1, 2]\n": ":1: give an object",
        "\n": "no requests",
    }
    for text, message in cases.items():
        path = tmp_path / "in.jsonl"
        path.write_text(text)
        with pytest.raises(ConfigurationError, match=message):
            read_items(path)


def test_a_line_cut_short_by_a_kill_is_dropped_and_written_again(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": "1", "status": "ok"}\n{"id": "2", "sta')
    output = BatchOutput(path)
    assert output.written == {"1"}
    output.write([{"id": "2", "status": "ok"}])
    output.close()
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["1", "2"]
