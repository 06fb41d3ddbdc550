"""The postgres checkpointer: runs kept in PostgreSQL, their leases and traces beside them,
and one clear line (never a password) for a missing extra, a missing or a wrong URL."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from orchestrator import Orchestrator, ThreadBusyError
from orchestrator._errors import ConfigurationError
from orchestrator._postgres import DATABASE_URL_ENV, show_url
from orchestrator._traces_postgres import PostgresTraceStore
from orchestrator.cli.main import main
from orchestrator.specialists import SpecialistRegistry

SLOW_GRAPH = """\
version: 1
name: slow
specialists:
  first: {uses: scripted, options: {delay_s: 0.6, default: {label: done, confidence: 0.9}}}
nodes:
  work: {kind: specialists, subtasks: [{id: a, specialist: first}]}
edges:
  - {from: START, to: work}
"""


def _orchestrator(
    text: str, registry: SpecialistRegistry, url: str | None, **kwargs: object
) -> Orchestrator:
    return Orchestrator.from_text(
        text,
        registry=registry,
        checkpointer="postgres",
        database_url=url,
        inprocess=True,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_run_is_kept_in_postgres_and_read_back_by_another_orchestrator(
    scripted_graph_text: str, registry: SpecialistRegistry, database_url: str
) -> None:
    first = _orchestrator(scripted_graph_text, registry, database_url)
    result = first.run("refund please", thread_id="t-1")
    assert result.status == "ok"
    assert result.value("queue") == "refunds"
    # Another orchestrator on the same database (another worker) sees the finished run.
    again = _orchestrator(scripted_graph_text, registry, database_url).run(
        "refund please", thread_id="t-1"
    )
    assert again.model_dump(exclude={"timings_ms"}) == result.model_dump(exclude={"timings_ms"})
    # Its traces are in the same database.
    store = PostgresTraceStore(database_url)
    try:
        assert [t.subtask_id for t in store.traces("first")] == ["a"]
    finally:
        store.close()


def test_the_database_url_comes_from_the_environment(
    scripted_graph_text: str,
    registry: SpecialistRegistry,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, database_url)
    result = _orchestrator(scripted_graph_text, registry, None).run("refund please")
    assert result.status == "ok"


def test_a_second_runner_of_a_thread_is_refused_across_orchestrators(
    registry: SpecialistRegistry, database_url: str
) -> None:
    async def scenario() -> list[str]:
        one = _orchestrator(SLOW_GRAPH, registry, database_url)
        two = _orchestrator(SLOW_GRAPH, registry, database_url)
        async with one, two:

            async def attempt(orc: Orchestrator, delay: float) -> str:
                await asyncio.sleep(delay)
                try:
                    return (await orc.arun("go", thread_id="shared")).status
                except ThreadBusyError as exc:
                    return f"busy: {exc}"

            return list(await asyncio.gather(attempt(one, 0.0), attempt(two, 0.3)))

    first, second = asyncio.run(scenario())
    assert first == "ok"
    assert second.startswith("busy: thread 'shared' is being run by another runner")


def test_without_a_url_the_error_names_the_option_and_the_variable(
    scripted_graph_text: str, registry: SpecialistRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    with pytest.raises(ConfigurationError, match=f"--database-url .*{DATABASE_URL_ENV}"):
        _orchestrator(scripted_graph_text, registry, None).run("refund please")


def test_an_unreachable_database_is_one_line_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "version: 1\nname: g\nspecialists:\n  first: {uses: sentiment, via: inprocess}\n"
        "nodes:\n  work: {kind: specialists, subtasks: [{id: a, specialist: first}]}\n"
        "edges:\n  - {from: START, to: work}\n"
    )
    url = "postgresql://someone:hunter2-very-secret@127.0.0.1:1/nowhere"
    code = main(
        ["run", str(graph), "--input", "hi", "--checkpointer", "postgres", "--database-url", url]
    )
    captured = capsys.readouterr()
    assert code == 3
    assert "hunter2" not in captured.err + captured.out
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("error: cannot use the database postgresql://someone:***@127.0.0.1:1")
    assert "--database-url" in line


def test_a_url_that_is_not_postgres_is_refused_by_name() -> None:
    from orchestrator._postgres import database_url

    with pytest.raises(ConfigurationError, match="is not a PostgreSQL URL"):
        database_url("mysql://root:topsecret99@db/x")
    assert "topsecret99" not in show_url("mysql://root:topsecret99@db/x")


def test_without_the_extra_the_error_names_it(
    scripted_graph_text: str,
    registry: SpecialistRegistry,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "langgraph.checkpoint.postgres.aio", None)
    with pytest.raises(
        ConfigurationError, match=r"pip install 'specialist-orchestrator\[postgres\]'"
    ):
        _orchestrator(scripted_graph_text, registry, database_url).run("refund please")
