"""``orchestrator batch``: a JSONL file of requests through the run queue, one result line
per request, resumable.

The output file is the batch's record: a request whose line is there is done, and a rerun
skips it. Each request runs under a thread named after the output file and its id, so a
rerun after a crash (of the batch, or of a worker) resumes the same threads from their
checkpoints rather than starting new ones. Only this process writes the file, one whole
line per request (a line cut short by a kill is dropped on the next start), so no request
is ever written twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator._contracts import RunRequest, RunResult
from orchestrator._errors import ConfigurationError, OrchestratorError
from orchestrator._queue import QueuedRun, job_states, requeue_stalled, submit_runs

if TYPE_CHECKING:
    import procrastinate

    from orchestrator._orchestrator import Orchestrator

__all__ = ["BatchItem", "BatchOutput", "BatchSummary", "read_items", "run_batch", "thread_for"]

_FIELDS = {"id", "text", "metadata"}
_FAILED_JOB = ("failed", "cancelled", "aborted")


@dataclass(frozen=True)
class BatchItem:
    """One request of the input file."""

    id: str
    text: str
    metadata: dict[str, Any]


def read_items(path: Path) -> list[BatchItem]:
    """The requests of a JSONL file: one object per line with ``id`` and ``text`` (and
    optionally ``metadata``); one error naming the line and the fix for the first bad one."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"--input {path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigurationError(f"--input {path}: cannot read it: {exc.strerror}") from None
    items: list[BatchItem] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"--input {path}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{where}: not JSON ({exc.msg}, column {exc.colno})") from None
        if not isinstance(value, dict):
            raise ConfigurationError(f'{where}: give an object, {{"id": ..., "text": ...}}')
        unknown = sorted(set(value) - _FIELDS)
        if unknown:
            raise ConfigurationError(
                f"{where}: unknown field {unknown[0]!r}; a line has id, text and metadata"
            )
        item_id, text, metadata = value.get("id"), value.get("text"), value.get("metadata", {})
        if isinstance(item_id, bool) or not isinstance(item_id, str | int) or item_id == "":
            raise ConfigurationError(f"{where}: id must be a non-empty string or a number")
        if not isinstance(text, str) or not text.strip():
            raise ConfigurationError(f"{where}: text must be the request's text (not empty)")
        if not isinstance(metadata, dict):
            raise ConfigurationError(f"{where}: metadata must be an object")
        key = str(item_id)
        if key in seen:
            raise ConfigurationError(
                f"{where}: id {key!r} is also on line {seen[key]}; each request needs its own id"
            )
        seen[key] = number
        items.append(BatchItem(key, text, metadata))
    if not items:
        raise ConfigurationError(f"--input {path}: no requests (one JSON object per line)")
    return items


def thread_for(out: Path, graph: str, item_id: str) -> str:
    """The thread of a request: the same for every rerun of the batch that writes `out`."""
    digest = hashlib.sha256(f"{graph}\0{out.resolve()}".encode()).hexdigest()[:10]
    return f"batch-{digest}-{item_id}"


class BatchOutput:
    """The output file: which ids it holds, and whole lines appended to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written: set[str] = set()
        if path.exists():
            self._recover()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("a", encoding="utf-8")

    def _recover(self) -> None:
        data = self.path.read_bytes()
        keep = 0
        for line in data.splitlines(keepends=True):
            try:
                value = json.loads(line)
            except ValueError:
                break  # cut short by a kill (the last line); dropped below
            if not line.endswith(b"\n") or not isinstance(value, dict) or "id" not in value:
                break
            self.written.add(str(value["id"]))
            keep += len(line)
        if keep < len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(keep)

    def write(self, lines: list[dict[str, Any]]) -> None:
        """Append lines and make them durable before the ids count as written."""
        if not lines:
            return
        self._handle.write("".join(json.dumps(v, ensure_ascii=False) + "\n" for v in lines))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.written.update(str(v["id"]) for v in lines)

    def close(self) -> None:
        self._handle.close()


@dataclass
class BatchSummary:
    """What a batch did (``--json``)."""

    items: int
    skipped: int = 0
    """Already in the output file from an earlier run of the batch."""
    submitted: int = 0
    """Jobs put in the queue (requests already in the queue are not submitted again)."""
    written: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    requeued: int = 0
    """Jobs of dead workers put back in the queue."""
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        rate = self.written / self.elapsed_s if self.elapsed_s else 0.0
        return {
            **self.__dict__,
            "runs_per_s": round(rate, 2),
            "elapsed_s": round(self.elapsed_s, 2),
        }


def result_line(
    item: BatchItem, thread_id: str, result: RunResult | None, error: str | None
) -> dict[str, Any]:
    """The output line of one request: its fields, with the run's status."""
    line: dict[str, Any] = {
        "id": item.id,
        "text": item.text,
        "metadata": item.metadata,
        "thread_id": thread_id,
    }
    if result is None:
        return {**line, "status": "error", "fields": {}, "error": error}
    return {
        **line,
        "status": result.status,
        "fields": {name: f.value for name, f in result.fields.items()},
        "error": result.error,
    }


