"""The trace store: recording, querying, redaction, export, and surviving a crash."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator._errors import ConfigurationError
from orchestrator._traces import (
    SQLiteTraceStore,
    Trace,
    export_traces,
    open_trace_store,
    parse_since,
    redact_fields,
)


def _trace(i: int, *, source: str = "frontier", at: float | None = None) -> Trace:
    return Trace(
        run_id=f"run-{i}",
        subtask_id="intent",
        specialist="intent",
        artifact="intent-demo@2",
        input={"text": f"request {i}"},
        answer={"label": "billing"},
        confidence=0.41,
        verdict="confidence 0.41 below 0.80",
        final={"label": "refund"} if source != "specialist" else {"label": "billing"},
        source=source,
        rung=source if source != "specialist" else None,
        recorded_at=at if at is not None else time.time(),
    )


def test_traces_are_kept_and_queried_by_binding_or_artifact(tmp_path: Path) -> None:
    store = open_trace_store(tmp_path)
    store.add([_trace(1), _trace(2, source="specialist"), _trace(3, source="human")])
    assert store.count("intent") == 3
    assert store.count("intent-demo", taught_only=True) == 2
    taught = store.traces("intent", taught_only=True)
    assert [t.run_id for t in taught] == ["run-1", "run-3"]
    assert taught[0].final == {"label": "refund"} and taught[0].artifact == "intent-demo@2"
    assert store.count("sentiment") == 0
    store.close()


def test_since_filters_and_parses(tmp_path: Path) -> None:
    store = open_trace_store(tmp_path)
    store.add([_trace(1, at=1_000.0), _trace(2, at=2_000.0)])
    assert [t.run_id for t in store.traces("intent", since=1_500.0)] == ["run-2"]
    assert parse_since("1970-01-01T00:25:00") == 1_500.0
    assert time.time() - parse_since("2h") == pytest.approx(7200, abs=5)
    with pytest.raises(ConfigurationError, match="--since 'yesterday'"):
        parse_since("yesterday")


def test_secrets_and_named_fields_are_redacted() -> None:
    value = {
        "text": "my card 4111 is blocked",
        "api_key": "sk-ant-api03-abcdefghijklmnop",
        "customer": {"email": "a@example.com", "tier": "gold"},
    }
    out = redact_fields(value, ["customer.email", "missing.field"])
    assert out["api_key"] == "***"
    assert out["customer"] == {"email": "***", "tier": "gold"}
    assert out["text"] == "my card 4111 is blocked"
    assert value["customer"]["email"] == "a@example.com"  # the caller's dict is untouched


def test_export_writes_json_lines(tmp_path: Path) -> None:
    store = open_trace_store(tmp_path)
    store.add([_trace(1), _trace(2, source="specialist")])
    out = tmp_path / "out" / "intent.jsonl"
    assert export_traces(store, "intent", out) == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["source"] for r in rows] == ["frontier", "specialist"]
    assert rows[0]["input"] == {"text": "request 1"}


_CRASH = """
import os, sys
from orchestrator._traces import Trace, open_trace_store
store = open_trace_store(sys.argv[1])
store.add([Trace(run_id="r", subtask_id="s", specialist="intent", verdict="passed",
                 source="frontier", final={"label": "refund"}, input={"text": "t"})])
print("recorded", flush=True)
os.kill(os.getpid(), 9)  # no close, no atexit: the process dies here
"""


def test_traces_survive_a_crash_of_the_recording_process(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CRASH, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -9 and "recorded" in done.stdout
    store = SQLiteTraceStore(tmp_path / "traces.sqlite")
    (trace,) = store.traces("intent", taught_only=True)
    assert trace.final == {"label": "refund"}
    store.close()


def test_a_damaged_store_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "traces.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigurationError, match="not a usable trace store"):
        open_trace_store(tmp_path)
