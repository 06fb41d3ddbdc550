"""Running graphs through the SDK: fan-out, dependencies, verification, failures, streaming."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orchestrator import ConfigurationError, GraphSpec, Orchestrator, RunResult
from orchestrator.specialists import SpecialistRegistry


def _orc(text: str, registry: SpecialistRegistry, **kwargs: object) -> Orchestrator:
    return Orchestrator(
        GraphSpec.from_text(text, registry=registry),
        registry=registry,
        checkpointer="memory",
        **kwargs,
    )  # type: ignore[arg-type]


def test_dependent_subtask_reads_its_dependency_and_routes(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    result = _orc(scripted_graph_text, registry).run("I want a refund please")
    assert result.status == "ok"
    assert result.value("a.label") == "refund"
    # b ran after a and saw a's label through its template
    b = next(s for s in result.subtasks if s.id == "b")
    assert b.output == {"label": "followup", "text": "previous said refund"}
    assert result.value("queue") == "refunds"
    assert result.value("seen") == "refund"
    queue = result.fields["queue"].provenance
    assert queue.source == "rule" and queue.node == "refund_route"
    assert queue.derived_from == ("a",) and queue.verified and queue.confidence == 0.95
    a = result.fields["a.label"].provenance
    assert (a.source, a.specialist, a.model, a.verified) == (
        "specialist",
        "first",
        "scripted-v1",
        True,
    )
    assert result.path == ("work", "refund_route")
    assert result.planner == "local"
    assert set(result.timings_ms) >= {"plan", "call", "verify", "merge", "set", "total"}


def test_low_confidence_fails_verification_and_is_marked(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    result = _orc(scripted_graph_text, registry).run("unsure what I want")
    a = result.fields["a.label"]
    assert a.value == "refund" and not a.provenance.verified and a.provenance.escalated
    assert result.value("queue") == "general"  # the condition required a.verified
    assert result.status == "partial"
    (escalation,) = result.escalations
    assert escalation.subtask_id == "a" and "confidence 0.20 is below 0.50" in escalation.reason
    assert escalation.outcome == "unresolved"


def test_label_outside_the_label_set_fails_verification(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        "default: {label: other, confidence: 0.9}", "default: {label: bogus, confidence: 0.9}"
    )
    result = _orc(text, registry).run("hello")
    report = next(s for s in result.subtasks if s.id == "a")
    assert not report.verified
    assert "label 'bogus' is not in the label set" in report.reasons


def test_a_failing_specialist_is_recorded_and_the_run_goes_on(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        "      labels: [refund, other]",
        "      labels: [refund, other]\n      fail: always\n      fail_with: crash",
    )
    result = _orc(text, registry).run("I want a refund")
    a = next(s for s in result.subtasks if s.id == "a")
    assert not a.ok and a.error == "scripted crash" and a.attempts == 1  # crashes are not retried
    assert result.skipped == {"b": "dependency failed: a"}
    assert result.value("queue") == "general"
    assert result.status == "failed"


def test_transport_failures_are_retried(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        "      labels: [refund, other]", "      labels: [refund, other]\n      fail: first"
    )
    result = _orc(text, registry).run("I want a refund")
    a = next(s for s in result.subtasks if s.id == "a")
    assert a.ok and a.attempts == 2
    assert result.status == "ok"


def test_timeouts_are_retried_then_recorded(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        "      labels: [refund, other]", "      labels: [refund, other]\n      delay_s: 0.3"
    ).replace("  first:\n    uses: scripted", "  first:\n    timeout_s: 0.05\n    uses: scripted")
    result = _orc(text, registry).run("I want a refund")
    a = next(s for s in result.subtasks if s.id == "a")
    assert not a.ok
    assert a.attempts == 2  # retries: 1
    assert "did not answer within 0.05 s" in (a.error or "")


def test_parallel_subtasks_merge_without_conflicts(registry: SpecialistRegistry) -> None:
    subtasks = "\n".join(f"      - {{id: s{i}, specialist: sc}}" for i in range(8))
    text = f"""\
name: fanout
specialists:
  sc: {{uses: scripted, options: {{delay_s: 0.05}}}}
