"""The steps called directly on hand-built states, without compiling a graph."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from langgraph.types import Send

from orchestrator import Orchestrator
from orchestrator._contracts import (
    Plan,
    RunRequest,
    SpecialistResult,
    Subtask,
    ToolInfo,
    ToolOutput,
    Verdict,
)
from orchestrator._errors import SpecialistError, ToolTransportError
from orchestrator._state import RunState, RunView, merge_dicts
from orchestrator.agents._planner import (
    DeclaredSubtask,
    LocalPlanner,
    PlanStep,
    SentenceEncoder,
)
from orchestrator.graph.spec import GraphSpec, SpecialistsNodeSpec
from orchestrator.specialists import SpecialistRegistry
from orchestrator.specialists.testing import ScriptedSpecialist
from orchestrator.steps import StepContext
from orchestrator.steps.call import call, call_subtask
from orchestrator.steps.dispatch import dispatch
from orchestrator.steps.escalate import escalate
from orchestrator.steps.fields import set_fields
from orchestrator.steps.merge import merge
from orchestrator.steps.plan import plan as plan_step
from orchestrator.steps.review import after_escalate
from orchestrator.steps.route import decide, route
from orchestrator.steps.templates import expression_context, render
from orchestrator.steps.verify import verify
from orchestrator.tools._toolset import InProcessToolset, Toolset

# `second` overrides min_confidence and timeout_s; `third` accepts answers without confidence.
GRAPH = """\
version: 1
name: nodes
specialists:
  first:
    uses: scripted
    options:
      answers:
        refund: {label: refund, confidence: 0.95}
      labels: [refund, other]
  second:
    uses: scripted
    min_confidence: 0.7
    timeout_s: 0.1
  third:
    uses: scripted
    min_confidence: 0
policies:
  retries: 2
  retry_backoff_s: 0
  min_confidence: 0.5
nodes:
  work:
    kind: specialists
    subtasks:
      - {id: a, specialist: first}
      - id: b
        specialist: second
        depends_on: [a]
        input: {text: "previous said {{ a.label }}"}
      - {id: c, specialist: third}
  vip_route:
    kind: set
    set: {queue: vip}
  refund_route:
    kind: set
    set:
      queue: refunds
      score: "{{ a.confidence }}"
      summary: "a={{ a.label }} b={{ b.label }}"
      tags: ["{{ a.label }}", fixed]
      count: 3
  urgent_route:
    kind: set
    set: {queue: urgent}
  other_route:
    kind: set
    set: {queue: general}
edges:
  - {from: START, to: work}
  - {from: work, to: vip_route, when: "request.metadata.vip"}
  - {from: work, to: refund_route, when: "a.label == 'refund'"}
  - {from: work, to: urgent_route, when: "b.label == 'urgent' or fields['c.label'] == 'urgent'"}
  - {from: work, to: other_route}
