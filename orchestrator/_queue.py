"""The run queue: runs submitted to PostgreSQL and taken by any number of workers.

Built on procrastinate (a job queue kept in PostgreSQL: ``SELECT ... FOR UPDATE SKIP
LOCKED`` to take a job, LISTEN/NOTIFY to wake workers, a heartbeat per worker). Each graph
has its own queue (``orchestrator.<graph name>``); a job names the thread and the request.

What makes a killed worker lose nothing is the run layer, not the queue: a job resumes its
thread from the thread's checkpoints, under the thread's lease, so a retried job never runs
a finished subtask again. The queue's part is to retry a job whose worker died: every
worker (and ``orchestrator batch``) puts the jobs of workers whose heartbeat stopped back in
the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator import _postgres as postgres
from orchestrator._contracts import RunRequest
from orchestrator._logging import get_logger

if TYPE_CHECKING:
    import procrastinate

    from orchestrator._orchestrator import Orchestrator

__all__ = [
    "RUN_TASK",
    "QueuedRun",
    "WorkerSettings",
    "job_states",
    "open_queue",
    "queue_name",
    "requeue_stalled",
    "run_worker",
    "submit_runs",
]

log = get_logger(__name__)

RUN_TASK = "orchestrator.run"
_DEFER_CHUNK = 500


def queue_name(graph: str) -> str:
    """The queue of a graph's runs."""
    return f"orchestrator.{graph}"


@dataclass(frozen=True)
class QueuedRun:
    """A run to submit: its thread and its request."""

    thread_id: str
    request: RunRequest

    def task_kwargs(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "text": self.request.text,
            "metadata": self.request.metadata,
        }


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker takes jobs and notices dead ones."""

    concurrency: int = 4
    """Runs at once in this worker."""
    heartbeat_s: float = 2.0
    """How often the worker says it is alive."""
    stalled_after_s: float = 10.0
    """A worker silent this long is dead: its jobs go back in the queue."""
    attempts: int = 5
    """Tries of one job (a thread whose lease another runner holds is tried again)."""


async def _ensure_schema(url: str) -> None:
    """Create procrastinate's tables once per database. They stay across versions of this
    package; a procrastinate release that changes them needs its migrations applied by hand
    (procrastinate's documentation lists them), which nothing here does."""
    import psycopg
    from procrastinate.schema import SchemaManager

    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise postgres.unreachable(url, exc) from None
    async with conn, postgres.schema_lock(conn):
        cur = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        row = await cur.fetchone()
        if not (row and row[0]):
            await conn.execute(SchemaManager.get_schema())


@contextlib.asynccontextmanager
async def open_queue(url: str) -> AsyncIterator[procrastinate.App]:
    """A procrastinate app on the database at `url`, its tables created, open for the body."""
    try:
        import procrastinate
    except ImportError:
        raise postgres.missing_extra("the run queue") from None
    await _ensure_schema(url)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url, max_size=4))
    async with app.open_async():
        yield app


async def submit_runs(app: procrastinate.App, graph: str, runs: Sequence[QueuedRun]) -> list[int]:
    """Put runs in the graph's queue (in chunks, one transaction each); their job ids."""
    deferrer = app.configure_task(RUN_TASK, queue=queue_name(graph))
    ids: list[int] = []
    for start in range(0, len(runs), _DEFER_CHUNK):
        chunk = runs[start : start + _DEFER_CHUNK]
        ids += await deferrer.batch_defer_async(*(run.task_kwargs() for run in chunk))
    return ids


async def job_states(app: procrastinate.App, graph: str) -> dict[int, tuple[str, str]]:
    """The jobs in the graph's queue: job id -> (thread id, status). Workers delete the
    jobs that succeeded, so what is left is waiting, running or failed."""
    jobs = await app.job_manager.list_jobs_async(queue=queue_name(graph))
    return {
        job.id: (str(job.task_kwargs.get("thread_id")), job.status or "")
        for job in jobs
        if job.id is not None
    }


async def requeue_stalled(app: procrastinate.App, graph: str, stalled_after_s: float) -> int:
    """Put back in the queue the running jobs of workers that stopped beating (killed,
    crashed, cut off); how many."""
    stalled = await app.job_manager.get_stalled_jobs(
        queue=queue_name(graph), seconds_since_heartbeat=stalled_after_s
    )
    from procrastinate.exceptions import ConnectorException

    count = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except ConnectorException:
            # Another sweeper (a worker, the batch) put it back first: it is no longer
            # running, and procrastinate refuses to retry it twice.
            log.debug("a stalled job is already back in the queue", job=job.id)
            continue
        log.warning(
            "a job of a dead worker is back in the queue",
            job=job.id,
            thread_id=job.task_kwargs.get("thread_id"),
        )
        count += 1
    return count


async def watch_stalled(app: procrastinate.App, graph: str, stalled_after_s: float) -> None:
    """:func:`requeue_stalled` every half of ``stalled_after_s``, until cancelled."""
    while True:
        await asyncio.sleep(stalled_after_s / 2)
        try:
            await requeue_stalled(app, graph, stalled_after_s)
        except Exception as exc:  # the database went away for a moment: try again later
            log.warning("could not look for stalled jobs", error=str(exc))


async def run_worker(
    orc: Orchestrator,
    app: procrastinate.App,
    settings: WorkerSettings,
    *,
    wait: bool = True,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Take the graph's jobs and run them on `orc` (open), `settings.concurrency` at a time,
    until stopped (SIGINT/SIGTERM: the runs under way finish first) or, without `wait`,
    until the queue is empty."""
    from procrastinate import RetryStrategy

    graph = orc.spec.name

    async def run(thread_id: str, text: str, metadata: dict[str, Any]) -> str:
        request = RunRequest(text=text, metadata=metadata)
        result = await orc.arun(request, thread_id=thread_id)
        return result.status

    app.task(
        name=RUN_TASK,
        queue=queue_name(graph),
        retry=RetryStrategy(max_attempts=settings.attempts, wait=1),
    )(run)
    watcher = asyncio.create_task(watch_stalled(app, graph, settings.stalled_after_s))
    if on_ready is not None:
        on_ready()
    try:
        await app.run_worker_async(
            queues=[queue_name(graph)],
            concurrency=settings.concurrency,
            wait=wait,
            delete_jobs="successful",
            update_heartbeat_interval=settings.heartbeat_s,
            stalled_worker_timeout=settings.stalled_after_s,
            install_signal_handlers=wait,
            fetch_job_polling_interval=1.0,
        )
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
