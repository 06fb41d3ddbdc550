"""The loop in runs: subtasks are recorded in the trace store (with `record` and `redact`),
escalations answered by a scripted teacher become teacher labels, and a binding with
`learn: {every: N}` is distilled in the background, never inside a run; later runs use the
promoted version."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import GraphSpec, Orchestrator
from orchestrator._contracts import ModelCall
from orchestrator._learner import BackgroundLearner, LearningPlan, learning_plans
from orchestrator._traces import open_trace_store
from orchestrator.agents._frontier import FrontierModel
from orchestrator.graph.model import SpecialistBinding
from orchestrator.graph.spec import FrontierSpec
from orchestrator.specialists.artifacts import load_artifact
from orchestrator.specialists.versions import VersionStore
from tests.intents import (
    CITIES,
    TRIAGE,
    intent_rows,
    record_teacher_labels,
    train_intent_artifact,
)

BASE = slice(0, 1)
TRAFFIC = slice(1, None)


class ScriptedTeacher(FrontierModel):
    """A frontier model that answers each escalated request with its gold label."""

    provider = "scripted"

    def __init__(self, gold: dict[str, str]) -> None:
        super().__init__(FrontierSpec(model="claude-sonnet-5"))
        self.gold = gold
        self.asked = 0

    def _messages(self, question: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def _ask(self, *args: Any) -> Any:
        raise NotImplementedError

    def _correct(self, *args: Any) -> None:
        raise NotImplementedError

    async def structured(self, **kwargs: Any) -> tuple[dict[str, Any], list[ModelCall]]:
        self.asked += 1
        prompt = kwargs["prompt"]
        label = next(label for text, label in self.gold.items() if f'"{text}"' in prompt)
        call = ModelCall(
            role="escalation",
            provider=self.provider,
            model=self.model,
            input_tokens=420,
            output_tokens=30,
            latency_ms=1.0,
            subtask_id=kwargs.get("subtask_id"),
        )
        return {"label": label, "ranked": [{"label": label, "score": 1.0}]}, [call]


def _graph(store: Path, *, extra: str = "") -> GraphSpec:
    return GraphSpec.from_text(
        f"""\
