"""Many workers on one PostgreSQL database: throughput, a killed batch, and the cost per run.

1. **Throughput with 1, 2 and 4 worker processes** against a specialist that simulates a
   remote GPU: every call waits a fixed time and uses no CPU (the scripted test specialist
   sleeping ``--latency`` seconds); each worker runs ``--concurrency`` runs at once, as a
   worker bound to its own share of a model server would. The workers are started and
   ready before the runs are submitted, so the time is the queue's and the runs', not the
   start-up's. Target: 4 workers >= 3.5x one worker.
2. **A batch of ``--messages`` (10,000) requests killed twice** (SIGKILL of ``orchestrator
   batch`` and its workers, at about a third and two thirds of the batch) and rerun until
   done: requests lost (no line in the output), lines written twice, and subtasks that had
   finished before a kill and ran again (the scripted specialists log every call; the
   checkpoints say what had finished). Target: 0, 0 and 0.
3. **Per-run cost of PostgreSQL against SQLite**: the same three-subtask graph run
   ``--runs`` times one after another in one process on each checkpointer (its leases and
   traces beside it), after a warm-up; the median per run and the ratio, in the same run.

    python benchmarks/workers.py [--latency 2.0] [--runs-per-config 32] [--messages 10000]
                                 [--postgres DSN]

Without ``--postgres`` a throwaway cluster is started (PostgreSQL must be installed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import machine, print_table, support_messages, throwaway_postgres, write_json

from orchestrator import Orchestrator
from orchestrator._batch import thread_for
from orchestrator._contracts import RunRequest
from orchestrator._postgres import DATABASE_URL_ENV
from orchestrator._queue import QueuedRun, job_states, open_queue, submit_runs

SPECIALISTS = """\
from orchestrator import register_specialist
from orchestrator.specialists.testing import ScriptedSpecialist

register_specialist(ScriptedSpecialist)
"""
# One call that waits like a remote model: the worker's time is the model server's.
REMOTE = """\
name: remote_gpu
specialists:
  gpu: {{uses: scripted, options: {{delay_s: {latency}, default: {{label: done}}}}}}
nodes:
  work: {{kind: specialists, subtasks: [{{id: a, specialist: gpu}}]}}
edges:
  - {{from: START, to: work}}
"""
# Two subtasks at once and a third that reads the first, every call logged.
TRIAGE = """\
name: {name}
specialists:
  first: {{uses: scripted, options: {{log_file: "{log}", default: {{label: done}}}}}}
  other: {{uses: scripted, options: {{log_file: "{log}"}}}}
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


def _cli(specs: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", "--specialists", str(specs), *args]


def _workers(specs: Path, graph: Path, url: str, count: int, concurrency: int) -> list[Any]:
    env = {**os.environ, DATABASE_URL_ENV: url}
    command = _cli(specs, "worker", str(graph), "--inprocess", "--concurrency", str(concurrency))
    procs = [
        subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) for _ in range(count)
    ]
    for proc in procs:
        line = proc.stderr.readline()
        if "takes runs" not in line:
            raise RuntimeError(f"a worker did not start: {line}{proc.stderr.read()}")
    return procs


