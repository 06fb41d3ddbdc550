"""The graph's nodes: plan, dispatch, call, verify, merge, set, route.

Each is a small function of the run state (or, for ``call``, of one subtask) so that it can
be tested on its own. :class:`NodeContext` carries what they need at run time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import structlog
from jsonschema import Draft202012Validator
from langgraph.types import Send, interrupt
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from orchestrator._contracts import (
    Escalation,
    EscalationStep,
    FieldProvenance,
    ModelCall,
    Plan,
    ResultField,
    RunRequest,
    SpecialistResult,
    Subtask,
    ToolInfo,
    ToolOutput,
    Verdict,
)
from orchestrator._errors import RunError, ToolTimeoutError, ToolTransportError
from orchestrator._escalation import Escalator
from orchestrator._state import CallPayload, RunState
from orchestrator.agents._frontier import FrontierError
from orchestrator.agents._planner import Planner, PlanStep
from orchestrator.agents.answerer import FrontierAnswerer
from orchestrator.agents.composer import Composer
from orchestrator.graph.expressions import Expression, Template, parse_expression, parse_template
from orchestrator.graph.spec import (
    END,
    ComposeNodeSpec,
    GraphSpec,
    SetNodeSpec,
    SpecialistsNodeSpec,
)
from orchestrator.tools._toolset import Toolset

__all__ = [
    "NodeContext",
    "call_name",
    "escalate_name",
    "merge_name",
    "review_name",
    "verify_name",
]

log = structlog.get_logger("orchestrator.nodes")


def call_name(node: str) -> str:
    return f"{node}.call"


def verify_name(node: str) -> str:
    return f"{node}.verify"


def merge_name(node: str) -> str:
    return f"{node}.merge"


def escalate_name(node: str) -> str:
    return f"{node}.escalate"


def review_name(node: str) -> str:
    return f"{node}.review"


@lru_cache(maxsize=4096)
def _template(source: str) -> Template:
    return parse_template(source)


@lru_cache(maxsize=1024)
def _condition(source: str) -> Expression:
    return parse_expression(source)


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Fill {{ expressions }} in strings, recursively through lists and mappings."""
    if isinstance(value, str):
        return _template(value).render(context) if "{{" in value else value
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    return value


