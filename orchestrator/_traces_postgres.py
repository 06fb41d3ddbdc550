"""The trace store in PostgreSQL: the traces of every worker of one database in one table.

The same records and queries as the SQLite store (:mod:`orchestrator._traces`). The
recorder writes from its own thread, so this store keeps one synchronous connection; every
batch is one transaction, committed before :meth:`PostgresTraceStore.add` returns.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from orchestrator import _postgres as postgres
from orchestrator._traces import Trace, trace_filter, trace_row

__all__ = ["PostgresTraceStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orchestrator_traces (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    subtask_id TEXT NOT NULL,
    specialist TEXT NOT NULL,
    artifact_name TEXT,
    source TEXT NOT NULL,
    taught INTEGER NOT NULL,
    recorded_at DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orchestrator_traces_by_specialist
    ON orchestrator_traces (specialist, taught, recorded_at);
CREATE INDEX IF NOT EXISTS orchestrator_traces_by_artifact
    ON orchestrator_traces (artifact_name, taught, recorded_at);
"""


class PostgresTraceStore:
    """Traces in the ``orchestrator_traces`` table of the database at `url`."""

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise postgres.missing_extra("the PostgreSQL trace store") from None
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=10)
            with postgres.schema_lock_sync(self._db):
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self._db.execute(statement)
        except psycopg.Error as exc:
            raise postgres.unreachable(url, exc) from None
        self._lock = threading.Lock()

    def add(self, traces: Sequence[Trace]) -> None:
        rows = [trace_row(t) for t in traces]
        with self._lock, self._db.transaction(), self._db.cursor() as cur:
            cur.executemany(
                "INSERT INTO orchestrator_traces VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET body = excluded.body, source = excluded.source, "
                "taught = excluded.taught, recorded_at = excluded.recorded_at",
                rows,
            )

    def traces(
        self, specialist: str, *, since: float | None = None, taught_only: bool = False
    ) -> list[Trace]:
        where, args = trace_filter(specialist, since, taught_only, "%s")
        with self._lock:
            rows = self._db.execute(
                f"SELECT body FROM orchestrator_traces WHERE {where} ORDER BY recorded_at, id",
                args,
            ).fetchall()
        return [Trace.model_validate_json(row[0]) for row in rows]

    def count(
        self, specialist: str, *, since: float | None = None, taught_only: bool = False
    ) -> int:
        where, args = trace_filter(specialist, since, taught_only, "%s")
        with self._lock:
            row = self._db.execute(
                f"SELECT COUNT(*) FROM orchestrator_traces WHERE {where}", args
            ).fetchone()
        return int(row[0]) if row else 0

    def specialists(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT specialist FROM orchestrator_traces ORDER BY 1"
            ).fetchall()
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
