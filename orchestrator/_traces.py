"""The trace store: what each subtask asked, what the specialist answered, and what the final
answer was and who gave it. Escalated answers are the teacher labels distillation learns from.

SQLite in the state directory by default (``<state_dir>/traces.sqlite``); each batch of
traces is committed before the call returns, so they survive a crash of the process that
recorded them. Other backends implement :class:`TraceStore`.

Nothing secret is stored: values under secret-looking keys and secrets inside strings are
masked (the same rules as the logs), and a binding can name more fields to redact.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from orchestrator._errors import ConfigurationError
from orchestrator._logging import redact_secrets
from orchestrator._secrets import REDACTED

__all__ = [
    "TEACHER_SOURCES",
    "TRACES_FILE",
    "SQLiteTraceStore",
    "Trace",
    "TraceStore",
    "export_traces",
    "open_trace_store",
    "parse_since",
    "redact_fields",
]

#: Final answers that came from someone other than the specialist itself: teacher labels.
TEACHER_SOURCES = ("frontier", "human", "vote", "specialist_rung")
TRACES_FILE = "traces.sqlite"


class Trace(BaseModel):
    """One subtask, from the specialist's answer to the final one."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    run_id: str = Field(description="The run's thread id.")
    subtask_id: str
    specialist: str = Field(description="The binding's name in the graph.")
    artifact: str | None = Field(
        default=None, description="The model that answered first (a trained artifact's NAME@N)."
    )
    input: dict[str, Any] = Field(default_factory=dict)
    answer: dict[str, Any] | None = Field(default=None, description="The specialist's output.")
    confidence: float | None = None
    verdict: str = Field(description="passed, or why verification failed.")
    final: dict[str, Any] | None = Field(default=None, description="The answer the run kept.")
    source: str = Field(
        description="Who gave the final answer: specialist, frontier, human, vote, or "
        "specialist_rung (a stronger specialist)."
    )
    rung: str | None = Field(default=None, description="The escalation rung that answered.")
    recorded_at: float = Field(default_factory=time.time, description="Unix time.")

    @property
    def artifact_name(self) -> str | None:
        """The artifact's name without its version."""
        return self.artifact.split("@", 1)[0] if self.artifact else None

    @property
    def taught(self) -> bool:
        """Whether the final answer is a teacher's (not the specialist's own)."""
        return self.source in TEACHER_SOURCES and self.final is not None


class TraceStore(Protocol):
    """Where traces are kept. Implementations commit before :meth:`add` returns."""

    def add(self, traces: Sequence[Trace]) -> None: ...

    def traces(
        self, specialist: str, *, since: float | None = None, taught_only: bool = False
    ) -> list[Trace]:
        """Traces of a binding or of an artifact (by its name), oldest first;
        ``taught_only``: teacher answers only."""
        ...

    def count(
        self, specialist: str, *, since: float | None = None, taught_only: bool = False
    ) -> int: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS traces (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    subtask_id TEXT NOT NULL,
    specialist TEXT NOT NULL,
    artifact_name TEXT,
    source TEXT NOT NULL,
    taught INTEGER NOT NULL,
    recorded_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_by_specialist ON traces (specialist, taught, recorded_at);
CREATE INDEX IF NOT EXISTS traces_by_artifact ON traces (artifact_name, taught, recorded_at);
"""


def trace_row(t: Trace) -> tuple[Any, ...]:
    """A trace as a row of a store's table: the columns it is queried by, and its body."""
    return (
        t.id,
        t.run_id,
        t.subtask_id,
        t.specialist,
        t.artifact_name,
        t.source,
        int(t.taught),
        t.recorded_at,
        t.model_dump_json(),
    )


def trace_filter(
    specialist: str, since: float | None, taught_only: bool, mark: str = "?"
) -> tuple[str, list[Any]]:
    """The WHERE clause (with `mark` as the parameter placeholder) and its arguments for
    the traces of a binding or an artifact."""
    clauses = [f"(specialist = {mark} OR artifact_name = {mark})"]
    args: list[Any] = [specialist, specialist]
    if since is not None:
        clauses.append(f"recorded_at >= {mark}")
        args.append(since)
    if taught_only:
        clauses.append("taught = 1")
    return " AND ".join(clauses), args


class SQLiteTraceStore:
    """Traces in one SQLite file (WAL journal; every batch committed and synced)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ConfigurationError(
                f"{self.path}: not a usable trace store ({exc}); move it away and runs will "
                "start a new one"
            ) from None
        self._lock = threading.Lock()

    def add(self, traces: Sequence[Trace]) -> None:
        rows = [trace_row(t) for t in traces]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO traces VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    def traces(
        self, specialist: str, *, since: float | None = None, taught_only: bool = False
    ) -> list[Trace]:
        where, args = trace_filter(specialist, since, taught_only)
        with self._lock:
            rows = self._db.execute(
                f"SELECT body FROM traces WHERE {where} ORDER BY recorded_at, id", args
            ).fetchall()
        return [Trace.model_validate_json(body) for (body,) in rows]

    def count(
        self, specialist: str, *, since: float | None = None, taught_only: bool = False
    ) -> int:
        where, args = trace_filter(specialist, since, taught_only)
        with self._lock:
            (n,) = self._db.execute(f"SELECT COUNT(*) FROM traces WHERE {where}", args).fetchone()
        return int(n)

    def specialists(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT specialist FROM traces ORDER BY 1").fetchall()
        return [name for (name,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_trace_store(state_dir: str | Path) -> SQLiteTraceStore:
    """The default store: ``traces.sqlite`` in the state directory."""
    return SQLiteTraceStore(Path(state_dir) / TRACES_FILE)


def redact_fields(value: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """`value` with secrets masked and each named field (``a.b`` for nested keys) replaced by
    a marker."""
    active: dict[str, Any] = {"value": value}
    masked = redact_secrets(None, "trace", active)["value"]
    for dotted in fields:
        node: Any = masked
        *path, last = dotted.split(".")
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node:
            node[last] = REDACTED
    result: dict[str, Any] = masked
    return result


def parse_since(text: str) -> float:
    """``--since``: an ISO date or time (UTC unless it says), or a duration back from now
    (``30m``, ``12h``, ``7d``); returns Unix time."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return time.time() - int(text[:-1]) * units[text[-1]]
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(
            f"--since {text!r}: give an ISO time (2026-12-01 or 2026-12-01T09:00) or a "
            "duration back from now (30m, 12h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def export_traces(
    store: TraceStore,
    specialist: str,
    out: Path,
    *,
    since: float | None = None,
    taught_only: bool = False,
) -> int:
    """Write the specialist's traces as JSON lines to `out` (atomically); returns how many."""
    traces = store.traces(specialist, since=since, taught_only=taught_only)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    with tmp.open("w", encoding="utf-8") as handle:
        for trace in traces:
            handle.write(json.dumps(trace.model_dump(mode="json"), ensure_ascii=False) + "\n")
    tmp.replace(out)
    return len(traces)