nodes:
  all:
    kind: specialists
    subtasks:
{subtasks}
edges:
  - {{from: START, to: all}}
"""
    result = _orc(text, registry).run("hello")
    assert sorted(s.id for s in result.subtasks) == [f"s{i}" for i in range(8)]
    assert all(s.ok for s in result.subtasks)
    assert len([k for k in result.fields if k.endswith(".label")]) == 8
    # eight 50 ms calls ran concurrently, not one after another
    assert result.timings_ms["total"] < 8 * 50


def test_similarity_planner_skips_unrelated_specialists(registry: SpecialistRegistry) -> None:
    text = """\
name: selective
specialists:
  weather:
    uses: scripted
    description: Forecasts rain, sun, temperature and wind for a city.
  billing:
    uses: scripted
    description: Explains charges, invoices and payments on a customer's bill.
nodes:
  pick:
    kind: specialists
    subtasks:
      - {id: w, specialist: weather, select: similarity, min_similarity: 0.3}
      - {id: b, specialist: billing, select: similarity, min_similarity: 0.3}
edges:
  - {from: START, to: pick}
"""
    result = _orc(text, registry).run("Why was my invoice charged twice this month?")
    assert [s.id for s in result.subtasks] == ["b"]
    assert result.skipped["w"].startswith("similarity ")
    assert result.status == "ok"


def test_stream_events_in_order(scripted_graph_text: str, registry: SpecialistRegistry) -> None:
    async def collect() -> list[str]:
        orc = _orc(scripted_graph_text, registry)
        return [e.kind async for e in orc.astream("I want a refund")]

    kinds = asyncio.run(collect())
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert kinds.index("planned") < kinds.index("called") < kinds.index("verified")
    assert kinds.count("called") == 2 and "merged" in kinds and "set" in kinds


def test_sync_run_refuses_inside_an_event_loop(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    orc = _orc(scripted_graph_text, registry)

    async def inside() -> None:
        with pytest.raises(ConfigurationError, match=r"use `await orchestrator.arun\(...\)`"):
            orc.run("hello")

    asyncio.run(inside())


def test_many_concurrent_runs_on_one_open_orchestrator(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    async def main() -> list[RunResult]:
        async with _orc(scripted_graph_text, registry) as orc:
            return await asyncio.gather(*(orc.arun(f"refund {i}") for i in range(20)))

    results = asyncio.run(main())
    assert len({r.thread_id for r in results}) == 20
    assert all(r.value("queue") == "refunds" for r in results)


def test_sqlite_checkpoints_and_a_finished_thread_cannot_be_resumed(
    scripted_graph_text: str, registry: SpecialistRegistry, tmp_path: Path
) -> None:
    orc = Orchestrator(
        GraphSpec.from_text(scripted_graph_text, registry=registry),
        registry=registry,
        state_dir=tmp_path,
    )
    result = orc.run("I want a refund", thread_id="t1")
    assert (tmp_path / "checkpoints.sqlite").is_file()
    assert result.thread_id == "t1"
    # a finished thread gives back its stored result without running again
    again = orc.resume("t1")
    assert again.fields == result.fields and again.subtasks == result.subtasks
    assert orc.run("I want a refund", thread_id="t1").fields == result.fields
    # a thread holds one run: another request on it is refused
    with pytest.raises(ConfigurationError, match="holds a finished run for another request"):
        orc.run("something else", thread_id="t1")
    with pytest.raises(ConfigurationError, match="has no run to resume"):
        orc.resume("never-used")


def test_metadata_reaches_conditions(registry: SpecialistRegistry) -> None:
    text = """\
name: meta
specialists:
  sc: {uses: scripted}
nodes:
  work:
    kind: specialists
    subtasks: [{id: s, specialist: sc}]
  vip:
    kind: set
    set: {tier: "{{ request.metadata.tier }}"}
edges:
  - {from: START, to: work}
  - {from: work, to: vip, when: "request.metadata.tier == 'gold'"}
  - {from: work, to: END}
"""
    orc = _orc(text, registry)
    assert orc.run("hi", metadata={"tier": "gold"}).value("tier") == "gold"
    assert "tier" not in orc.run("hi", metadata={"tier": "basic"}).fields
