"""Our MCP server driven by the official MCP Inspector's CLI (a client we did not write).

The Inspector runs under Node through ``npx``; its first run downloads the package from the
npm registry into npx's cache, later runs reuse it. The tests skip only when ``npx`` is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

NPX = shutil.which("npx")
# The 0.15 line runs on Node 20; later lines need newer Node.
INSPECTOR = "@modelcontextprotocol/inspector@0.15"
SERVE = [sys.executable, "-m", "orchestrator", "serve", "sentiment"]
LABELS = {"negative", "neutral", "positive"}
# The first run downloads the Inspector and its dependencies.
TIMEOUT_S = 180

needs_npx = pytest.mark.skipif(NPX is None, reason="npx (Node.js) is not on PATH")


def _npm_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        npm_config_update_notifier="false",
        npm_config_fund="false",
        npm_config_audit="false",
        npm_config_yes="true",
    )
    home = env.get("HOME")
    if "npm_config_cache" not in env and not (home and os.access(home, os.W_OK)):
        # npx's default cache lives in ~/.npm; without a writable home, keep one in /tmp.
        env["npm_config_cache"] = str(Path(tempfile.gettempdir()) / "orchestrator-npm-cache")
    return env


def _inspect(target: list[str], *options: str, cwd: Path) -> dict[str, Any]:
    """Run ``inspector --cli TARGET OPTIONS`` and return the JSON it prints."""
    assert NPX is not None
    command = [NPX, "-y", INSPECTOR, "--cli", *target, *options]
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=_npm_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the Inspector did not finish within {TIMEOUT_S} s: {exc.stderr!r}")
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"the Inspector printed no JSON:\n{done.stdout}\n{done.stderr}")
    assert isinstance(answer, dict)
    return answer


def _call(target: list[str], tool: str, *args: str, cwd: Path) -> dict[str, Any]:
    options = ["--method", "tools/call", "--tool-name", tool]
    for arg in args:
        options += ["--tool-arg", arg]
    return _inspect(target, *options, cwd=cwd)


def _error_text(result: dict[str, Any]) -> str:
    assert result.get("isError") is True, result
    return " ".join(c.get("text", "") for c in result["content"] if c.get("type") == "text")


def _check_answer(result: dict[str, Any]) -> None:
    assert result.get("isError") is False, result
    content = result["structuredContent"]
    assert content["output"]["label"] in LABELS
    assert 0 <= content["confidence"] <= 1
    assert content["model"].startswith("sentiment:")


@needs_npx
def test_tools_list_publishes_both_tools_with_schemas(tmp_path: Path) -> None:
    listing = _inspect(SERVE, "--method", "tools/list", cwd=tmp_path)
    tools = {t["name"]: t for t in listing["tools"]}
    assert {"sentiment", "sentiment_batch"} <= set(tools)
    single, batch = tools["sentiment"], tools["sentiment_batch"]
    assert single["inputSchema"]["properties"]["text"]["type"] == "string"
    assert single["inputSchema"]["required"] == ["text"]
    assert batch["inputSchema"]["properties"]["items"]["type"] == "array"
    for tool in (single, batch):
        assert tool["outputSchema"]["type"] == "object"
    assert {"output", "confidence", "model"} <= set(single["outputSchema"]["required"])
    assert batch["outputSchema"]["required"] == ["results"]


@needs_npx
def test_tools_call_returns_structured_content(tmp_path: Path) -> None:
    result = _call(SERVE, "sentiment", "text=I love this, thank you so much!", cwd=tmp_path)
    _check_answer(result)
    assert result["structuredContent"]["tokens"] > 0


@needs_npx
def test_missing_argument_over_stdio_is_a_tool_error(tmp_path: Path) -> None:
    result = _call(SERVE, "sentiment", "txt=hi", cwd=tmp_path)
    message = _error_text(result)
    assert "validation error" in message and "Field required" in message
    assert "structuredContent" not in result or result["structuredContent"] is None


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``orchestrator serve sentiment`` over streamable HTTP on a free port of 127.0.0.1."""
    log = tmp_path / "server.log"
    with log.open("wb") as errors:
        proc = subprocess.Popen(
            [*SERVE, "--transport", "http", "--host", "127.0.0.1", "--port", "0"],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        try:
            deadline = time.monotonic() + 120
            url = None
            while url is None:
                found = re.search(r"on (http://127\.0\.0\.1:\d+/mcp)", log.read_text())
                if found:
                    url = found.group(1)
                    break
                assert proc.poll() is None, f"the server stopped:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"no server after 120 s:\n{log.read_text()}"
                time.sleep(0.1)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)


@needs_npx
def test_bad_calls_are_tool_errors_and_the_server_goes_on(
    http_server: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url, proc = http_server
    missing = _call([url], "sentiment", "txt=hi", cwd=tmp_path)
    message = _error_text(missing)
    assert "validation error" in message and "Field required" in message

    empty = _call([url], "sentiment_batch", 'items=[{"text": "fine"}, {"text": ""}]', cwd=tmp_path)
    message = _error_text(empty)
    assert "validation error" in message and "at least 1 character" in message

    assert proc.poll() is None, "the server stopped after a bad call"
    _check_answer(_call([url], "sentiment", "text=This is the worst service ever", cwd=tmp_path))
    batch = _call(
        [url], "sentiment_batch", 'items=[{"text": "great"}, {"text": "awful"}]', cwd=tmp_path
    )
    assert batch.get("isError") is False, batch
    results = batch["structuredContent"]["results"]
    assert [r["output"]["label"] in LABELS for r in results] == [True, True]
    assert proc.poll() is None