"""


class FakeToolset:
    """A Toolset whose outcomes are scripted per call: an output, or an exception to raise."""

    def __init__(
        self,
        infos: list[ToolInfo],
        outcomes: list[ToolOutput | BaseException],
        delays: Mapping[str, float] | None = None,
    ) -> None:
        self.infos = infos
        self.outcomes = outcomes
        self.delays = dict(delays or {})
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def list_tools(self) -> list[ToolInfo]:
        return list(self.infos)

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> ToolOutput:
        self.calls.append((name, dict(arguments)))
        await asyncio.sleep(self.delays.get(name, 0.0))
        outcome = self.outcomes[min(len(self.calls), len(self.outcomes)) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def warm_up(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def spec(registry: SpecialistRegistry) -> GraphSpec:
    return GraphSpec.from_text(GRAPH, registry=registry)


def _scripted_toolset(spec: GraphSpec, registry: SpecialistRegistry) -> InProcessToolset:
    return InProcessToolset(
        {
            key: registry.create("scripted", binding.options)
            for key, binding in spec.specialists.items()
        }
    )


def _context(spec: GraphSpec, toolset: Toolset) -> StepContext:
    tools = {t.name: t for t in asyncio.run(toolset.list_tools())}
    return StepContext(spec=spec, toolset=toolset, planner=LocalPlanner(), tools=tools)


@pytest.fixture
def ctx(spec: GraphSpec, registry: SpecialistRegistry) -> StepContext:
    return _context(spec, _scripted_toolset(spec, registry))


def _fake(
    spec: GraphSpec,
    registry: SpecialistRegistry,
    outcomes: list[ToolOutput | BaseException],
    delays: Mapping[str, float] | None = None,
) -> tuple[StepContext, FakeToolset]:
    infos = asyncio.run(_scripted_toolset(spec, registry).list_tools())
    fake = FakeToolset(infos, outcomes, delays)
    return _context(spec, fake), fake


def _out(label: str = "refund", confidence: float | None = 0.9) -> ToolOutput:
    return ToolOutput(
        output={"label": label, "text": "t"}, confidence=confidence, model="fake-1", compute_ms=1
    )


def _result(
    sid: str,
    specialist: str,
    label: str = "refund",
    confidence: float | None = 0.9,
    *,
    ok: bool = True,
    output: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if not ok:
        return SpecialistResult(
            subtask_id=sid,
            specialist=specialist,
            ok=False,
            latency_ms=1,
            error="boom",
            error_kind="SpecialistError",
        ).model_dump(mode="json")
    return SpecialistResult(
        subtask_id=sid,
        specialist=specialist,
        ok=True,
        output=output if output is not None else {"label": label, "text": f"{sid} text"},
        confidence=confidence,
        model="scripted-v1",
        latency_ms=1,
    ).model_dump(mode="json")


def _passed(*sids: str, passed: bool = True) -> dict[str, Any]:
    return {s: {"subtask_id": s, "passed": passed, "checks": {}, "reasons": []} for s in sids}


def _state(spec: GraphSpec, **parts: Any) -> RunState:
    node = spec.nodes["work"]
    assert isinstance(node, SpecialistsNodeSpec)
    plan = Plan(
        subtasks=tuple(
            Subtask(
                id=s.id,
                specialist=s.specialist,
                input=dict(s.input),
                depends_on=tuple(s.depends_on),
                step="work",
            )
            for s in node.subtasks
        ),
        planner="test",
    )
    state: dict[str, Any] = {
        "request": {"text": "I want a refund", "metadata": {}, "request_id": "r1"},
        "plans": {"work": plan.model_dump(mode="json")},
        **parts,
    }
    return state  # type: ignore[return-value]


def _sub(spec: GraphSpec, sid: str, text: str = "I want a refund") -> Subtask:
    _, declared = spec.subtasks()[sid]
    return Subtask(id=sid, specialist=declared.specialist, input={"text": text}, step="work")


# -- merge_dicts -----------------------------------------------------------------------------


def test_merge_dicts_later_writes_win_and_other_keys_are_kept() -> None:
    assert merge_dicts({"a": 1, "b": 2}, {"b": 3, "c": 4}) == {"a": 1, "b": 3, "c": 4}


def test_merge_dicts_with_an_empty_side_returns_the_other() -> None:
    right = {"x": 1}
    merged = merge_dicts(None, right)
    assert merged == {"x": 1} and merged is not right  # a copy, not the branch's own dict
    assert merge_dicts({}, None) == {}
    assert merge_dicts({"y": 2}, None) == {"y": 2}
    assert merge_dicts({"y": 2}, {}) == {"y": 2}


# -- render and expression_context -----------------------------------------------------------


def test_render_fills_templates_recursively_and_keeps_single_placeholder_types() -> None:
    context = {"a": {"label": "refund", "confidence": 0.5, "tags": ["x", "y"]}}
    value = {
        "text": "label={{ a.label }}",
        "score": "{{ a.confidence }}",
        "nested": [{"tags": "{{ a.tags }}"}, "plain", 7],
    }
    assert render(value, context) == {
        "text": "label=refund",
        "score": 0.5,
        "nested": [{"tags": ["x", "y"]}, "plain", 7],
    }


def test_render_joins_missing_values_as_empty_text() -> None:
    assert render("saw [{{ nobody.label }}]", {}) == "saw []"


def test_expression_context_exposes_output_keys_result_attributes_and_fields() -> None:
    state: RunState = {
        "request": {"text": "hi", "metadata": {"vip": True}},
        "results": {"a": _result("a", "first", "refund", 0.8), "b": _result("b", "second")},
        "verdicts": {**_passed("a"), **_passed("b", passed=False)},
        "fields": {"queue": {"value": "refunds", "provenance": {}}},
    }
    context = expression_context(RunView(state))
    assert context["request"] == {"text": "hi", "metadata": {"vip": True}}
    assert context["fields"] == {"queue": "refunds"}
    a = context["a"]
    assert (a["label"], a["confidence"], a["model"], a["ok"], a["verified"]) == (
        "refund",
        0.8,
        "scripted-v1",
        True,
        True,
    )
    assert a["output"] == {"label": "refund", "text": "a text"}
    assert context["b"]["verified"] is False


# -- plan ------------------------------------------------------------------------------------


def test_plan_stores_the_declared_subtasks_and_records_the_path(ctx: StepContext) -> None:
    update = asyncio.run(plan_step(ctx, "work", {"request": {"text": "I want a refund"}}))
    plan = Plan.model_validate(update["plans"]["work"])
    assert [s.id for s in plan.subtasks] == ["a", "b", "c"]
    assert {s.step for s in plan.subtasks} == {"work"}
    assert plan.subtasks[1].depends_on == ("a",)
    assert plan.planner == "local" and plan.skipped == {}
    assert update["path"] == ["work"]
    assert update["timings"][0]["kind"] == "plan"


class _AxisEncoder:
    """A SentenceEncoder that maps a text to an axis by its first word: equal words, cosine 1."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.seen.extend(texts)
        words = sorted({t.split()[0].lower() for t in texts})
        vectors = np.zeros((len(texts), len(words)), dtype=np.float32)
        for row, text in enumerate(texts):
            vectors[row, words.index(text.split()[0].lower())] = 1.0
        return vectors