def _stop(procs: list[Any]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.communicate(timeout=60)


async def _drain(url: str, graph: str, runs: list[QueuedRun]) -> float:
    """Submit the runs, wait until the queue is empty; seconds from submit to the last."""
    async with open_queue(url) as app:
        start = time.perf_counter()
        await submit_runs(app, graph, runs)
        while await job_states(app, graph):  # workers delete each job that succeeded
            await asyncio.sleep(0.05)
        return time.perf_counter() - start


def throughput(
    tmp: Path, url: str, latency: float, runs: int, concurrency: int
) -> list[dict[str, Any]]:
    specs, graph = tmp / "specs.py", tmp / "remote_gpu.yaml"
    specs.write_text(SPECIALISTS)
    graph.write_text(REMOTE.format(latency=latency))
    rows = []
    for count in (1, 2, 4):
        procs = _workers(specs, graph, url, count, concurrency)
        try:
            batch = [
                QueuedRun(f"w{count}-{i}", RunRequest(text=f"request {i}", metadata={}))
                for i in range(runs)
            ]
            seconds = asyncio.run(_drain(url, "remote_gpu", batch))
        finally:
            _stop(procs)
        rows.append(
            {
                "workers": count,
                "runs": runs,
                "seconds": round(seconds, 2),
                "runs_per_s": round(runs / seconds, 3),
            }
        )
    base = rows[0]["runs_per_s"]
    for row in rows:
        row["speedup"] = round(row["runs_per_s"] / base, 2)
        row["ideal_runs_per_s"] = round(row["workers"] * concurrency / latency, 3)
    return rows


async def _finished(url: str, threads: list[str]) -> set[str]:
    """'subtask text' of every subtask the checkpoints hold as finished (in the latest
    checkpoint or its pending writes), as the call log writes them."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    found: set[str] = set()
    async with AsyncPostgresSaver.from_conn_string(url) as saver:
        for thread in threads:
            saved = await saver.aget_tuple(
                {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
            )
            if saved is None:
                continue
            values = saved.checkpoint["channel_values"]
            results = dict(values.get("results") or {})
            for _task, channel, value in saved.pending_writes or []:
                if channel == "results" and isinstance(value, dict):
                    results.update(value)
            text = (values.get("request") or {}).get("text", "")
            found.update(f"{sid} {text.split()[0]}" for sid in results if text)
    return found


def _calls(log: Path) -> list[str]:
    if not log.exists():
        return []
    return [" ".join(line.split()[:2]) for line in log.read_text().splitlines() if line]


def _written(out: Path) -> int:
    return sum(1 for _ in out.open()) if out.exists() else 0


def killed_batch(
    tmp: Path, url: str, messages: int, workers: int, concurrency: int
) -> dict[str, Any]:
    specs, graph, log = tmp / "specs.py", tmp / "triage.yaml", tmp / "calls.log"
    specs.write_text(SPECIALISTS)
    graph.write_text(TRIAGE.format(name="batch_triage", log=log))
    inp, out = tmp / "in.jsonl", tmp / "out.jsonl"
    texts = support_messages(messages)
    with inp.open("w") as handle:
        for i in range(messages):
            handle.write(json.dumps({"id": i, "text": f"m{i}: {texts[i % len(texts)]}"}) + "\n")
    threads = [thread_for(out, "batch_triage", str(i)) for i in range(messages)]
    env = {**os.environ, DATABASE_URL_ENV: url}
    command = _cli(specs, "batch", str(graph), "--input", str(inp), "--out", str(out))
    command += [
        "--workers",
        str(workers),
        "--concurrency",
        str(concurrency),
        "--inprocess",
        "--json",
    ]
    kills, reruns_of_finished, attempts, summaries = [], 0, 0, []
    start = time.perf_counter()
    for kill_at in (messages // 3, 2 * messages // 3, None):
        attempts += 1
        # Its own session: the kill takes the batch and the workers it started.
        proc = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        if kill_at is None:
            stdout, stderr = proc.communicate(timeout=3600)
            if proc.returncode != 0:
                raise RuntimeError(stderr)
            summaries.append(json.loads(stdout))
            break
        while _written(out) < kill_at and proc.poll() is None:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        finished = asyncio.run(_finished(url, threads))
        before = len(_calls(log))
        kills.append(
            {
                "written_at_kill": _written(out),
                "subtasks_finished_at_kill": len(finished),
                "calls_at_kill": before,
            }
        )
        # Checked after the next attempt: a finished subtask called again.
        kills[-1]["finished"] = finished
    calls = _calls(log)
    elapsed = time.perf_counter() - start
    for kill in kills:
        finished = kill.pop("finished")
        later = calls[kill["calls_at_kill"] :]
        kill["finished_subtasks_run_again"] = sum(1 for c in later if c in finished)
        reruns_of_finished += kill["finished_subtasks_run_again"]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    ids = Counter(str(line["id"]) for line in lines)
    counts = Counter(calls)
    return {
        "messages": messages,
        "workers": workers,
        "concurrency": concurrency,
        "attempts": attempts,
        "kills": kills,
        "lost": messages - len(ids),
        "written_twice": sum(n - 1 for n in ids.values() if n > 1),
        "not_ok": sum(1 for line in lines if line["status"] != "ok"),
        "finished_subtasks_run_again": reruns_of_finished,
        "subtasks_run_twice_cut_off_by_a_kill": sum(1 for n in counts.values() if n > 1),
        "calls": len(calls),
        "elapsed_s": round(elapsed, 1),
        "last_attempt": summaries[-1] if summaries else None,
    }


async def _per_run(orc: Orchestrator, runs: int) -> list[float]:
    times = []
    async with orc:
        for i in range(3):  # warm-up: imports, tables, caches
            await orc.arun(f"warm {i}")
        for i in range(runs):
            start = time.perf_counter()
            await orc.arun(f"m{i}: a request")
            times.append((time.perf_counter() - start) * 1000)
    return times


def per_run_cost(tmp: Path, url: str, runs: int) -> list[dict[str, Any]]:
    from orchestrator import register_specialist
    from orchestrator.specialists.testing import ScriptedSpecialist

    register_specialist(ScriptedSpecialist)
    text = TRIAGE.format(name="cost", log=tmp / "cost.log")
    rows = []
    for kind in ("sqlite", "postgres"):
        orc = Orchestrator.from_text(
            text, checkpointer=kind, database_url=url, state_dir=tmp / "state", inprocess=True
        )
        times = asyncio.run(_per_run(orc, runs))
        rows.append(
            {
                "checkpointer": kind,
                "runs": runs,
                "median_ms": round(statistics.median(times), 2),
                "p90_ms": round(sorted(times)[int(0.9 * len(times))], 2),
            }
        )
    rows[1]["ratio_to_sqlite"] = round(rows[1]["median_ms"] / rows[0]["median_ms"], 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per remote call")
    parser.add_argument("--runs-per-config", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=2, help="runs at once per worker")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch-workers", type=int, default=2)
    parser.add_argument("--cost-runs", type=int, default=100)
    parser.add_argument("--postgres", metavar="DSN")
    parser.add_argument("--skip", nargs="*", default=[], choices=["throughput", "batch", "cost"])
    parser.add_argument("--out", help="JSON path (default benchmarks/results/workers.json)")
    args = parser.parse_args()
    with throwaway_postgres() as started, tempfile.TemporaryDirectory() as folder:
        url = args.postgres or started
        if url is None:
            raise SystemExit(
                "no PostgreSQL: install it (apt-get install postgresql) or give --postgres"
            )
        tmp = Path(folder)
        payload: dict[str, Any] = {"machine": machine(), "settings": vars(args)}
        if "throughput" not in args.skip:
            (tmp / "t").mkdir()
            rows = throughput(tmp / "t", url, args.latency, args.runs_per_config, args.concurrency)
            payload["throughput"] = rows
            print_table(
                f"Throughput: {args.runs_per_config} runs, one {args.latency} s remote call "
                f"each, {args.concurrency} runs at once per worker",
                [
                    "workers",
                    "seconds",
                    "runs/s",
                    "ideal runs/s",
                    "speedup (target 4 workers >= 3.5x)",
                ],
                [
                    [
                        str(r["workers"]),
                        f"{r['seconds']:.2f}",
                        f"{r['runs_per_s']:.2f}",
                        f"{r['ideal_runs_per_s']:.2f}",
                        f"{r['speedup']:.2f}x",
                    ]
                    for r in rows
                ],
            )
        if "cost" not in args.skip:
            (tmp / "c").mkdir()
            rows = per_run_cost(tmp / "c", url, args.cost_runs)
            payload["per_run_cost"] = rows
            print_table(
                f"Per-run cost, three subtasks, {args.cost_runs} runs one after another",
                ["checkpointer", "median ms", "p90 ms", "ratio to SQLite"],
                [
                    [
                        r["checkpointer"],
                        f"{r['median_ms']:.1f}",
                        f"{r['p90_ms']:.1f}",
                        f"{r.get('ratio_to_sqlite', 1.0):.2f}",
                    ]
                    for r in rows
                ],
            )
        if "batch" not in args.skip:
            (tmp / "b").mkdir()
            result = killed_batch(tmp / "b", url, args.messages, args.batch_workers, 8)
            payload["killed_batch"] = result
            print_table(
                f"Batch of {args.messages} killed twice and rerun ({args.batch_workers} workers)",
                [
                    "lost",
                    "written twice",
                    "not ok",
                    "finished subtasks run again",
                    "cut-off subtasks run twice",
                    "elapsed s",
                ],
                [
                    [
                        str(result["lost"]),
                        str(result["written_twice"]),
                        str(result["not_ok"]),
                        str(result["finished_subtasks_run_again"]),
                        str(result["subtasks_run_twice_cut_off_by_a_kill"]),
                        f"{result['elapsed_s']:.0f}",
                    ]
                ],
            )
        print(f"results: {write_json('workers', payload, args.out)}")


if __name__ == "__main__":
    main()
