"""`orchestrator serve --graph G --as-tool`: the whole graph published as one MCP tool."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from orchestrator import GraphSpec, Orchestrator
from orchestrator.cli.main import ExitCode, main
from orchestrator.specialists import SpecialistRegistry
from orchestrator.tools.graph_server import build_graph_server

from .test_inspector import _call, _error_text, _inspect, needs_npx

SERVE = [sys.executable, "-m", "orchestrator", "serve", "--graph", "support_triage", "--as-tool"]


def _scripted_server(text: str, registry: SpecialistRegistry) -> Any:
    spec = GraphSpec.from_text(text, registry=registry)
    return build_graph_server(Orchestrator(spec, registry=registry, checkpointer="memory"))


def test_the_tool_answers_fields_with_provenance_in_memory(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    server = _scripted_server(scripted_graph_text, registry)

    async def main() -> tuple[Any, Any, Any]:
        async with Client(server) as client:
            listing = await client.list_tools()
            answer = await client.call_tool(
                "scripted", {"text": "I want a refund", "metadata": {"tier": "gold"}}
            )
            empty = await client.call_tool("scripted", {"text": ""})
            return listing, answer, empty

    listing, answer, empty = asyncio.run(main())
    (tool,) = listing.tools
    assert tool.name == "scripted"
    assert tool.input_schema["required"] == ["text"]
    assert set(tool.input_schema["properties"]) == {"text", "metadata"}
    assert {"status", "fields", "escalations"} <= set(tool.output_schema["required"])
    assert not answer.is_error
    content = answer.structured_content
    assert content["status"] == "ok" and content["graph"] == "scripted"
    label = content["fields"]["a.label"]
    assert label["value"] == "refund"
    assert label["provenance"]["model"] == "scripted-v1" and label["provenance"]["verified"]
    assert content["fields"]["queue"]["provenance"]["source"] == "rule"
    assert empty.is_error  # the schema refuses an empty request; the server goes on
    assert "text" in empty.content[0].text


def test_a_failed_run_is_a_tool_error_and_the_server_goes_on(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    failing = scripted_graph_text.replace(
        "      labels: [refund, other]",
        "      labels: [refund, other]\n      fail: always\n      fail_with: crash",
    ).replace(
        '        "refund": {label: followup, confidence: 0.8}',
        '        "refund": {label: followup, confidence: 0.8}\n      fail: always\n'
        "      fail_with: crash",
    )
    server = _scripted_server(failing, registry)

    async def main() -> tuple[Any, Any]:
        async with Client(server) as client:
            first = await client.call_tool("scripted", {"text": "refund"})
            second = await client.call_tool("scripted", {"text": "refund"})
            return first, second

    first, second = asyncio.run(main())
    for result in (first, second):
        assert result.is_error
        assert "the run failed: a: scripted crash" in result.content[0].text


@pytest.mark.slow
def test_serve_as_tool_over_stdio_with_the_official_client(tmp_path: Path) -> None:
    server = StdioServerParameters(
        command=SERVE[0], args=SERVE[1:], cwd=str(tmp_path), env={**os.environ}
    )

    async def session() -> tuple[Any, Any, Any, Any]:
        with open(os.devnull, "w") as quiet:
            async with Client(stdio_client(server, errlog=quiet)) as client:
                listing = await client.list_tools()
                answer = await client.call_tool(
                    "support_triage", {"text": "I was charged twice this month"}
                )
                wrong = await client.call_tool("support_triage", {"txt": "hi"})
                again = await client.call_tool("support_triage", {"text": "My parcel never came"})
                return listing, answer, wrong, again

    listing, answer, wrong, again = asyncio.run(session())
    assert [t.name for t in listing.tools] == ["support_triage"]
    assert not answer.is_error
    content = answer.structured_content
    assert content["status"] in ("ok", "partial")
    intent = content["fields"]["intent.label"]
    assert intent["value"] == "billing"
    assert intent["provenance"]["model"].startswith("intent:")
    assert 0 <= intent["provenance"]["confidence"] <= 1
    assert content["fields"]["queue"]["provenance"]["source"] == "rule"
    assert wrong.is_error and "Field required" in wrong.content[0].text
    assert not again.is_error
    assert again.structured_content["fields"]["intent.label"]["value"] == "order_status"


@pytest.mark.slow
@needs_npx
def test_serve_as_tool_with_the_inspector_cli(tmp_path: Path) -> None:
    listing = _inspect(SERVE, "--method", "tools/list", cwd=tmp_path)
    (tool,) = listing["tools"]
    assert tool["name"] == "support_triage"
    assert tool["outputSchema"]["properties"]["fields"]["type"] == "object"
    result = _call(SERVE, "support_triage", "text=My parcel never came", cwd=tmp_path)
    assert result.get("isError") is False, result
    fields = result["structuredContent"]["fields"]
    assert fields["intent.label"]["value"] == "order_status"
    assert fields["intent.label"]["provenance"]["verified"] in (True, False)
    message = _error_text(_call(SERVE, "support_triage", "txt=hi", cwd=tmp_path))
    assert "Field required" in message


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["serve", "--as-tool"], "--as-tool serves a graph: give it with --graph GRAPH"),
        (
            ["serve", "intent", "--graph", "support_triage", "--as-tool"],
            "--as-tool serves the whole graph as one tool: leave out the specialist names",
        ),
    ],
)
def test_as_tool_mistakes_are_one_line(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == ExitCode.INVALID
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