def test_the_planner_sees_declared_subtasks_not_the_graph_files_types(spec: GraphSpec) -> None:
    class Recording:
        name = "recording"

        def __init__(self) -> None:
            self.steps: list[PlanStep] = []

        async def plan(self, request: RunRequest, step: PlanStep) -> Plan:
            self.steps.append(step)
            return Plan(subtasks=(), planner=self.name)

    recording = Recording()
    ctx = StepContext(spec=spec, toolset=FakeToolset([], []), planner=recording, tools={})
    asyncio.run(plan_step(ctx, "work", {"request": {"text": "hi"}}))
    declared = recording.steps[0].declared
    assert all(isinstance(d, DeclaredSubtask) for d in declared)
    assert declared[1] == DeclaredSubtask(
        id="b",
        specialist="second",
        input={"text": "previous said {{ a.label }}"},
        depends_on=("a",),
    )


def test_the_local_planner_compares_with_the_encoder_it_is_given() -> None:
    tools = {
        name: ToolInfo(
            name=name, description=f"{name} questions", input_schema={}, output_schema={}
        )
        for name in ("billing", "weather")
    }
    step = PlanStep(
        node="n",
        declared=[
            DeclaredSubtask(id=name, specialist=name, select="similarity", min_similarity=0.5)
            for name in tools
        ],
        tools=tools,
    )
    encoder = _AxisEncoder()
    assert isinstance(encoder, SentenceEncoder)
    made = asyncio.run(LocalPlanner(encoder).plan(RunRequest(text="billing is wrong"), step))
    assert [s.id for s in made.subtasks] == ["billing"]
    assert made.skipped == {"weather": "similarity 0.00 < min_similarity 0.50"}
    assert encoder.seen == ["billing is wrong", "billing questions", "weather questions"]


# -- dispatch --------------------------------------------------------------------------------


def test_dispatch_sends_only_subtasks_whose_dependencies_are_ok(
    ctx: StepContext, spec: GraphSpec
) -> None:
    sends = dispatch("work", _state(spec))
    assert isinstance(sends, list) and all(isinstance(s, Send) for s in sends)
    assert [s.node for s in sends] == ["work.call", "work.call"]
    assert [s.arg["subtask"]["id"] for s in sends] == ["a", "c"]  # b waits for a
    assert sends[0].arg["subtask"]["input"] == {"text": "I want a refund"}


def test_dispatch_renders_inputs_from_dependency_results(ctx: StepContext, spec: GraphSpec) -> None:
    results = {"a": _result("a", "first", "refund"), "c": _result("c", "third")}
    sends = dispatch("work", _state(spec, results=results))
    assert isinstance(sends, list) and len(sends) == 1
    assert sends[0].arg["subtask"]["id"] == "b"
    assert sends[0].arg["subtask"]["input"] == {"text": "previous said refund"}
    assert after_escalate("work", _state(spec, results=results)) == sends


def test_dispatch_returns_the_merge_node_when_nothing_is_ready(
    ctx: StepContext, spec: GraphSpec
) -> None:
    results = {
        sid: _result(sid, sp) for sid, sp in (("a", "first"), ("b", "second"), ("c", "third"))
    }
    assert dispatch("work", _state(spec, results=results)) == "work.merge"


