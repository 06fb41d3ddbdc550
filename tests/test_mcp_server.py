"""Specialists served as MCP tools, checked in memory with the SDK's own client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from mcp import Client
from mcp.types import TextContent

from orchestrator.specialists.testing import ScriptedSpecialist
from orchestrator.tools.server import META_KEY, ServerLimits, build_server


def _server() -> Any:
    specialist = ScriptedSpecialist(
        {
            "answers": {"refund": {"label": "refund", "confidence": 0.95}},
            "labels": ["refund", "other"],
        }
    )
    return build_server(
        {"triage": specialist}, limits=ServerLimits(max_input_chars=50, max_batch=3)
    )


def _with_client(body: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        async with Client(_server()) as client:
            await body(client)

    asyncio.run(main())


def _error_text(result: Any) -> str:
    assert result.is_error
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


def test_tools_publish_the_specialist_contract() -> None:
    async def body(client: Client) -> None:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"triage", "triage_batch"}
        single = tools["triage"]
        assert single.input_schema["required"] == ["text"]
        assert single.input_schema["properties"]["text"]["type"] == "string"
        assert single.output_schema is not None
        assert set(single.output_schema["required"]) >= {"output", "confidence", "model"}
        contract = (single.meta or {})[META_KEY]
        assert contract["labels"] == ["refund", "other"]
        assert contract["summary_fields"] == ["label"]
        assert contract["output_schema"]["required"] == ["label", "text"]
        assert tools["triage_batch"].input_schema["properties"]["items"]["maxItems"] == 3

    _with_client(body)


def test_call_returns_structured_content() -> None:
    async def body(client: Client) -> None:
        result = await client.call_tool("triage", {"text": "I want a refund"})
        assert not result.is_error
        content = result.structured_content
        assert content is not None
        assert content["output"] == {"label": "refund", "text": "I want a refund"}
        assert content["confidence"] == 0.95
        assert content["model"] == "scripted-v1"
        assert content["tokens"] == 4 and content["compute_ms"] >= 0

    _with_client(body)


def test_batch_call_answers_each_item() -> None:
    async def body(client: Client) -> None:
        result = await client.call_tool(
            "triage_batch", {"items": [{"text": "refund"}, {"text": "hi"}]}
        )
        content = result.structured_content
        assert content is not None
        assert [r["output"]["label"] for r in content["results"]] == ["refund", "other"]

    _with_client(body)


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("triage", {"text": 123}, "Input should be a valid string"),
        ("triage", {}, "Field required"),
        ("triage", {"text": ""}, "at least 1 character"),
        ("triage", {"text": "\u200b \ufeff"}, "no visible characters"),
        ("triage", {"text": "x" * 51}, "has 51 characters; this server accepts at most 50"),
        ("triage_batch", {"items": [{"text": "a"}] * 4}, "at most 3 items"),
        ("triage_batch", {"items": "nope"}, "valid list"),
        ("nope", {"text": "hi"}, "Unknown tool: nope"),
    ],
)
def test_bad_input_is_a_clear_error_and_the_next_call_works(
    tool: str, arguments: dict[str, Any], expected: str
) -> None:
    async def body(client: Client) -> None:
        assert expected in _error_text(await client.call_tool(tool, arguments))
        again = await client.call_tool("triage", {"text": "refund"})
        assert not again.is_error

    _with_client(body)


def test_concurrent_calls_on_one_session() -> None:
    async def body(client: Client) -> None:
        texts = [f"message {i}" for i in range(40)]
        results = await asyncio.gather(*(client.call_tool("triage", {"text": t}) for t in texts))
        assert [r.structured_content["output"]["text"] for r in results] == texts  # type: ignore[index]

    _with_client(body)
