"""`langgraph.json` points `langgraph dev` at factories that build the shipped graphs."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
from pathlib import Path
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


def _langgraph_dev_blockbuster() -> Any:
    """The blocking-call checker as `langgraph dev` sets it up around runs (langgraph-api's
    queue, `_enable_blockbuster`): every blocking call fails, except the calls it lets pass
    (os.stat, os.listdir, os.remove, os.path.*, lock acquisition, and reads and writes in
    a few named library functions)."""
    from blockbuster import BlockBuster

    bb = BlockBuster(excluded_modules=[])
    for module, func in (
        ("langsmith/client.py", "_default_retry_config"),
        ("langgraph/pregel/utils.py", "get_function_nonlocals"),
        ("importlib/metadata/__init__.py", "metadata"),
        ("importlib/metadata/__init__.py", "read_text"),
    ):
        bb.functions["io.TextIOWrapper.read"].can_block_in(module, func)
    bb.functions["os.path.abspath"].can_block_in("inspect.py", "getmodule")
    for module, func in (("logging/__init__.py", "flush"), ("logging/__init__.py", "emit")):
        bb.functions["io.TextIOWrapper.write"].can_block_in(module, func)
        bb.functions["io.BufferedWriter.write"].can_block_in(module, func)
    allowed = ["os.stat", "os.listdir", "os.remove", "threading.Lock.acquire"]
    allowed += [name for name in bb.functions if name.startswith("os.path.")]
    for name in allowed:
        function = bb.functions.pop(name, None)
        if function is not None:
            function.deactivate()
    bb.activate()
    return bb


@pytest.mark.slow
def test_factories_and_a_run_block_nothing_under_langgraph_devs_checker() -> None:
    from blockbuster import BlockingError

    from orchestrator import ConfigurationError
    from orchestrator.langgraph_app import contract_review, support_triage

    async def main() -> dict[str, Any]:
        bb = _langgraph_dev_blockbuster()
        try:
            with contextlib.suppress(ConfigurationError):
                await contract_review()  # refused without a trained clauses artifact
            graph = await support_triage()
            # Built once: the host calls the factory per run, and must not reload the models.
            assert await support_triage() is graph
            state: dict[str, Any] = await graph.ainvoke(
                {"request": {"text": "I was charged twice this month"}}
            )
            return state
        finally:
            bb.deactivate()

    try:
        state = asyncio.run(main())
    except BlockingError as exc:  # the first line names the call; the rest is advice
        pytest.fail(f"a blocking call on the event loop: {str(exc).splitlines()[0]}")
    assert state["fields"]["intent.label"]["value"] == "billing"
    assert {"intent", "sentiment"} <= set(state["results"])


def test_the_checker_catches_what_langgraph_dev_refused() -> None:
    """The same checker fails the blocking call `langgraph dev` reported (a directory scan
    on the event loop), so the test above would see it."""
    from blockbuster import BlockingError

    from orchestrator.graphs import SCHEMA_FILE

    async def scan() -> None:
        bb = _langgraph_dev_blockbuster()
        try:
            sorted(SCHEMA_FILE.parent.glob("*.yaml"))
        finally:
            bb.deactivate()

    with pytest.raises(BlockingError, match="ScandirIterator"):
        asyncio.run(scan())


@pytest.mark.slow
def test_an_sdk_run_with_sqlite_checkpoints_blocks_nothing_either(tmp_path: Path) -> None:
    """An application's own event loop (an ASGI server) gets the same care: opening the
    SQLite checkpointer, the thread leases and the trace store, and the run itself."""
    from blockbuster import BlockingError

    from orchestrator import Orchestrator
    from orchestrator.graphs import shipped_graph

    path = shipped_graph("support_triage")
    assert path is not None
    orc = Orchestrator.from_file(path, state_dir=tmp_path, inprocess=True)  # sqlite, traces

    async def main() -> str:
        bb = _langgraph_dev_blockbuster()
        try:
            async with orc:
                result = await orc.arun("My parcel never came")
            return result.status
        finally:
            bb.deactivate()

    try:
        status = asyncio.run(main())
    except BlockingError as exc:
        pytest.fail(f"a blocking call on the event loop: {str(exc).splitlines()[0]}")
    assert status in ("ok", "partial")
    assert (tmp_path / "checkpoints.sqlite").is_file()
    assert (tmp_path / "traces.sqlite").is_file()