def test_dispatch_never_sends_a_subtask_whose_dependency_failed(
    ctx: StepContext, spec: GraphSpec
) -> None:
    failed_a = {"a": _result("a", "first", ok=False)}
    sends = dispatch("work", _state(spec, results=failed_a))
    assert isinstance(sends, list)
    assert [s.arg["subtask"]["id"] for s in sends] == ["c"]
    done = {**failed_a, "c": _result("c", "third")}
    assert dispatch("work", _state(spec, results=done)) == "work.merge"


# -- call ------------------------------------------------------------------------------------


def test_call_records_the_result_under_the_subtask_id(ctx: StepContext, spec: GraphSpec) -> None:
    payload = {"subtask": _sub(spec, "a").model_dump(mode="json")}
    update = asyncio.run(call(ctx, payload))  # type: ignore[arg-type]
    result = update["results"]["a"]
    assert result["ok"] is True and result["attempts"] == 1
    assert result["input"] == {"text": "I want a refund"}  # the arguments sent are kept
    assert result["output"] == {"label": "refund", "text": "I want a refund"}
    assert (result["confidence"], result["model"], result["tokens"]) == (0.95, "scripted-v1", 4)


def test_call_retries_transport_errors_and_counts_attempts(
    spec: GraphSpec, registry: SpecialistRegistry
) -> None:
    boom = ToolTransportError("connection reset")
    ctx, fake = _fake(spec, registry, [boom, boom, _out("refund", 0.9)])
    result = asyncio.run(call_subtask(ctx, _sub(spec, "a")))
    assert result.ok and result.output == {"label": "refund", "text": "t"}
    assert result.attempts == 3 and len(fake.calls) == 3  # retries: 2 extra attempts


def test_call_gives_up_after_policies_retries_extra_attempts(
    spec: GraphSpec, registry: SpecialistRegistry
) -> None:
    ctx, fake = _fake(spec, registry, [ToolTransportError("connection reset")])
    result = asyncio.run(call_subtask(ctx, _sub(spec, "a")))
    assert not result.ok and result.output is None
    assert result.attempts == 3 and len(fake.calls) == 3
    assert (result.error_kind, result.error) == ("ToolTransportError", "connection reset")


def test_call_does_not_retry_a_specialist_error(
    spec: GraphSpec, registry: SpecialistRegistry
) -> None:
    ctx, fake = _fake(spec, registry, [SpecialistError("bad input"), _out()])
    result = asyncio.run(call_subtask(ctx, _sub(spec, "a")))
    assert not result.ok and result.attempts == 1 and len(fake.calls) == 1
    assert (result.error_kind, result.error) == ("SpecialistError", "bad input")


def test_call_turns_an_exception_of_the_specialists_code_into_a_failed_result(
    spec: GraphSpec, registry: SpecialistRegistry
) -> None:
    # A toolset reports what the specialist's own code raised as a SpecialistError.
    raised = SpecialistError.wrapping(ZeroDivisionError(), tool="first")
    ctx, fake = _fake(spec, registry, [raised])
    result = asyncio.run(call_subtask(ctx, _sub(spec, "a")))
    assert not result.ok and result.attempts == 1 and len(fake.calls) == 1
    assert result.error_kind == "ZeroDivisionError"
    assert result.error == "ZeroDivisionError"  # an empty message falls back to the kind
    assert (raised.subtask_id, raised.tool) == ("a", "first")


@pytest.mark.parametrize("bug", [TypeError("unsupported operand"), ZeroDivisionError()])
def test_call_lets_an_exception_of_the_framework_propagate(
    spec: GraphSpec, registry: SpecialistRegistry, bug: Exception
) -> None:
    # Raised by the toolset itself, not by a specialist: a bug, never a "partial" result.
    ctx, fake = _fake(spec, registry, [bug])
    with pytest.raises(type(bug)):
        asyncio.run(call_subtask(ctx, _sub(spec, "a")))
    assert len(fake.calls) == 1  # and never retried


def test_a_run_whose_toolset_has_a_bug_raises_instead_of_ending_partial(
    spec: GraphSpec, registry: SpecialistRegistry
) -> None:
    infos = asyncio.run(_scripted_toolset(spec, registry).list_tools())
    broken = FakeToolset(infos, [TypeError("unsupported operand")])
    orc = Orchestrator(
        spec, registry=registry, toolset=broken, checkpointer="memory", frontier=False
    )
    with pytest.raises(TypeError, match="unsupported operand"):
        orc.run("I want a refund")


