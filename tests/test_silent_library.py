"""The library writes nothing until it is configured: the standard library's convention."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from orchestrator._logging import configure_logging, get_logger

ROOT = Path(__file__).resolve().parents[1]

# A plain SDK run of the shipped graph (its specialists in this process and over MCP stdio),
# with debug logging switched on by the application's structlog: nothing may reach the terminal.
_SDK_RUN = """
import structlog
structlog.configure()  # an application's own structlog set-up must not make the library talk
from orchestrator import Orchestrator
for inprocess in (True, False):
    orc = Orchestrator.from_file({graph!r}, checkpointer="memory", inprocess=inprocess)
    result = orc.run("I was charged twice this month and nobody answers my emails")
    assert result.status == "ok", result.status
    assert result.value("queue"), result.fields
"""


@pytest.fixture(autouse=True)
def _restore_framework_logger() -> Iterator[None]:
    logger = logging.getLogger("orchestrator")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate
    structlog.reset_defaults()


@pytest.mark.slow
def test_a_plain_sdk_run_writes_nothing(tmp_path: Path) -> None:
    code = _SDK_RUN.format(graph=str(ROOT / "graphs" / "support_triage.yaml"))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == ""


def test_unconfigured_loggers_are_silent(capsys: pytest.CaptureFixture[str]) -> None:
    framework = logging.getLogger("orchestrator")
    framework.handlers[:] = [h for h in framework.handlers if isinstance(h, logging.NullHandler)]
    framework.setLevel(logging.NOTSET)
    framework.propagate = True
    structlog.configure()  # the application's structlog defaults print to stdout
    log = get_logger("orchestrator.steps.call")
    log.debug("debug")
    log.info("info")
    log.warning("warning")  # would reach stderr through logging's last resort without a handler
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_application_logging_receives_named_records() -> None:
    framework = logging.getLogger("orchestrator")
    framework.handlers[:] = [h for h in framework.handlers if isinstance(h, logging.NullHandler)]
    framework.setLevel(logging.NOTSET)
    framework.propagate = True
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep(level=logging.INFO)
    root = logging.getLogger()
    root.addHandler(keep)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        get_logger("orchestrator.tools._pool").info("session opened", api_key="k")
    finally:
        root.removeHandler(keep)
        root.setLevel(old_level)
    (record,) = seen
    assert record.name == "orchestrator.tools._pool"
    assert record.levelno == logging.INFO


def test_configured_json_lines_name_the_module() -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="DEBUG", stream=stream)
    get_logger("orchestrator.steps.plan").debug("planned", subtasks=2)
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["logger"] == "orchestrator.steps.plan"
    assert record["level"] == "debug"
    assert record["subtasks"] == 2


def test_logging_configured_follows_handlers() -> None:
    from orchestrator._logging import logging_configured

    framework = logging.getLogger("orchestrator")
    framework.handlers[:] = [h for h in framework.handlers if isinstance(h, logging.NullHandler)]
    framework.propagate = True
    root_handlers = list(logging.getLogger().handlers)
    logging.getLogger().handlers[:] = []
    try:
        assert not logging_configured()
        configure_logging(stream=io.StringIO())
        assert logging_configured()
    finally:
        logging.getLogger().handlers[:] = root_handlers


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_the_cli_logs_to_stderr_at_the_level_it_is_given(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "orchestrator"]
    args = ["run", "support_triage", "--input", "My parcel never came", "--inprocess"]
    args += ["--checkpointer", "memory", "--json"]
    asked = subprocess.run(
        [*run, "--log-level", "INFO", "--log-json", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["status"] in ("ok", "partial")  # stdout: the result only
    (finished,) = [r for r in _json_lines(asked.stderr) if r["event"] == "run finished"]
    assert finished["logger"] == "orchestrator._orchestrator"
    assert finished["level"] == "info" and finished["graph"] == "support_triage"
    quiet = subprocess.run([*run, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert not [r for r in _json_lines(quiet.stderr) if r.get("level") == "info"]


@pytest.mark.slow
def test_a_served_graph_logs_to_stderr_as_configured(tmp_path: Path) -> None:
    import asyncio
    import os

    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    command = [sys.executable, "-m", "orchestrator", "--log-level", "INFO", "--log-json"]
    command += ["serve", "--graph", "support_triage", "--as-tool"]
    server = StdioServerParameters(
        command=command[0], args=command[1:], cwd=str(tmp_path), env={**os.environ}
    )
    errors = tmp_path / "stderr.log"

    async def call() -> bool:
        with errors.open("w") as errlog:
            async with Client(stdio_client(server, errlog=errlog)) as client:
                answer = await client.call_tool("support_triage", {"text": "refund please"})
                return bool(answer.is_error)

    assert asyncio.run(call()) is False  # stdout carried the protocol, undisturbed
    records = _json_lines(errors.read_text())
    (finished,) = [r for r in records if r["event"] == "run finished"]
    assert finished["logger"] == "orchestrator._orchestrator"
