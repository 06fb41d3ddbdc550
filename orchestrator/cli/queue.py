"""``orchestrator submit``, ``worker`` and ``batch``: runs through the PostgreSQL run queue,
taken by any number of worker processes on any machine that reaches the database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from orchestrator._errors import ConfigurationError
from orchestrator._orchestrator import Orchestrator
from orchestrator._postgres import DATABASE_URL_ENV, database_url
from orchestrator._visible_text import has_visible_text
from orchestrator.cli._database import DatabaseUrlOpt
from orchestrator.cli._exit import ExitCode
from orchestrator.cli._graph_files import resolve_graph
from orchestrator.cli._output import err, out

__all__ = ["batch", "submit", "worker"]

GraphArg = Annotated[str, typer.Argument(help="A graph file, or a shipped graph's name.")]
ConcurrencyOpt = Annotated[
    int, typer.Option(help="Runs at once in each worker (a run mostly waits on its models).")
]
InprocessOpt = Annotated[
    bool, typer.Option(help="Run registered specialists in the worker, not over MCP.")
]


def _orchestrator(graph: str, url: str | None, inprocess: bool) -> Orchestrator:
    # A job whose thread another worker holds (a worker that died on another machine, until
    # its lease expires) waits for it rather than failing.
    return Orchestrator.from_file(
        resolve_graph(graph),
        checkpointer="postgres",
        database_url=database_url(url),
        inprocess=inprocess,
        lease_wait_s=60.0,
    )


def submit(
    graph: GraphArg,
    input: Annotated[
        str,
        typer.Option("--input", "-i", help="The request text, @FILE to read it, @- for stdin."),
    ],
    thread: Annotated[
        str | None, typer.Option(help="Thread id (default: a new one). Its result is kept there.")
    ] = None,
    metadata: Annotated[
        str | None, typer.Option(help="The request's metadata, a JSON object.")
    ] = None,
    database_url_: DatabaseUrlOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON.")] = False,
) -> int:
    """Put a run in the graph's queue for a worker to take; print its thread."""
    from orchestrator._contracts import RunRequest
    from orchestrator._queue import QueuedRun, open_queue, submit_runs
    from orchestrator.cli.run import _read_input

    input = _read_input(input) or ""
    if not has_visible_text(input):
        raise ConfigurationError("--input is empty: give the text of the request")
    extra = _metadata(metadata)
    orc = _orchestrator(graph, database_url_, inprocess=False)
    url = database_url(database_url_)
    run = QueuedRun(thread or uuid.uuid4().hex, RunRequest(text=input, metadata=extra))

    async def go() -> int:
        async with open_queue(url) as app:
            (job,) = await submit_runs(app, orc.spec.name, [run])
        return job

    job = asyncio.run(go())
    if as_json:
        out.print_json(json.dumps({"thread_id": run.thread_id, "job": job, "graph": orc.spec.name}))
    else:
        out.print(f"submitted thread {run.thread_id} (job {job})", markup=False)
        err.print(
            f"its result, once a worker has run it: orchestrator run {graph} --thread "
            f"{run.thread_id} --checkpointer postgres",
            markup=False,
        )
    return ExitCode.OK


def _metadata(text: str | None) -> dict[str, object]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"--metadata is not JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise ConfigurationError('--metadata must be a JSON object, e.g. {"customer": "c-1"}')
    return value


def worker(
    graph: GraphArg,
    concurrency: ConcurrencyOpt = 4,
    database_url_: DatabaseUrlOpt = None,
    inprocess: InprocessOpt = False,
    parent: Annotated[
        int | None, typer.Option(hidden=True, help="Stop when this process ends (batch).")
    ] = None,
) -> int:
    """Take the graph's runs from the queue and run them, until stopped (Ctrl-C or SIGTERM
    let the runs under way finish)."""
    from orchestrator._queue import WorkerSettings, open_queue, run_worker

    if concurrency < 1:
        raise ConfigurationError(f"--concurrency {concurrency}: give at least 1")
    orc = _orchestrator(graph, database_url_, inprocess)
    url = database_url(database_url_)

    def ready() -> None:
        err.print(
            f"worker {os.getpid()} takes runs of {orc.spec.name} ({concurrency} at once)",
            markup=False,
        )

    async def go() -> None:
        watch = asyncio.create_task(_stop_with(parent)) if parent else None
        async with orc, open_queue(url) as app:
            await run_worker(orc, app, WorkerSettings(concurrency=concurrency), on_ready=ready)
        if watch:
            watch.cancel()

    asyncio.run(go())
    return ExitCode.OK