async def run_batch(
    orc: Orchestrator,
    app: procrastinate.App,
    items: list[BatchItem],
    output: BatchOutput,
    *,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    stalled_after_s: float = 10.0,
    poll_s: float = 0.5,
    workers_alive: Callable[[], bool] | None = None,
) -> BatchSummary:
    """Submit the requests not yet written, and write each result as its run finishes.

    ``workers_alive`` says whether any worker the batch started still runs: once none does
    and requests are left, the batch stops with an error instead of waiting for ever (with
    workers elsewhere, ``None``, it waits for them)."""
    started = time.perf_counter()
    graph = orc.spec.name
    summary = BatchSummary(items=len(items))
    pending = {
        thread_for(output.path, graph, item.id): item
        for item in items
        if item.id not in output.written
    }
    summary.skipped = len(items) - len(pending)
    on_progress(summary.skipped, len(items))
    # Requests of an earlier run of this batch that are still queued or running keep their
    # job; the others (never queued, or whose job ended before its line was written) are
    # submitted. A failed request has its line written, so a rerun skips it.
    jobs = {
        thread: job
        for job, (thread, status) in (await job_states(app, graph)).items()
        if thread in pending and status in ("todo", "doing")
    }
    fresh = [
        QueuedRun(t, RunRequest(text=i.text, metadata=i.metadata))
        for t, i in pending.items()
        if t not in jobs
    ]
    ids = await submit_runs(app, graph, fresh)
    jobs.update(zip((run.thread_id for run in fresh), ids, strict=True))
    summary.submitted = len(fresh)
    last_sweep = time.monotonic()
    while pending:
        states = await job_states(app, graph)
        gone = [t for t in pending if jobs[t] not in states]  # succeeded (workers delete them)
        failed = [t for t in pending if states.get(jobs[t], ("", ""))[1] in _FAILED_JOB]
        results = await orc.afinished(gone) if gone else {}
        lines = []
        for thread in gone:
            result = results.get(thread)
            why = None if result else "the run stopped without finishing (paused for a review?)"
            lines.append(result_line(pending[thread], thread, result, why))
        for thread in failed:
            lines.append(
                result_line(
                    pending[thread],
                    thread,
                    None,
                    "the run's job failed in a worker after its retries; see the worker's log",
                )
            )
        output.write(lines)
        for line in lines:
            summary.statuses[line["status"]] = summary.statuses.get(line["status"], 0) + 1
            del pending[line["thread_id"]]
        summary.written += len(lines)
        on_progress(summary.skipped + summary.written, len(items))
        if pending and time.monotonic() - last_sweep >= stalled_after_s / 2:
            summary.requeued += await requeue_stalled(app, graph, stalled_after_s)
            last_sweep = time.monotonic()
        if pending and not lines:
            if workers_alive is not None and not workers_alive():
                raise OrchestratorError(
                    f"every worker of the batch stopped with {len(pending)} request(s) not "
                    "written (their errors are above); fix the cause and run the same batch "
                    "again: it goes on where it stopped"
                )
            await asyncio.sleep(poll_s)
    summary.elapsed_s = time.perf_counter() - started
    return summary