def test_call_times_out_after_the_per_specialist_timeout(
    spec: GraphSpec, registry: SpecialistRegistry
) -> None:
    ctx, fake = _fake(spec, registry, [_out()], delays={"second": 10.0})
    start = time.perf_counter()
    result = asyncio.run(call_subtask(ctx, _sub(spec, "b")))
    elapsed = time.perf_counter() - start
    assert not result.ok and result.error_kind == "ToolTimeoutError"
    assert result.error == "'second' did not answer within 0.1 s"
    assert result.attempts == 3 and len(fake.calls) == 3  # timeouts are retried too
    assert 0.3 <= elapsed < 2.0  # three 0.1 s attempts, far below policies.timeout_s (30 s)


def test_call_uses_the_policy_timeout_when_the_specialist_sets_none(
    spec: GraphSpec, registry: SpecialistRegistry
) -> None:
    ctx, _ = _fake(spec, registry, [_out()], delays={"first": 0.2})
    result = asyncio.run(call_subtask(ctx, _sub(spec, "a")))
    assert result.ok and result.attempts == 1


def test_call_of_a_scripted_crash_through_the_in_process_toolset(
    spec: GraphSpec, registry: SpecialistRegistry
) -> None:
    crashing = registry.create("scripted", {"fail": "always", "fail_with": "crash"})
    assert isinstance(crashing, ScriptedSpecialist)
    ctx = _context(spec, InProcessToolset({"first": crashing}))
    result = asyncio.run(call_subtask(ctx, _sub(spec, "a")))
    assert (result.ok, result.error_kind, result.error) == (False, "RuntimeError", "scripted crash")
    assert crashing.calls == 1  # a crash is not retried


def test_the_in_process_toolset_reports_a_specialists_crash_as_its_failure(
    registry: SpecialistRegistry,
) -> None:
    crashing = registry.create("scripted", {"fail": "always", "fail_with": "crash"})
    with pytest.raises(SpecialistError) as info:
        asyncio.run(InProcessToolset({"first": crashing}).call_tool("first", {"text": "x"}))
    assert (info.value.tool, info.value.kind, str(info.value)) == (
        "first",
        "RuntimeError",
        "scripted crash",
    )
    assert isinstance(info.value.__cause__, RuntimeError)


# -- verify_result ---------------------------------------------------------------------------


def _verdict_of(ctx: StepContext, raw: dict[str, Any]) -> Verdict:
    return ctx.checker.verdict(SpecialistResult.model_validate(raw))


def test_verify_result_passes_a_good_result_with_every_check(ctx: StepContext) -> None:
    verdict = _verdict_of(ctx, _result("a", "first", "refund", 0.95))
    assert verdict.passed and verdict.reasons == ()
    assert verdict.checks == {
        "call_succeeded": True,
        "schema": True,
        "label_in_set": True,
        "confidence": True,
    }


def test_verify_result_fails_a_failed_call_without_other_checks(ctx: StepContext) -> None:
    verdict = _verdict_of(ctx, _result("a", "first", ok=False))
    assert not verdict.passed
    assert verdict.checks == {"call_succeeded": False}
    assert verdict.reasons == ("call failed: boom",)


def test_verify_result_names_a_missing_required_key(ctx: StepContext) -> None:
    verdict = _verdict_of(ctx, _result("a", "first", output={"label": "refund"}))
    assert not verdict.passed and verdict.checks["schema"] is False
    assert verdict.reasons == ("output does not match its schema: 'text' is a required property",)


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ({"label": "refund"}, "output does not match its schema: 'text' is a required property"),
        ({"label": "refund", "text": 3}, "output does not match its schema: text: 3 is not of "),
    ],
)
def test_the_output_schema_is_checked_strictly_with_jsonschema(
    ctx: StepContext, output: dict[str, Any], reason: str
) -> None:
    # The published schema is the contract, checked strictly (no "3" -> "3" coercion).
    verdict = _verdict_of(ctx, _result("a", "first", output=output))
    assert not verdict.passed and verdict.checks["schema"] is False
    assert verdict.reasons[0].startswith(reason)
    assert _verdict_of(ctx, _result("a", "first", "refund", 0.95)).passed


