"""Recording subtasks in the trace store, as each binding asks (``record``, ``redact``).

The steps hand over traces; the recorder drops those of bindings that record nothing,
redacts the named fields (secrets are always masked) and queues them for a writer thread, so
that no step waits for the disk. The writer stores them and tells the background learner how
many new teacher labels each binding gained; :meth:`TraceRecorder.flush` waits for it (a run
flushes before it reports that it finished, so a finished run's traces are on disk). A trace
store that fails (a full disk, a locked file) loses the traces with a warning; the run goes on.
"""

from __future__ import annotations

import queue
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orchestrator._contracts import SpecialistResult, Verdict
from orchestrator._logging import get_logger
from orchestrator._traces import Trace, TraceStore, redact_fields
from orchestrator.graph.model import SpecialistBinding

__all__ = ["TraceRecorder", "artifact_of", "trace_of"]

log = get_logger(__name__)
# A trained text classifier's model id: "intent:trained-head:NAME@N/ENCODER".
_TRAINED = re.compile(r"trained-head:([^/]+)/")


def artifact_of(model: str | None) -> str | None:
    """The trained artifact (``NAME@N``) named in a specialist's model id, else the id."""
    if model is None:
        return None
    match = _TRAINED.search(model)
    return match.group(1) if match else model


def trace_of(
    run_id: str,
    answer: SpecialistResult,
    verdict: Verdict | None,
    final: SpecialistResult | None,
    *,
    rung: str | None = None,
) -> Trace:
    """The trace of one subtask: the specialist's own `answer`, its `verdict`, and the
    `final` result the run kept (None: nothing passed)."""
    if verdict is None:
        judged = "not verified"
    else:
        judged = "passed" if verdict.passed else "; ".join(verdict.reasons) or "failed"
    return Trace(
        id=f"{run_id}:{answer.subtask_id}",
        run_id=run_id,
        subtask_id=answer.subtask_id,
        specialist=answer.specialist,
        artifact=artifact_of(answer.model),
        input=answer.input,
        answer=answer.output,
        confidence=answer.confidence,
        verdict=judged,
        final=final.output if final is not None and final.ok else None,
        source=_source(final, rung),
        rung=rung,
    )


def _source(final: SpecialistResult | None, rung: str | None) -> str:
    if final is None:
        return "none"
    if rung is not None and rung.startswith("specialist:"):
        return "specialist_rung"
    return final.source


class TraceRecorder:
    """Keeps traces as the bindings ask and counts the new teacher labels."""

    def __init__(
        self,
        store: TraceStore,
        bindings: Mapping[str, SpecialistBinding],
        on_taught: Callable[[str, int], None] | None = None,
    ) -> None:
        self.store = store
        self.bindings = bindings
        self.on_taught = on_taught
        self._queue: queue.Queue[list[Trace] | None] = queue.Queue()
        self._writer = threading.Thread(target=self._drain, daemon=True, name="traces")
        self._writer.start()

    def _kept(self, trace: Trace) -> Trace | None:
        binding = self.bindings.get(trace.specialist)
        if binding is not None and not binding.record:
            return None
        fields = binding.redact if binding is not None else []
        update: dict[str, Any] = {"input": redact_fields(trace.input, fields)}
        for key in ("answer", "final"):
            value = getattr(trace, key)
            update[key] = redact_fields(value, fields) if value is not None else None
        return trace.model_copy(update=update)

    def record(self, traces: Sequence[Trace]) -> None:
        """Queue `traces` for the trace store (returns at once)."""
        kept = [t for t in (self._kept(trace) for trace in traces) if t is not None]
        if kept:
            self._queue.put(kept)

    def _drain(self) -> None:
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                self._write(batch)
            finally:
                self._queue.task_done()

    def _write(self, batch: list[Trace]) -> None:
        try:
            self.store.add(batch)
        except (sqlite3.Error, OSError) as exc:
            log.warning("traces not recorded", error=str(exc), traces=len(batch))
            return
        if self.on_taught is None:
            return
        for binding, count in Counter(t.specialist for t in batch if t.taught).items():
            try:
                self.on_taught(binding, count)
            except Exception as exc:  # the learner's trouble never stops the recording
                log.warning("teacher labels not counted", binding=binding, error=str(exc))

    def flush(self) -> None:
        """Wait until every queued trace is stored."""
        self._queue.join()

    def close(self) -> None:
        """Store what is queued and stop the writer (the store stays open)."""
        self._queue.put(None)
        self._writer.join()