def expression_context(state: RunState) -> dict[str, Any]:
    """What conditions and templates can read: request, fields, and each subtask's result."""
    request = state.get("request", {})
    context: dict[str, Any] = {
        "request": {"text": request.get("text"), "metadata": request.get("metadata", {})},
        "fields": {k: v["value"] for k, v in state.get("fields", {}).items()},
    }
    verdicts = state.get("verdicts", {})
    for sid, result in state.get("results", {}).items():
        output = result.get("output") or {}
        verdict = verdicts.get(sid)
        context[sid] = {
            **output,
            "output": output,
            "confidence": result.get("confidence"),
            "model": result.get("model"),
            "ok": result.get("ok"),
            "error": result.get("error"),
            "verified": bool(verdict and verdict["passed"]),
        }
    return context


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its local ``#/$defs/...`` references replaced by their targets.

    jsonschema resolves a ``$ref`` on every validation, which doubled the cost of checking
    a result; pydantic's schemas (a list of ``LabelScore``) use them. A recursive or
    non-local reference keeps the schema as it is.
    """
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.removeprefix("#/$defs/")
                if name == ref or name not in defs or name in seen or len(node) > 1:
                    raise _KeepRefs
                return walk(defs[name], (*seen, name))
            return {k: walk(v, seen) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v, seen) for v in node]
        return node

    try:
        inlined: dict[str, Any] = walk(schema, ())
    except _KeepRefs:
        return schema
    return inlined


class _KeepRefs(Exception):
    """A reference that cannot be inlined: validate against the schema as written."""


def _timing(node: str, kind: str, start: float) -> dict[str, Any]:
    return {"node": node, "kind": kind, "ms": (time.perf_counter() - start) * 1000}


@dataclass
class NodeContext:
    """Everything the nodes need while a run is going on."""

    spec: GraphSpec
    toolset: Toolset
    planner: Planner
    tools: Mapping[str, ToolInfo]
    #: planner for nodes with `planner: frontier` (None: the frontier is not configured)
    frontier_planner: Planner | None = None
    answerer: FrontierAnswerer | None = None
    composer: Composer | None = None
    #: binding key -> the specialist's own output checks (``Specialist.verify_json``)
    verifiers: Mapping[str, Callable[[dict[str, Any], dict[str, Any]], list[str]]] = field(
        default_factory=dict
    )
    #: binding key -> the registered output model, where the tool publishes exactly its
    #: schema: checked by pydantic (strict, JSON rules) instead of jsonschema, many times
    #: faster on large outputs and the same contract.
    output_models: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    _validators: dict[str, Draft202012Validator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read on every routing decision: computed once per graph, not per run.
        self._subtask_ids = frozenset(self.spec.subtasks())

    # -- plan ------------------------------------------------------------------------------
    async def plan(self, node: str, state: RunState) -> dict[str, Any]:
        start = time.perf_counter()
        spec_node = self.spec.nodes[node]
        assert isinstance(spec_node, SpecialistsNodeSpec)
        step = PlanStep(
            node=node,
            declared=spec_node.subtasks,
            tools=self.tools,
            allowed=tuple(spec_node.tools or ()),
        )
        planner = self.planner
        if spec_node.planner == "frontier" and self.frontier_planner is not None:
            planner = self.frontier_planner
        plan = await planner.plan(RunRequest.model_validate(state["request"]), step)
        if plan.error:
            log.warning("no plan", node=node, error=plan.error)
        log.debug(
            "planned", node=node, subtasks=[s.id for s in plan.subtasks], skipped=plan.skipped
        )
        return {
            "plans": {node: plan.model_dump(mode="json")},
            "path": [node],
            "timings": [_timing(node, "plan", start)],
        }

    # -- dispatch (a router: it only reads the state) -----------------------------------------
    def dispatch(self, node: str, state: RunState) -> list[Send] | str:
        """Send every subtask whose dependencies succeeded; go to merge when none is left.

        A subtask whose dependency failed is never sent; the result reports it as skipped.
        """
        plan = Plan.model_validate(state["plans"][node])
        results = state.get("results", {})
        context: dict[str, Any] | None = None
        sends: list[Send] = []
        for sub in plan.subtasks:
            if sub.id in results or not all(results.get(d, {}).get("ok") for d in sub.depends_on):
                continue
            context = context or expression_context(state)
            rendered = sub.model_copy(update={"input": render(sub.input, context)})
            payload: CallPayload = {"subtask": rendered.model_dump(mode="json")}
            sends.append(Send(call_name(node), payload))
        return sends or merge_name(node)

    # -- call ------------------------------------------------------------------------------
    async def call(self, payload: CallPayload) -> dict[str, Any]:
        sub = Subtask.model_validate(payload["subtask"])
        result = await self.call_subtask(sub)
        return {"results": {sub.id: result.model_dump(mode="json")}}

    async def _attempt(self, sub: Subtask, timeout: float) -> ToolOutput:
        # asyncio.timeout rather than wait_for: no extra task per call.
        try:
            async with asyncio.timeout(timeout):
                return await self.toolset.call_tool(sub.specialist, sub.input)
        except TimeoutError:
            raise ToolTimeoutError(
                f"{sub.specialist!r} did not answer within {timeout:g} s"
            ) from None

    async def call_subtask(self, sub: Subtask) -> SpecialistResult:
        policies = self.spec.policies
        timeout = (
            self.spec.timeout_s(sub.specialist)
            if sub.specialist in self.spec.specialists
            else policies.timeout_s
        )
        attempts = 0
        start = time.perf_counter()
        try:
            try:
                attempts += 1
                out = await self._attempt(sub, timeout)
            except (ToolTransportError, ToolTimeoutError):
                if policies.retries == 0:
                    raise
                # Only a failed call pays for tenacity: the first attempt above is the fast
                # path every call takes.
                await asyncio.sleep(policies.retry_backoff_s)
                async for retry in AsyncRetrying(
                    stop=stop_after_attempt(policies.retries),
                    wait=wait_exponential(multiplier=policies.retry_backoff_s * 2, max=30),
                    retry=retry_if_exception_type((ToolTransportError, ToolTimeoutError)),
                    reraise=True,
                ):
                    with retry:
                        attempts += 1
                        out = await self._attempt(sub, timeout)
        except Exception as exc:  # a failing specialist is recorded, never fatal to the run
            kind = type(exc).__name__
            if not isinstance(exc, RunError):
                log.warning("specialist raised", subtask=sub.id, error=repr(exc), exc_info=True)
            return SpecialistResult(
                subtask_id=sub.id,
                specialist=sub.specialist,
                ok=False,
                input=sub.input,
                latency_ms=(time.perf_counter() - start) * 1000,
                attempts=attempts,
                error=str(exc) or kind,
                error_kind=kind,
            )
        return SpecialistResult(
            subtask_id=sub.id,
            specialist=sub.specialist,
            ok=True,
            input=sub.input,
            output=out.output,
            confidence=out.confidence,
            model=out.model,
            latency_ms=(time.perf_counter() - start) * 1000,
            compute_ms=out.compute_ms,
            tokens=out.tokens,
            attempts=attempts,
        )

    # -- verify ----------------------------------------------------------------------------
    def verify(self, node: str, state: RunState) -> dict[str, Any]:
        start = time.perf_counter()
        plan = Plan.model_validate(state["plans"][node])
        done = state.get("verdicts", {})
        verdicts: dict[str, Any] = {}
        for sub in plan.subtasks:
            raw = state.get("results", {}).get(sub.id)
            if raw is None or sub.id in done:
                continue
            verdict = self.verify_result(SpecialistResult.model_validate(raw))
            verdicts[sub.id] = verdict.model_dump(mode="json")
        return {"verdicts": verdicts, "timings": [_timing(node, "verify", start)]}

    # -- escalate --------------------------------------------------------------------------
    async def escalate(self, node: str, state: RunState) -> dict[str, Any]:
        """Walk the ladder for every result of this node that failed verification."""
        start = time.perf_counter()
        plan = Plan.model_validate(state["plans"][node])
        seen = state.get("escalations", {})
        todo = [
            sub
            for sub in plan.subtasks
            if sub.id not in seen
            and sub.id in state.get("verdicts", {})
            and not state["verdicts"][sub.id]["passed"]
        ]
        if not todo:
            return {}
        escalator = Escalator(
            self.spec, dict(self.tools), self.call_subtask, self.verify_result, self.answerer
        )
        outcomes = await asyncio.gather(
            *(
                escalator.escalate(
                    sub.model_copy(
                        update={"input": state["results"][sub.id]["input"] or sub.input}
                    ),
                    SpecialistResult.model_validate(state["results"][sub.id]),
                    Verdict.model_validate(state["verdicts"][sub.id]),
                )
                for sub in todo
            )
        )
        update: dict[str, Any] = {
            "escalations": {},
            "results": {},
            "verdicts": {},
            "timings": [_timing(node, "escalate", start)],
        }
        for record, result, verdict in outcomes:
            update["escalations"][record.subtask_id] = record.model_dump(mode="json")
            if result is not None:
                update["results"][record.subtask_id] = result.model_dump(mode="json")
            if verdict is not None:
                update["verdicts"][record.subtask_id] = verdict.model_dump(mode="json")
        return update

    def after_escalate(self, node: str, state: RunState) -> list[Send] | str:
        if self.awaiting_review(node, state):
            return review_name(node)
        return self.dispatch(node, state)

    def awaiting_review(self, node: str, state: RunState) -> list[dict[str, Any]]:
        ids = {s["id"] for s in state["plans"][node]["subtasks"]}
        return [
            e
            for sid, e in state.get("escalations", {}).items()
            if sid in ids and e["outcome"] == "awaiting_human"
        ]

    # -- review (a person, through a LangGraph interrupt) ----------------------------------
    def review(self, node: str, state: RunState) -> dict[str, Any]:
        pending = self.awaiting_review(node, state)
        items = []
        for record in pending:
            sid = record["subtask_id"]
            result = state["results"][sid]
            tool = self.tools.get(result["specialist"])
            rung = next(
                (r for r in self.spec.ladder(result["specialist"]) if r.kind == "human"), None
            )
            items.append(
                {
                    "subtask_id": sid,
                    "specialist": result["specialist"],
                    "input": result["input"],
                    "output": result["output"],
                    "confidence": result["confidence"],
                    "reason": record["reason"],
                    "note": getattr(rung, "note", ""),
                    "output_schema": tool.output_schema if tool else {},
                    "labels": list(tool.labels) if tool and tool.labels else None,
                }
            )
        # The run stops here until `resume` supplies {subtask_id: decision}; see Orchestrator.
        decisions = interrupt({"node": node, "pending": items})
        update: dict[str, Any] = {"escalations": {}, "results": {}, "verdicts": {}}
        for record in pending:
            sid = record["subtask_id"]
            decision = decisions.get(sid, {"action": "reject"})
            result = SpecialistResult.model_validate(state["results"][sid])
            step = EscalationStep(
                rung="human", passed=decision["action"] != "reject", detail=decision["action"]
            )
            escalation = Escalation.model_validate(record).model_copy(
                update={
                    "steps": (*Escalation.model_validate(record).steps, step),
                    "outcome": "unresolved" if decision["action"] == "reject" else "resolved",
                    "resolved_by": None if decision["action"] == "reject" else "human",
                }
            )
            update["escalations"][sid] = escalation.model_dump(mode="json")
            if decision["action"] == "reject":
                continue
            if decision["action"] == "answer":
                result = result.model_copy(
                    update={
                        "output": decision["output"],
                        "ok": True,
                        "source": "human",
                        "model": "human",
                        "confidence": 1.0,
                        "error": None,
                    }
                )
            else:  # approve: the specialist's own answer, vouched for by a person
                result = result.model_copy(update={"source": "human"})
            update["results"][sid] = result.model_dump(mode="json")
            update["verdicts"][sid] = Verdict(
                subtask_id=sid,
                passed=True,
                checks={"human": True},
                reasons=(f"human {decision['action']}",),
            ).model_dump(mode="json")
        return update

    def verify_result(self, result: SpecialistResult) -> Verdict:
        checks: dict[str, bool] = {"call_succeeded": result.ok}
        reasons: list[str] = []
        if not result.ok or result.output is None:
            reasons.append(f"call failed: {result.error}")
            return Verdict(
                subtask_id=result.subtask_id, passed=False, checks=checks, reasons=tuple(reasons)
            )
        tool = self.tools.get(result.specialist)
        if tool is not None:
            errors = self._schema_errors(result.specialist, tool, result.output)
            checks["schema"] = not errors
            reasons.extend(f"output does not match its schema: {m}" for m in errors[:3])
            if tool.labels is not None and "label" in result.output:
                in_set = result.output["label"] in tool.labels
                checks["label_in_set"] = in_set
                if not in_set:
                    reasons.append(f"label {result.output['label']!r} is not in the label set")
        own_checks = self.verifiers.get(result.specialist)
        if own_checks is not None and checks.get("schema", True):
            problems = own_checks(result.input, result.output)
            checks["specialist_checks"] = not problems
            reasons.extend(problems[:5])
            if len(problems) > 5:
                reasons.append(f"... and {len(problems) - 5} more problem(s)")
        threshold = self.threshold(result.specialist)
        if result.confidence is None:
            # Third-party tools report no confidence: accepted only where the graph says so.
            checks["confidence"] = threshold == 0
            if threshold > 0:
                reasons.append(
                    "the tool reports no confidence; set `min_confidence: 0` on the specialist "
                    "to accept its answers"
                )
        else:
            checks["confidence"] = result.confidence >= threshold
            if not checks["confidence"]:
                reasons.append(f"confidence {result.confidence:.2f} is below {threshold:.2f}")
        return Verdict(
            subtask_id=result.subtask_id,
            passed=all(checks.values()),
            checks=checks,
            reasons=tuple(reasons),
        )

    def _schema_errors(self, binding: str, tool: ToolInfo, output: dict[str, Any]) -> list[str]:
        model = self.output_models.get(binding)
        if model is not None:
            try:
                model.model_validate_json(json.dumps(output), strict=True)
            except ValidationError as exc:
                return [
                    f"{'.'.join(str(part) for part in e['loc']) or 'output'}: {e['msg']}"
                    for e in exc.errors()
                ]
            return []
        validator = self._validators.get(tool.name)
        if validator is None:
            schema = _inline_refs(tool.output_schema)
            validator = self._validators[tool.name] = Draft202012Validator(schema)
        return [e.message for e in validator.iter_errors(output)]

    def threshold(self, binding: str) -> float:
        """The binding's own min_confidence, else the specialist's calibrated threshold, else
        the graph's policy."""
        own = (
            self.spec.specialists[binding].min_confidence
            if binding in self.spec.specialists
            else None
        )
        if own is not None:
            return own
        tool = self.tools.get(binding)
        if tool is not None and tool.threshold is not None:
            return tool.threshold
        return self.spec.policies.min_confidence

    # -- merge -----------------------------------------------------------------------------
    def merge(self, node: str, state: RunState) -> dict[str, Any]:
        start = time.perf_counter()
        plan = Plan.model_validate(state["plans"][node])
        escalated = set(state.get("escalations", {}))
        fields: dict[str, Any] = {}
        for sub in plan.subtasks:
            raw = state.get("results", {}).get(sub.id)
            if raw is None or not raw["ok"]:
                continue
            verdict = state.get("verdicts", {}).get(sub.id)
            tool = self.tools.get(sub.specialist)
            keys = (
                tool.summary_fields
                if tool and tool.summary_fields is not None
                else tuple(raw["output"])
            )
            provenance = FieldProvenance(
                source=raw.get("source", "specialist"),
                node=node,
                specialist=sub.specialist,
                model=raw["model"],
                confidence=raw["confidence"],
                verified=bool(verdict and verdict["passed"]),
                escalated=sub.id in escalated,
            )
            for key in keys:
                if key in raw["output"]:
                    fields[f"{sub.id}.{key}"] = ResultField(
                        value=raw["output"][key], provenance=provenance
                    ).model_dump(mode="json")
        update = {"fields": fields, "timings": [_timing(node, "merge", start)]}
        merged_state: RunState = {**state, "fields": {**state.get("fields", {}), **fields}}
        update["decisions"] = [self.decide(node, merged_state)]
        return update

    # -- set -------------------------------------------------------------------------------
    def set_fields(self, node: str, state: RunState) -> dict[str, Any]:
        start = time.perf_counter()
        spec_node = self.spec.nodes[node]
        assert isinstance(spec_node, SetNodeSpec)
        context = expression_context(state)
        entered = next((d for d in reversed(state.get("decisions", [])) if d["to"] == node), None)
        # A rule's field depends on the conditions that led here and on the results its own
        # templates read.
        subtasks = self._subtask_ids
        templated = {
            name
            for value in spec_node.set.values()
            if isinstance(value, str) and "{{" in value
            for expression in _template(value).expressions
            for name in expression.names
            if name in subtasks
        }
        reads = tuple(sorted({*(entered["reads"] if entered else ()), *templated}))
        results = state.get("results", {})
        verdicts = state.get("verdicts", {})
        read_results = [results[r] for r in reads if r in results]
        confidences = [r["confidence"] for r in read_results if r.get("confidence") is not None]
        provenance = FieldProvenance(
            source="rule",
            node=node,
            verified=all(
                results.get(r, {}).get("ok") and verdicts.get(r, {}).get("passed") for r in reads
            ),
            confidence=min(confidences) if confidences else None,
            derived_from=reads,
        )
        fields = {
            key: ResultField(value=render(value, context), provenance=provenance).model_dump(
                mode="json"
            )
            for key, value in spec_node.set.items()
        }
        merged_state: RunState = {**state, "fields": {**state.get("fields", {}), **fields}}
        return {
            "fields": fields,
            "path": [node],
            "timings": [_timing(node, "set", start)],
            "decisions": [self.decide(node, merged_state)],
        }

    # -- compose ---------------------------------------------------------------------------
    async def compose(self, node: str, state: RunState) -> dict[str, Any]:
        """The frontier model writes one field from verified fields only."""
        start = time.perf_counter()
        spec_node = self.spec.nodes[node]
        assert isinstance(spec_node, ComposeNodeSpec)
        verified = {
            name: f["value"]
            for name, f in state.get("fields", {}).items()
            if f["provenance"]["verified"]
            and (spec_node.fields is None or name in spec_node.fields)
        }
        calls: list[ModelCall] = []
        model: str | None = None
        if self.composer is None:
            key = self.spec.frontier.key_env() if self.spec.frontier else "an API key"
            value, note = None, f"not written: no frontier model configured ({key} is not set)"
        else:
            model = f"{self.composer.model.provider}:{self.composer.model.model}"
            try:
                value, calls = await self.composer.compose(spec_node.instructions, verified)
                note = ""
            except FrontierError as exc:
                value, note, calls = None, f"not written: {exc}", list(exc.calls)
        provenance = FieldProvenance(
            source="frontier",
            node=node,
            model=model,
            verified=False,
            derived_from=tuple(sorted(verified)),
        )
        fields = {
            spec_node.output: ResultField(value=value, provenance=provenance).model_dump(
                mode="json"
            )
        }
        merged_state: RunState = {**state, "fields": {**state.get("fields", {}), **fields}}
        return {
            "fields": fields,
            "path": [node],
            "notes": [note] if note else [],
            "model_calls": [c.model_dump(mode="json") for c in calls],
            "timings": [_timing(node, "compose", start)],
            "decisions": [self.decide(node, merged_state)],
        }

    # -- routing ---------------------------------------------------------------------------
    def decide(self, node: str, state: RunState) -> dict[str, Any]:
        """Pick the edge out of `node`: the first whose condition holds, else the default.

        ``reads`` lists the subtasks read by every condition evaluated on the way, since the
        default edge is taken *because* the conditions before it failed.
        """
        context = expression_context(state)
        subtasks = self._subtask_ids
        default = END
        reads: set[str] = set()
        for edge in self.spec.edges_from(node):
            if edge.when is None:
                default = edge.to
                continue
            condition = _condition(edge.when)
            reads.update(n for n in condition.names if n in subtasks)
            if condition.evaluate(context):
                return {"from": node, "to": edge.to, "when": edge.when, "reads": sorted(reads)}
        return {"from": node, "to": default, "when": None, "reads": sorted(reads)}

    def route(self, node: str, state: RunState) -> str:
        decision = next(d for d in reversed(state["decisions"]) if d["from"] == node)
        return str(decision["to"])
