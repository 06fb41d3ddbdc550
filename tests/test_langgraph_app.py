"""`langgraph.json` points `langgraph dev` at factories that build the shipped graphs."""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import pytest

from .conftest import REPO


def test_langgraph_json_names_every_shipped_graph() -> None:
    config = json.loads((REPO / "langgraph.json").read_text())
    shipped = {p.stem for p in (REPO / "graphs").glob("*.yaml")}
    assert set(config["graphs"]) == shipped
    for name, target in config["graphs"].items():
        path, _, attr = target.partition(":")
        assert (REPO / path).is_file(), target
        module = importlib.import_module(
            path.removeprefix("./").removesuffix(".py").replace("/", ".")
        )
        assert callable(getattr(module, attr)), name


@pytest.mark.slow
def test_factory_builds_a_graph_the_host_can_invoke() -> None:
    from orchestrator.langgraph_app import support_triage

    async def main() -> dict[str, Any]:
        graph = await support_triage()
        state: dict[str, Any] = await graph.ainvoke({"request": {"text": "My parcel never came"}})
        return state

    state = asyncio.run(main())
    assert state["fields"]["intent.label"]["value"] == "order_status"
    assert state["path"][0] == "triage"
    assert {"intent", "sentiment"} <= set(state["results"])
