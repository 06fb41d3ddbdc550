"""The run state: plain data in checkpoints, typed through RunView, readable across versions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from orchestrator import GraphSpec, Orchestrator
from orchestrator._contracts import Escalation, Plan, SpecialistResult, Verdict
from orchestrator._result import build_run_result
from orchestrator._state import RunState, RunView
from orchestrator.specialists import SpecialistRegistry

# A finished run's state as orchestrator 0.1.0 (commit f273bb8) checkpointed it, the graph it
# ran and the result it built: a vote escalation that failed, a dependent subtask, a set node.
RECORDED = Path(__file__).parent / "recordings" / "checkpointed_state_0.1.0.json"


def _recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    return data


def _plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


def test_run_view_parses_each_part_once_into_its_contract() -> None:
    run = RunView(_recorded()["state"])
    assert isinstance(run.plan("work"), Plan) and run.plan("work") is run.plan("work")
    a = run.result("a")
    assert isinstance(a, SpecialistResult) and run.result("a") is a
    assert isinstance(run.verdict("a"), Verdict) and run.verdict("a") is run.verdict("a")
    assert isinstance(run.escalation("a"), Escalation)
    assert run.fields is run.fields and run.fields["queue"].value == "general"
    assert run.request.text == "I am unsure"
    assert (run.succeeded("a"), run.verified("a"), run.verified("b")) == (True, False, True)


def test_run_view_reads_missing_parts_as_absent() -> None:
    run = RunView({"request": {"text": "hi"}})
    assert run.result("a") is None and run.verdict("a") is None and run.escalation("a") is None
    assert not run.succeeded("a") and not run.verified("a")
    assert (run.result_ids(), run.escalation_ids(), run.planned_nodes()) == ([], [], [])
    assert run.fields == {} and run.field_values() == {} and run.decisions == []


def test_a_state_checkpointed_by_0_1_0_gives_the_result_it_gave_then() -> None:
    recorded = _recorded()
    state: RunState = recorded["state"]
    result = build_run_result("scripted", "t1", state, planner="local", total_ms=1.0)
    again = result.model_dump(mode="json", exclude={"timings_ms"})
    del again["ledger"]["price_table"]  # where the price table was installed
    assert again == recorded["result"]
    assert result.status == "partial" and result.value("a.label") == "refund"


def test_a_finished_runs_state_is_plain_data_that_checkpoints_keep_as_it_is(
    registry: SpecialistRegistry,
) -> None:
    spec = GraphSpec.from_text(_recorded()["graph"], registry=registry)

    async def run() -> dict[str, Any]:
        async with Orchestrator(
            spec, registry=registry, checkpointer="memory", frontier=False
        ) as orc:
            await orc.arun("I am unsure", thread_id="t1")
            graph: Any = orc._graph
            snapshot = await graph.aget_state({"configurable": {"thread_id": "t1"}})
            values: dict[str, Any] = snapshot.values
            return values

    state = asyncio.run(run())
    assert _plain(state)
    serde = JsonPlusSerializer()
    assert serde.loads_typed(serde.dumps_typed(state)) == state
    # The same keys and the same shape of every part as 0.1.0 wrote.
    recorded = _recorded()["state"]
    assert set(state) == set(recorded)
    for key in ("plans", "results", "verdicts", "escalations", "fields"):
        assert set(state[key]) == set(recorded[key])
        for name, value in state[key].items():
            assert set(value) == set(recorded[key][name]), (key, name)