async def _stop_with(parent: int) -> None:
    """Stop this worker (gracefully) when the process that started it is gone."""
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def batch(
    ctx: typer.Context,
    graph: GraphArg,
    input_file: Annotated[
        Path, typer.Option("--input", "-i", help='JSONL: {"id", "text", "metadata"} per line.')
    ],
    out_file: Annotated[
        Path,
        typer.Option(
            "--out", help="JSONL results, one per request; a rerun skips the ids already there."
        ),
    ],
    workers: Annotated[
        int, typer.Option(help="Worker processes to start here (0: workers run elsewhere).")
    ] = 2,
    concurrency: ConcurrencyOpt = 4,
    database_url_: DatabaseUrlOpt = None,
    inprocess: InprocessOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a summary as JSON.")] = False,
) -> int:
    """Run every request of a JSONL file through the run queue and write one result line per
    request; rerun it after a stop to finish the rest."""
    from orchestrator._batch import BatchOutput, BatchSummary, read_items, run_batch
    from orchestrator._queue import open_queue

    if workers < 0 or concurrency < 1:
        raise ConfigurationError("--workers must be 0 or more and --concurrency at least 1")
    items = read_items(input_file)
    orc = _orchestrator(graph, database_url_, inprocess)
    url = database_url(database_url_)
    output = BatchOutput(out_file)
    # The workers import the same modules of specialists as this command.
    modules = list(ctx.find_root().params.get("specialists") or [])

    async def go() -> BatchSummary:
        async with open_queue(url) as app:
            spawned = _workers(graph, workers, concurrency, url, inprocess, modules)
            with spawned as procs, _bar(not as_json) as bar:
                alive = (lambda: any(p.poll() is None for p in procs)) if procs else None
                return await run_batch(
                    orc, app, items, output, on_progress=bar, workers_alive=alive
                )

    try:
        summary = asyncio.run(go())
    finally:
        output.close()
    if as_json:
        out.print_json(json.dumps(summary.to_json()))
    else:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "none"
        out.print(
            f"{summary.written} written to {out_file} ({statuses}); {summary.skipped} already "
            f"there; {summary.elapsed_s:.1f} s",
            markup=False,
        )
    failed = summary.statuses.get("failed", 0) + summary.statuses.get("error", 0)
    return ExitCode.RUN_FAILED if failed else ExitCode.OK


@contextlib.contextmanager
def _workers(
    graph: str, count: int, concurrency: int, url: str, inprocess: bool, modules: list[str]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes for the batch's life, stopped gracefully at its end. The database
    URL goes through their environment, never their command line (which `ps` shows)."""
    command = [sys.executable, "-m", "orchestrator"]
    for module in modules:
        command += ["--specialists", module]
    command += ["worker", graph, "--concurrency", str(concurrency), "--parent", str(os.getpid())]
    if inprocess:
        command.append("--inprocess")
    env = {**os.environ, DATABASE_URL_ENV: url}
    procs = [subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL) for _ in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def _bar(enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr, set from (done, total)."""
    from orchestrator.cli._output import progress_bars

    with progress_bars(enabled and err.is_terminal) as task:
        advance: Callable[[int], None] | None = None
        shown = 0

        def update(done: int, total: int) -> None:
            nonlocal advance, shown
            if advance is None:
                advance = task("requests", total)
            advance(done - shown)
            shown = done

        yield update