def test_verify_result_rejects_a_label_outside_the_label_set(ctx: StepContext) -> None:
    verdict = _verdict_of(ctx, _result("a", "first", "banana", 0.99))
    assert not verdict.passed and verdict.checks["label_in_set"] is False
    assert verdict.checks["schema"] is True
    assert verdict.reasons == ("label 'banana' is not in the label set",)
    # a specialist without a label set has no label check at all
    open_verdict = _verdict_of(ctx, _result("b", "second", "banana", 0.99))
    assert open_verdict.passed and "label_in_set" not in open_verdict.checks


@pytest.mark.parametrize(
    ("specialist", "confidence", "passed"),
    [
        ("first", 0.5, True),  # policies.min_confidence 0.5, inclusive
        ("first", 0.49, False),
        ("second", 0.69, False),  # the binding's own min_confidence 0.7 wins over the policy
        ("second", 0.7, True),
        ("ghost", 0.5, True),  # not a binding of the graph: policies.min_confidence
        ("ghost", 0.4, False),
    ],
)
def test_verify_result_compares_confidence_with_the_right_threshold(
    ctx: StepContext, specialist: str, confidence: float, passed: bool
) -> None:
    verdict = _verdict_of(ctx, _result("x", specialist, "other", confidence))
    assert verdict.passed is passed and verdict.checks["confidence"] is passed


def test_verify_result_reason_names_confidence_and_threshold(ctx: StepContext) -> None:
    verdict = _verdict_of(ctx, _result("b", "second", "x", 0.6))
    assert verdict.reasons == ("confidence 0.60 is below 0.70",)


def test_verify_result_accepts_no_confidence_only_where_min_confidence_is_zero(
    ctx: StepContext,
) -> None:
    assert _verdict_of(ctx, _result("c", "third", "x", None)).passed
    refused = _verdict_of(ctx, _result("a", "first", "refund", None))
    assert not refused.passed and refused.checks["confidence"] is False
    assert "set `min_confidence: 0`" in refused.reasons[0]


# -- verify and escalate ---------------------------------------------------------------------


def test_verify_judges_each_new_result_and_writes_only_verdicts(
    ctx: StepContext, spec: GraphSpec
) -> None:
    results = {
        "a": _result("a", "first", "refund", 0.95),
        "b": _result("b", "second", "x", 0.6),
        "c": _result("c", "third", "x", 0.2),
    }
    update = verify(ctx, "work", _state(spec, results=results))
    assert {k: v["passed"] for k, v in update["verdicts"].items()} == {
        "a": True,
        "b": False,
        "c": True,  # third accepts any confidence (min_confidence: 0)
    }
    assert update["verdicts"]["b"]["reasons"] == ["confidence 0.60 is below 0.70"]
    assert set(update) == {"verdicts", "timings"}  # escalating is the escalate node's job
    assert update["timings"][0]["kind"] == "verify"


def test_verify_skips_already_verified_and_missing_results(
    ctx: StepContext, spec: GraphSpec
) -> None:
    results = {"a": _result("a", "first", "banana"), "c": _result("c", "third")}
    update = verify(ctx, "work", _state(spec, results=results, verdicts=_passed("a")))
    assert list(update["verdicts"]) == ["c"]  # a judged before, b has no result yet


def test_escalate_records_only_failed_verdicts(ctx: StepContext, spec: GraphSpec) -> None:
    results = {"a": _result("a", "first", "refund", 0.95), "b": _result("b", "second", "x", 0.6)}
    verdicts = verify(ctx, "work", _state(spec, results=results))["verdicts"]
    update = asyncio.run(escalate(ctx, "work", _state(spec, results=results, verdicts=verdicts)))
    # No ladder is declared: the failed result is kept, marked unresolved.
    assert update["escalations"] == {
        "b": {
            "subtask_id": "b",
            "reason": "confidence 0.60 is below 0.70",
            "rungs_tried": [],
            "steps": [],
            "outcome": "unresolved",
            "resolved_by": None,
        }
    }
    assert update["results"] == {} and update["verdicts"] == {}


def test_escalate_skips_subtasks_already_escalated(ctx: StepContext, spec: GraphSpec) -> None:
    results = {"b": _result("b", "second", "x", 0.6)}
    state = _state(
        spec,
        results=results,
        verdicts=_passed("b", passed=False),
        escalations={"b": {"subtask_id": "b", "reason": "low", "outcome": "unresolved"}},
    )
    assert asyncio.run(escalate(ctx, "work", state)) == {}


