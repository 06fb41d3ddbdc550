"""Judging one specialist result against its contract: the verdict that verify and the
escalation rungs rely on."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from orchestrator._contracts import SpecialistResult, ToolInfo, Verdict
from orchestrator.graph.spec import GraphSpec

__all__ = ["OwnChecks", "ResultChecker"]

#: A specialist's own output checks (``Specialist.verify_json``): (input, output) -> problems.
OwnChecks = Callable[[dict[str, Any], dict[str, Any]], list[str]]


class ResultChecker:
    """The checks of one graph's results: call succeeded, schema, label set, the specialist's
    own checks and the confidence threshold."""

    def __init__(
        self,
        spec: GraphSpec,
        tools: Mapping[str, ToolInfo],
        own_checks: Mapping[str, OwnChecks],
        output_models: Mapping[str, type[BaseModel]],
    ) -> None:
        self.spec = spec
        self.tools = tools
        self.own_checks = own_checks
        self.output_models = output_models
        self._validators: dict[str, Draft202012Validator] = {}

    def verdict(self, result: SpecialistResult) -> Verdict:
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
        own_checks = self.own_checks.get(result.specialist)
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

    def _schema_errors(self, binding: str, tool: ToolInfo, output: dict[str, Any]) -> list[str]:
        # A registered output model that is exactly the published schema is checked by
        # pydantic (strict, JSON rules): many times faster on large outputs, same contract.
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
