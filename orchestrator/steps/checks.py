"""Judging one specialist result against its contract: the verdict that verify and the
escalation rungs rely on.

The contract is the whole output schema (JSON Schema Draft 2020-12, every keyword), the
label set, the specialist's own checks (a span found verbatim in its source, ...) and, for
an answer that claims a confidence, the acceptance threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import Draft202012Validator

from orchestrator._contracts import SpecialistResult, ToolInfo, Verdict
from orchestrator._schemas import schema_errors, validator_for
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
    ) -> None:
        self.spec = spec
        self.tools = tools
        self.own_checks = own_checks
        self._validators: dict[str, Draft202012Validator] = {}

    def verdict(self, result: SpecialistResult, *, threshold: float | None = None) -> Verdict:
        """The whole contract and the confidence: against `threshold` when given (a rung's
        own), else the binding's (:meth:`threshold`)."""
        checks, reasons = self._contract(result)
        if not checks["call_succeeded"]:
            return Verdict(
                subtask_id=result.subtask_id, passed=False, checks=checks, reasons=tuple(reasons)
            )
        if threshold is None:
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

    def contract_verdict(self, result: SpecialistResult) -> Verdict:
        """The contract alone, for an answer that claims no calibrated confidence (the
        frontier model's)."""
        checks, reasons = self._contract(result)
        return Verdict(
            subtask_id=result.subtask_id,
            passed=all(checks.values()),
            checks=checks,
            reasons=tuple(reasons),
        )

    def _contract(self, result: SpecialistResult) -> tuple[dict[str, bool], list[str]]:
        checks: dict[str, bool] = {"call_succeeded": result.ok and result.output is not None}
        reasons: list[str] = []
        if not result.ok or result.output is None:
            reasons.append(f"call failed: {result.error or 'no output'}")
            return checks, reasons
        tool = self.tools.get(result.specialist)
        if tool is not None:
            errors = self.schema_errors(tool, result.output)
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
        return checks, reasons

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

    def schema_errors(self, tool: ToolInfo, output: Any) -> list[str]:
        """Every way `output` breaks the tool's output schema (one validator per tool)."""
        validator = self._validators.get(tool.name)
        if validator is None:
            validator = self._validators[tool.name] = validator_for(tool.output_schema)
        return schema_errors(validator, output)