name: learning
frontier: {{model: claude-sonnet-5}}
specialists:
  intent:
    options: {{artifact: demo, store: "{store}"}}
    # The base version is sure of most phrasings it never saw; asking for more confidence
    # than its own threshold sends the doubtful ones (about a third) to the teacher.
    min_confidence: 0.9999
    escalation: [{{kind: frontier}}]
{extra}
{TRIAGE}"""
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_intent_artifact(tmp_path_factory.mktemp("learning"), "demo", patterns=BASE)


@pytest.fixture
def store(trained: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(trained / "store", tmp_path / "store")
    return tmp_path / "store"


def _traffic() -> dict[str, str]:
    """Requests in the phrasings the base version never saw, every intent mixed in."""
    rows = intent_rows(CITIES["train"], TRAFFIC)
    random.Random(0).shuffle(rows)
    return {row["text"]: row["label"] for row in rows}


async def _serve(orc: Orchestrator, texts: list[str], first: int = 0) -> list[Any]:
    """Run each text under a fixed thread id: a trace's id is its run's and its subtask's,
    and the distillation gate holds out teacher labels by that id, so fixed ids give the
    same held-out slice in every run."""
    return [await orc.arun(text, thread_id=f"live-{first + i}") for i, text in enumerate(texts)]


def test_runs_record_their_subtasks_and_teacher_labels(store: Path, tmp_path: Path) -> None:
    gold = _traffic()
    texts = list(gold)[:40]
    teacher = ScriptedTeacher(gold)
    spec = _graph(store, extra="    redact: [text]")
    orc = Orchestrator(spec, state_dir=tmp_path / "state", frontier=teacher)
    results = asyncio.run(_serve_open(orc, texts))
    assert all(r.status in ("ok", "partial") for r in results)
    traces = open_trace_store(tmp_path / "state")
    recorded = traces.traces("intent")
    assert len(recorded) == 40  # each finished run's traces are on disk
    taught = [t for t in recorded if t.taught]
    assert len(taught) == teacher.asked > 0
    first = taught[0]
    assert first.source == "frontier" and first.rung == "frontier"
    assert first.artifact == "demo" and first.answer is not None
    assert first.input == {"text": "***"}  # the binding redacts it
    assert first.final is not None and first.final["label"] in set(gold.values())
    assert first.verdict.startswith(("confidence", "label"))
    plain = [t for t in recorded if not t.taught]
    assert all(t.source == "specialist" and t.verdict == "passed" for t in plain)
    traces.close()


async def _serve_open(orc: Orchestrator, texts: list[str]) -> list[Any]:
    async with orc:
        return await _serve(orc, texts)


def test_a_binding_can_record_nothing(store: Path, tmp_path: Path) -> None:
    gold = _traffic()
    spec = _graph(store, extra="    record: false")
    orc = Orchestrator(spec, state_dir=tmp_path / "state", frontier=ScriptedTeacher(gold))
    asyncio.run(_serve_open(orc, list(gold)[:5]))
    traces = open_trace_store(tmp_path / "state")
    assert traces.count("intent") == 0
    traces.close()


def test_learn_needs_a_named_artifact_and_recording() -> None:
    from orchestrator import GraphFileError

    with pytest.raises(GraphFileError, match="`learn` distils a trained artifact"):
        GraphSpec.from_text(
            "name: x\nspecialists:\n  intent: {learn: {every: 5}}\n"
            "nodes:\n  a: {kind: specialists, subtasks: [{id: i, specialist: intent}]}\n"
            "edges: [{from: START, to: a}, {from: a, to: END}]\n"
        )
    with pytest.raises(GraphFileError, match="`learn` needs the traces"):
        GraphSpec.from_text(
            "name: x\nspecialists:\n  intent: {learn: {every: 5}, record: false, "
            "options: {artifact: demo}}\n"
            "nodes:\n  a: {kind: specialists, subtasks: [{id: i, specialist: intent}]}\n"
            "edges: [{from: START, to: a}, {from: a, to: END}]\n"
        )


def _gated_distill(gate: Path) -> list[str]:
    """A distillation command that waits for `gate` to exist before distilling (as a slow
    distillation would), so the test can hold it while runs go on."""
    script = (
        "import pathlib, sys, time\n"
        f"gate = pathlib.Path({str(gate)!r})\n"
        "while not gate.exists():\n"
        "    time.sleep(0.05)\n"
        "from orchestrator.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return [sys.executable, "-c", script]


def _until(check: Callable[[], bool], timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_the_background_learner_never_blocks_a_run_and_later_runs_use_its_version(
    store: Path, tmp_path: Path
) -> None:
    gold = _traffic()
    texts = list(gold)
    state = tmp_path / "state"
    # Earlier runs left teacher labels for the first half of the traffic.
    earlier = [{"text": t, "label": gold[t]} for t in texts[:240]]
    record_teacher_labels(state, earlier)
    teacher = ScriptedTeacher(gold)
    gate = tmp_path / "go"
    spec = _graph(store, extra="    learn: {every: 5}")
    orc = Orchestrator(spec, state_dir=state, frontier=teacher)

    async def scenario() -> dict[str, Any]:
        async with orc:
            assert orc._learner is not None
            # The distillation runs as a process that waits for the gate: the runs go on.
            orc._learner.command = _gated_distill(gate)
            served = await _serve(orc, texts[240:300], first=240)
            started = [e for e in orc.learning_events if e.kind == "started"]
            held = not orc._learner.wait(timeout=0)
            gate.touch()
            assert await asyncio.to_thread(orc._learner.wait, 300)
            after = await orc.arun(texts[300], thread_id="live-300")
            return {
                "served": served,
                "started": started,
                "held": held,
                "after": after,
                "events": orc.learning_events,
            }

    outcome = asyncio.run(scenario())
    assert len(outcome["started"]) == 1, "enough teacher labels start one distillation"
    # Every run finished while the distillation was held back.
    assert outcome["held"] and len(outcome["served"]) == 60
    kinds = [e.kind for e in outcome["events"]]
    assert "promoted" in kinds, outcome["events"]
    promoted = next(e for e in outcome["events"] if e.kind == "promoted")
    assert promoted.candidate == "demo@2"
    assert VersionStore(store).promoted("demo") == 2
    assert load_artifact("demo", store).ref == "demo@2"
    # The run after the promotion was answered by the new version.
    model = outcome["after"].fields["intent.label"].provenance.model
    assert "trained-head:demo@2/" in model


def test_one_distillation_per_artifact_at_a_time(tmp_path: Path) -> None:
    plan = LearningPlan("intent", "demo", tmp_path / "store", every=2)
    gate = tmp_path / "go"
    learner = BackgroundLearner([plan], state_dir=tmp_path, command=_gated_distill(gate))
    learner.taught("intent", 2)
    learner.taught("intent", 2)
    assert [e.kind for e in learner.events] == ["started", "skipped"]
    gate.touch()
    assert learner.wait(120)
    # No store, no artifact: the worker says so and the learner records the failure.
    assert learner.events[-1].kind == "failed"
    assert not (tmp_path / "store" / ".demo.distilling").exists()


def test_the_distillation_worker_reads_the_traces_where_they_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With PostgreSQL the worker gets the database in its environment (never on its command
    line, which any user of the machine can read); without it, a URL set around the
    orchestrator does not leak into the worker."""
    script = tmp_path / "show.py"
    script.write_text(
        "import json, os, sys\n"
        "print(json.dumps({'argv': sys.argv[1:], 'url': os.environ.get("
        "'ORCHESTRATOR_DATABASE_URL')}))\n"
    )
    monkeypatch.setenv("ORCHESTRATOR_DATABASE_URL", "postgresql://elsewhere/db")
    seen = []
    for url in ("postgresql://u:secret@127.0.0.1:5/traces", None):
        plan = LearningPlan("intent", "demo", tmp_path / "store", every=1)
        learner = BackgroundLearner(
            [plan], state_dir=tmp_path, command=[sys.executable, str(script)], database_url=url
        )
        learner.taught("intent", 1)
        assert learner.wait(60)
        report = next((tmp_path / "learning").glob("demo-*.json"))
        seen.append(json.loads(report.read_text()))
        report.unlink()
    assert seen[0]["url"] == "postgresql://u:secret@127.0.0.1:5/traces"
    assert "--self-labels" not in seen[0]["argv"]
    assert not any("secret" in arg for arg in seen[0]["argv"])
    assert seen[1]["url"] is None


def test_a_binding_that_self_trains_runs_the_worker_with_self_labels(tmp_path: Path) -> None:
    script = tmp_path / "show.py"
    script.write_text("import json, sys\nprint(json.dumps({'argv': sys.argv[1:]}))\n")
    spec = {"uses": "intent", "options": {"artifact": "demo"}}
    spec["learn"] = {"every": 1, "self_labels": True}
    (plan,) = learning_plans({"intent": SpecialistBinding.model_validate(spec)})
    assert plan.self_labels and plan.every == 1
    learner = BackgroundLearner([plan], state_dir=tmp_path, command=[sys.executable, str(script)])
    learner.taught("intent", 1)
    assert learner.wait(60)
    report = json.loads(next((tmp_path / "learning").glob("demo-*.json")).read_text())
    argv = report["argv"]
    assert argv[:2] == ["distill", "demo"] and "--self-labels" in argv