def test_escalate_to_a_stronger_binding_replaces_the_result(
    registry: SpecialistRegistry,
) -> None:
    laddered = GraphSpec.from_text(
        GRAPH.replace(
            "    timeout_s: 0.1\n",
            "    timeout_s: 0.1\n    escalation: [{kind: specialist, specialist: first}]\n",
        ),
        registry=registry,
    )
    ctx = _context(laddered, _scripted_toolset(laddered, registry))
    failed = SpecialistResult.model_validate(_result("b", "second", "x", 0.6))
    results = {"b": failed.model_copy(update={"input": {"text": "a refund"}}).model_dump()}
    state = _state(laddered, results=results, verdicts=_passed("b", passed=False))
    update = asyncio.run(escalate(ctx, "work", state))
    record = update["escalations"]["b"]
    assert (record["outcome"], record["resolved_by"]) == ("resolved", "specialist:first")
    assert record["rungs_tried"] == ["specialist:first"]
    b = update["results"]["b"]
    assert (b["specialist"], b["output"]["label"], b["confidence"]) == ("second", "refund", 0.95)
    assert update["verdicts"]["b"]["passed"] is True


# -- merge -----------------------------------------------------------------------------------


def test_merge_writes_summary_fields_with_provenance(ctx: StepContext, spec: GraphSpec) -> None:
    results = {"a": _result("a", "first", "refund", 0.95), "b": _result("b", "second", "x", 0.6)}
    escalations = {"b": {"subtask_id": "b", "reason": "low", "outcome": "unresolved"}}
    state = _state(
        spec,
        results=results,
        verdicts={**_passed("a"), **_passed("b", passed=False)},
        escalations=escalations,
    )
    fields = merge(ctx, "work", state)["fields"]
    assert set(fields) == {"a.label", "b.label"}  # `text` is not a summary field
    assert fields["a.label"] == {
        "value": "refund",
        "provenance": {
            "source": "specialist",
            "node": "work",
            "specialist": "first",
            "model": "scripted-v1",
            "confidence": 0.95,
            "verified": True,
            "escalated": False,
            "derived_from": [],
        },
    }
    b = fields["b.label"]["provenance"]
    assert (b["specialist"], b["verified"], b["escalated"]) == ("second", False, True)


def test_merge_skips_failed_results(ctx: StepContext, spec: GraphSpec) -> None:
    results = {"a": _result("a", "first", ok=False), "c": _result("c", "third", "x")}
    fields = merge(ctx, "work", _state(spec, results=results, verdicts=_passed("c")))["fields"]
    assert list(fields) == ["c.label"]


def test_merge_writes_every_output_key_without_summary_fields(
    ctx: StepContext, spec: GraphSpec
) -> None:
    tools = {**ctx.tools, "first": ctx.tools["first"].model_copy(update={"summary_fields": None})}
    ctx = dataclasses.replace(ctx, tools=tools)
    results = {"a": _result("a", "first", "refund")}
    fields = merge(ctx, "work", _state(spec, results=results))["fields"]
    assert {k: v["value"] for k, v in fields.items()} == {"a.label": "refund", "a.text": "a text"}


def test_merge_records_a_decision_that_sees_the_merged_fields(
    ctx: StepContext, spec: GraphSpec
) -> None:
    # Only the merged field `c.label` can satisfy the urgent edge: `fields` starts empty.
    results = {"a": _result("a", "first", "other"), "c": _result("c", "third", "urgent")}
    update = merge(ctx, "work", _state(spec, results=results, verdicts=_passed("a", "c")))
    assert update["decisions"] == [
        {
            "from": "work",
            "to": "urgent_route",
            "when": "b.label == 'urgent' or fields['c.label'] == 'urgent'",
            "reads": ["a", "b"],
        }
    ]
    assert update["timings"][0]["kind"] == "merge"


# -- decide and route ------------------------------------------------------------------------


def _results(a: str, b: str) -> dict[str, Any]:
    return {"a": _result("a", "first", a), "b": _result("b", "second", b)}


def test_decide_takes_the_first_true_condition_in_file_order(
    ctx: StepContext, spec: GraphSpec
) -> None:
    decision = decide(ctx, "work", RunView(_state(spec, results=_results("refund", "urgent"))))
    # The urgent edge holds too, but the refund edge comes first in the file.
    assert decision == {
        "from": "work",
        "to": "refund_route",
        "when": "a.label == 'refund'",
        "reads": ["a"],
    }


