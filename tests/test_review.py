"""A person's review as documented, and a run that tells the truth about itself: events for
every step, each field's real source, timings that add up, and a finished thread shown
without starting anything."""

from __future__ import annotations

import asyncio
import io
import shlex
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from orchestrator import GraphSpec, Orchestrator
from orchestrator.cli.main import main
from orchestrator.cli.run import render_result
from orchestrator.specialists import SpecialistRegistry

HUMAN = """\
version: 1
name: review
frontier: {model: claude-sonnet-5}
escalation: [{kind: human, note: check the label}]
specialists:
  first:
    uses: scripted
    min_confidence: 0.6
    options:
      answers: {unsure: {label: other, confidence: 0.3}}
      default: {label: refund, confidence: 0.9}
      labels: [refund, other]
  second:
    uses: scripted
    options: {default: {label: refund, confidence: 0.9}, delay_s: 0.1}
nodes:
  work:
    kind: specialists
    subtasks: [{id: a, specialist: first}, {id: b, specialist: second}]
  reply:
    kind: compose
    instructions: Write a reply.
edges:
  - {from: START, to: work}
  - {from: work, to: reply}
"""


def _orc(registry: SpecialistRegistry, tmp_path: Path, **kwargs: Any) -> Orchestrator:
    spec = GraphSpec.from_text(HUMAN, registry=registry)
    return Orchestrator(spec, registry=registry, state_dir=tmp_path, frontier=False, **kwargs)


def test_an_answer_may_give_only_the_label(registry: SpecialistRegistry, tmp_path: Path) -> None:
    orc = _orc(registry, tmp_path)
    paused = orc.run("I am unsure", thread_id="t1")
    assert paused.status == "awaiting_human"
    done = orc.resume("t1", review={"a": {"action": "answer", "output": {"label": "refund"}}})
    field = done.fields["a.label"]
    assert field.value == "refund" and field.provenance.source == "human"
    (report,) = [s for s in done.subtasks if s.id == "a"]
    # The rest of the output comes from the specialist's own answer.
    assert report.output == {"label": "refund", "text": "I am unsure"}


def test_events_name_every_step_and_the_ladder_outcome(
    registry: SpecialistRegistry, tmp_path: Path
) -> None:
    async def kinds() -> list[Any]:
        orc = _orc(registry, tmp_path)
        return [e async for e in orc.astream("I am unsure", thread_id="t2")]

    events = asyncio.run(kinds())
    (escalated,) = [e for e in events if e.kind == "escalated"]
    assert escalated.detail["subtask"] == "a"
    assert escalated.detail["outcome"] == "awaiting_human"
    assert escalated.detail["rungs"] == []

    async def resumed() -> list[Any]:
        orc = _orc(registry, tmp_path)
        review = {"*": {"action": "approve"}}
        return [e async for e in orc.astream(None, thread_id="t2", review=review)]

    after = asyncio.run(resumed())
    (decided,) = [e for e in after if e.kind == "escalated"]
    assert decided.detail["outcome"] == "resolved" and decided.detail["resolved_by"] == "human"
    assert decided.detail["rungs"][-1]["rung"] == "human"
    assert [e.node for e in after if e.kind == "composed"] == ["reply"]
    assert not [e for e in after if e.kind == "set"]


def test_the_parts_of_a_run_add_up_to_at_most_its_total(
    registry: SpecialistRegistry, tmp_path: Path
) -> None:
    orc = _orc(registry, tmp_path)
    result = orc.run("refund me", thread_id="t3")
    timings = result.timings_ms
    parts = sum(v for k, v in timings.items() if k not in ("total", "startup"))
    assert parts <= timings["total"]
    # Two calls ran side by side: their time counts once.
    slowest = max(s.latency_ms for s in result.subtasks)
    assert timings["call"] < sum(s.latency_ms for s in result.subtasks)
    assert timings["call"] >= slowest * 0.9
    shown = orc.run(thread_id="t3")  # read back from its checkpoint
    again = sum(v for k, v in shown.timings_ms.items() if k not in ("total", "startup"))
    assert again <= shown.timings_ms["total"]


def test_showing_a_finished_thread_starts_and_loads_nothing(
    registry: SpecialistRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _orc(registry, tmp_path).run("refund me", thread_id="t4")

    def refuse(*args: Any) -> Any:
        raise AssertionError("a finished thread opened the toolset")

    monkeypatch.setattr(Orchestrator, "_default_toolset", refuse)
    monkeypatch.setattr(Orchestrator, "__aenter__", refuse)
    shown = _orc(registry, tmp_path).run(thread_id="t4")
    assert shown.status == first.status and shown.value("a.label") == "refund"
    assert shown.fields == first.fields
    again = asyncio.run(_orc(registry, tmp_path).aresume("t4"))
    assert again.value("b.label") == "refund"


def test_the_table_shows_each_fields_real_source(
    registry: SpecialistRegistry, tmp_path: Path
) -> None:
    orc = _orc(registry, tmp_path)
    paused = orc.run("I am unsure", thread_id="t5")
    console = Console(file=io.StringIO(), width=200)
    render_result(paused, console, "graph.yaml")
    waiting = console.file.getvalue()  # type: ignore[attr-defined]
    assert "human: waiting for a person" in waiting and "no escalation ladder" not in waiting
    assert "orchestrator resume graph.yaml --thread t5 --approve" in waiting
    done = orc.resume("t5", review={"a": {"action": "answer", "output": {"label": "refund"}}})
    console = Console(file=io.StringIO(), width=200)
    render_result(done, console)
    table = console.file.getvalue()  # type: ignore[attr-defined]
    row = next(line for line in table.splitlines() if "a.label" in line)
    assert "human (first)" in row and "rule" not in row


CLI_GRAPH = """\
version: 1
name: review_cli
escalation: [{kind: human}]
specialists:
  intent: {min_confidence: 0.99}
nodes:
  triage:
    kind: specialists
    subtasks: [{id: intent, specialist: intent}]
edges:
  - {from: START, to: triage}
"""


@pytest.mark.slow
def test_the_printed_review_command_works_and_answers_take_key_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    graph = tmp_path / "review.yaml"
    graph.write_text(CLI_GRAPH)
    assert main(["run", str(graph), "--input", "I want to change something", "--thread", "c1"]) == 0
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if x.startswith("waiting for a person on"))
    command = line.split(": ", 1)[1].split(" (or ")[0]
    assert command.startswith("orchestrator resume ") and "--thread c1" in command
    assert main(shlex.split(command)[1:]) == 0
    assert "status ok" in capsys.readouterr().out
    assert main(["run", str(graph), "--input", "I want to change something", "--thread", "c2"]) == 0
    capsys.readouterr()
    resume = ["resume", str(graph), "--thread", "c2", "--answer", "label=refund", "--json"]
    assert main(resume) == 0
    out = capsys.readouterr().out
    assert '"source": "human"' in out and '"value": "refund"' in out
    assert main(["resume", str(graph), "--thread", "c2", "--answer", "label"]) == 3
    assert "give KEY=VALUE" in capsys.readouterr().err
