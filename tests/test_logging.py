"""Tests for the structlog configuration and the secret redaction."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import structlog

from orchestrator._logging import configure_logging, get_logger, mask_secrets, redact_secrets

ROOT = Path(__file__).resolve().parents[1]
ANTHROPIC_KEY = "sk-ant-api03-AbCdEf1234567890_xyzXYZ-abcdef"
OPENAI_KEY = "sk-proj-1234567890abcdefghijKLMN"


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


class Pair(NamedTuple):
    left: str
    right: str


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_import_configures_nothing() -> None:
    code = (
        "import structlog, orchestrator._logging; "
        "raise SystemExit(1 if structlog.is_configured() else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT)
    assert result.returncode == 0


def test_json_lines() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    log = get_logger("orchestrator.test")
    log.info("started", run_id="r1", count=3)
    log.warning("slow", seconds=1.5)
    records = _lines(stream)
    assert len(records) == 2
    first = records[0]
    assert first["event"] == "started"
    assert first["level"] == "info"
    assert first["logger"] == "orchestrator.test"
    assert first["run_id"] == "r1"
    assert first["count"] == 3
    assert first["timestamp"].endswith("Z")
    assert "T" in first["timestamp"]
    assert records[1]["level"] == "warning"


def test_json_is_default_for_non_tty_stream() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    get_logger().info("hello")
    (record,) = _lines(stream)
    assert record["event"] == "hello"
    assert "logger" not in record


def test_level_filters_and_is_case_insensitive() -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="warning", stream=stream)
    log = get_logger("x")
    log.debug("no")
    log.info("no")
    log.warning("yes")
    log.error("yes too")
    assert [r["event"] for r in _lines(stream)] == ["yes", "yes too"]


def test_unknown_level_names_allowed_values() -> None:
    with pytest.raises(ValueError, match="'verbose'") as info:
        configure_logging(level="verbose", stream=io.StringIO())
    for name in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        assert name in str(info.value)
    assert not structlog.is_configured()


def test_secret_keys_redacted_including_nested() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    headers = {"X-Api-Key": "abc", "Content-Type": "application/json"}
    get_logger("http").info(
        "request",
        api_key="plain-key-value",
        password="hunter2",
        headers=headers,
        servers=[{"name": "s1", "accessToken": "tok"}],
        input_tokens=512,
        token_count=7,
    )
    (record,) = _lines(stream)
    assert record["api_key"] == "***"
    assert record["password"] == "***"
    assert record["headers"] == {"X-Api-Key": "***", "Content-Type": "application/json"}
    assert record["servers"] == [{"name": "s1", "accessToken": "***"}]
    assert record["input_tokens"] == 512
    assert record["token_count"] == 7
    # The caller's own dict is left alone.
    assert headers["X-Api-Key"] == "abc"


def test_secrets_inside_strings_masked() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    get_logger().error(
        f"call failed with key {ANTHROPIC_KEY} for user",
        detail=f"fallback {OPENAI_KEY} also failed",
        header="Authorization: Bearer abc.def-ghi_123",
        url="https://x.test/v1?api_key=abcdef123&page=2",
    )
    text = stream.getvalue()
    assert ANTHROPIC_KEY not in text
    assert OPENAI_KEY not in text
    (record,) = _lines(stream)
    assert record["event"] == "call failed with key sk-ant-*** for user"
    assert record["detail"] == "fallback sk-*** also failed"
    assert record["header"] == "Authorization: Bearer ***"
    assert record["url"] == "https://x.test/v1?api_key=***&page=2"


def test_secrets_in_exception_tracebacks_masked() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    try:
        raise RuntimeError(f"bad key {ANTHROPIC_KEY}")
    except RuntimeError:
        get_logger().exception("boom")
    (record,) = _lines(stream)
    assert "RuntimeError: bad key sk-ant-***" in record["exception"]
    assert ANTHROPIC_KEY not in stream.getvalue()


def test_redact_secrets_processor_directly() -> None:
    event: dict[str, Any] = {
        "event": f"using {ANTHROPIC_KEY}",
        "Authorization": "Bearer xyz",
        "config": {"client_secret": "s", "nested": ({"token": "t"}, "ok")},
        "short": "sk-short",
        "risk": "risk-assessment",
    }
    result = redact_secrets(None, "info", event)
    assert result is event
    assert result == {
        "event": "using sk-ant-***",
        "Authorization": "***",
        "config": {"client_secret": "***", "nested": ({"token": "***"}, "ok")},
        "short": "sk-short",
        "risk": "risk-assessment",
    }


def test_redaction_keeps_container_kinds() -> None:
    pair = Pair(left="ok", right=f"key {OPENAI_KEY}")
    result = redact_secrets(None, "info", {"pair": pair, "keys": {f"k {OPENAI_KEY}"}})
    assert result["pair"] == Pair(left="ok", right="key sk-***")
    assert result["keys"] == frozenset({"k sk-***"})


def test_redaction_survives_cycles() -> None:
    looped: dict[str, Any] = {"password": "p"}
    looped["self"] = looped
    result = redact_secrets(None, "info", {"data": looped})
    assert result["data"]["password"] == "***"
    assert result["data"]["self"] == "<recursion>"


def test_masked_json_stays_valid() -> None:
    text = json.dumps({"m": 'password=abc"def\\ghi', "r": "{'api_key': 'x\\\\y'}"})
    assert json.loads(mask_secrets(text)) == {
        "m": 'password=***"def\\ghi',
        "r": "{'api_key': '***\\\\y'}",
    }


def test_console_mode_is_readable_text() -> None:
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)
    get_logger("cli").info("ready", port=8080, api_key="k", note=f"key {OPENAI_KEY}")
    text = stream.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert "ready" in text
    assert "port=8080" in text
    assert "api_key=***" in text
    assert "cli" in text
    assert "info" in text
    assert OPENAI_KEY not in text
    assert "\x1b[" not in text  # not a terminal: no colour codes


def test_console_exception_masked() -> None:
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)
    try:
        raise RuntimeError(f"bad key {ANTHROPIC_KEY}")
    except RuntimeError:
        get_logger().exception("boom")
    text = stream.getvalue()
    assert "RuntimeError" in text
    assert ANTHROPIC_KEY not in text
    assert "sk-ant-***" in text


def test_reconfiguring_switches_mode_for_existing_loggers() -> None:
    log = get_logger("switch")
    first = io.StringIO()
    configure_logging(json=True, stream=first)
    log.info("one")
    configure_logging(json=False, stream=first)
    log.info("two")
    second = io.StringIO()
    configure_logging(json=True, stream=second)
    log.info("three")
    lines = first.getvalue().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["event"] == "one"
    assert lines[1].lstrip().split(" ", 1)[0] != "{"
    assert "two" in lines[1]
    assert _lines(second)[0]["event"] == "three"


def test_context_variables_are_merged() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    structlog.contextvars.bind_contextvars(run_id="r9", token="secret-value")
    get_logger().info("step")
    (record,) = _lines(stream)
    assert record["run_id"] == "r9"
    assert record["token"] == "***"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_console_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = _Terminal()
    configure_logging(stream=stream)
    api_key = "-".join(["local", "variable", "secret"])  # not visible in source lines
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        get_logger("tty").exception("failed", api_key=api_key)
    text = stream.getvalue()
    assert not text.lstrip().startswith("{")
    assert "\x1b[" in text
    assert "RuntimeError" in text
    # Tracebacks do not print local variables, which may hold credentials.
    assert api_key not in text


def test_no_color_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    stream = _Terminal()
    configure_logging(stream=stream)
    get_logger().info("plain")
    assert "plain" in stream.getvalue()
    assert "\x1b[" not in stream.getvalue()