def test_decide_reads_every_condition_evaluated_before_the_chosen_edge(
    ctx: StepContext, spec: GraphSpec
) -> None:
    decision = decide(ctx, "work", RunView(_state(spec, results=_results("other", "urgent"))))
    assert (decision["to"], decision["reads"]) == ("urgent_route", ["a", "b"])


def test_decide_falls_back_to_the_default_edge(ctx: StepContext, spec: GraphSpec) -> None:
    decision = decide(ctx, "work", RunView(_state(spec, results=_results("other", "calm"))))
    assert decision == {"from": "work", "to": "other_route", "when": None, "reads": ["a", "b"]}


def test_decide_reads_only_subtasks_not_request_or_fields(
    ctx: StepContext, spec: GraphSpec
) -> None:
    state = _state(spec, results=_results("refund", "calm"))
    state["request"]["metadata"] = {"vip": True}
    assert decide(ctx, "work", RunView(state)) == {
        "from": "work",
        "to": "vip_route",
        "when": "request.metadata.vip",
        "reads": [],
    }


def test_decide_ends_a_node_without_outgoing_edges(ctx: StepContext, spec: GraphSpec) -> None:
    decision = decide(ctx, "refund_route", RunView(_state(spec)))
    assert decision == {"from": "refund_route", "to": "END", "when": None, "reads": []}


def test_route_follows_the_latest_decision_of_the_node(ctx: StepContext) -> None:
    state: RunState = {
        "decisions": [
            {"from": "work", "to": "other_route", "when": None, "reads": []},
            {"from": "work", "to": "refund_route", "when": "x", "reads": []},
            {"from": "refund_route", "to": "END", "when": None, "reads": []},
        ]
    }
    assert route("work", state) == "refund_route"
    assert route("refund_route", state) == "END"


# -- set -------------------------------------------------------------------------------------


def _entered_refund(reads: list[str]) -> list[dict[str, Any]]:
    return [{"from": "work", "to": "refund_route", "when": "a.label == 'refund'", "reads": reads}]


def test_set_fields_renders_templates_and_keeps_types(ctx: StepContext, spec: GraphSpec) -> None:
    results = {"a": _result("a", "first", "refund", 0.95), "b": _result("b", "second", "x", 0.8)}
    state = _state(spec, results=results, decisions=_entered_refund(["a"]))
    fields = set_fields(ctx, "refund_route", state)["fields"]
    values = {k: v["value"] for k, v in fields.items()}
    assert values == {
        "queue": "refunds",
        "score": 0.95,
        "summary": "a=refund b=x",
        "tags": ["refund", "fixed"],
        "count": 3,
    }
    assert isinstance(values["score"], float)


def test_set_fields_derives_provenance_from_the_subtasks_the_branch_read(
    ctx: StepContext, spec: GraphSpec
) -> None:
    results = {"a": _result("a", "first", "refund", 0.95), "b": _result("b", "second", "x", 0.8)}
    verdicts = _passed("a", "b")
    state = _state(spec, results=results, verdicts=verdicts, decisions=_entered_refund(["a", "b"]))
    update = set_fields(ctx, "refund_route", state)
    assert update["fields"]["queue"]["provenance"] == {
        "source": "rule",
        "node": "refund_route",
        "specialist": None,
        "model": None,
        "confidence": 0.8,  # the lowest of the subtasks read
        "verified": True,
        "escalated": False,
        "derived_from": ["a", "b"],
    }
    assert update["path"] == ["refund_route"]
    assert update["decisions"] == [{"from": "refund_route", "to": "END", "when": None, "reads": []}]


def test_set_fields_is_unverified_when_one_read_subtask_is_unverified(
    ctx: StepContext, spec: GraphSpec
) -> None:
    results = {"a": _result("a", "first", "refund", 0.95), "b": _result("b", "second", "x", 0.6)}
    verdicts = {**_passed("a"), **_passed("b", passed=False)}
    state = _state(spec, results=results, verdicts=verdicts, decisions=_entered_refund(["a", "b"]))
    provenance = set_fields(ctx, "refund_route", state)["fields"]["queue"]["provenance"]
    assert provenance["verified"] is False and provenance["confidence"] == 0.6


def test_set_fields_without_an_entering_decision_reads_nothing(
    ctx: StepContext, spec: GraphSpec
) -> None:
    provenance = set_fields(ctx, "other_route", _state(spec))["fields"]["queue"]["provenance"]
    assert (provenance["derived_from"], provenance["confidence"], provenance["verified"]) == (
        [],
        None,
        True,
    )
