"""escalate: the ladder tried, in order, for each result that failed verification.

Rungs: ``vote`` (the same specialist on crops of the text it was unsure of), ``specialist``
(a second opinion from another binding), ``frontier`` (the frontier model answers the subtask
itself) and ``human`` (the run pauses until a person approves, corrects or rejects; see
:mod:`.review`). A vote, and a second opinion where one was fitted, is judged by a confidence
fitted on validation data for that specialist and its own threshold for the specialist's
target precision (:mod:`orchestrator.specialists.rung_confidence`), never by a formula over
raw scores. Every rung tried is recorded; a result no rung could fix is kept, marked
unverified.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, NamedTuple

from opentelemetry.trace import Span

from orchestrator._contracts import Escalation, EscalationStep, SpecialistResult, Subtask, Verdict
from orchestrator._state import RunState, RunView
from orchestrator._tracing import child_span, describe_result, describe_verdict
from orchestrator.graph.spec import FrontierRung, Rung, SpecialistRung, VoteRung
from orchestrator.specialists.rung_confidence import (
    Answer,
    RungConfidence,
    input_variants,
    second_opinion_features,
    vote_features,
)
from orchestrator.steps.call import call_subtask
from orchestrator.steps.context import StepContext, timing
from orchestrator.steps.record import record_escalations

__all__ = ["Escalator", "escalate"]


async def escalate(ctx: StepContext, node: str, state: RunState) -> dict[str, Any]:
    """Walk the ladder for every result of this node that failed verification."""
    start = time.perf_counter()
    run = RunView(state)
    todo: list[tuple[Subtask, SpecialistResult, Verdict]] = []
    for sub in run.plan(node).subtasks:
        verdict = run.verdict(sub.id)
        if verdict is None or verdict.passed or run.has_escalation(sub.id):
            continue
        failed = run.result(sub.id)
        assert failed is not None  # a verdict judges a result
        # The ladder works on the arguments that were sent (templates filled in).
        todo.append((sub.model_copy(update={"input": failed.input or sub.input}), failed, verdict))
    if not todo:
        return {}
    escalator = Escalator(ctx)
    outcomes = await asyncio.gather(*(escalator.escalate(*item) for item in todo))
    update: dict[str, Any] = {
        "escalations": {},
        "results": {},
        "verdicts": {},
        "timings": [timing(node, "escalate", start)],
    }
    record_escalations(
        ctx,
        run,
        (
            (failed, verdict, record, result)
            for (_, failed, verdict), (record, result, _) in zip(todo, outcomes, strict=True)
        ),
    )
    for record, result, verdict in outcomes:
        update["escalations"][record.subtask_id] = record.model_dump(mode="json")
        if result is not None:
            update["results"][record.subtask_id] = result.model_dump(mode="json")
        if verdict is not None:
            update["verdicts"][record.subtask_id] = verdict.model_dump(mode="json")
    return update


def _rung_name(rung: Rung) -> str:
    return f"specialist:{rung.specialist}" if isinstance(rung, SpecialistRung) else rung.kind


class Escalator:
    """Walks one graph's ladders; each rung's answer is judged like the first one was."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx

    async def escalate(
        self, sub: Subtask, failed: SpecialistResult, verdict: Verdict
    ) -> tuple[Escalation, SpecialistResult | None, Verdict | None]:
        """Walk the ladder; return the record and, when a rung passed, its result and verdict."""
        reason = "; ".join(verdict.reasons)
        steps: list[EscalationStep] = []
        for rung in self.ctx.spec.ladder(sub.specialist):
            name = _rung_name(rung)
            if rung.kind == "human":
                with child_span("escalate human") as span:
                    if span.is_recording():
                        _describe_rung(span, sub, name, None, None)
                return (
                    Escalation(
                        subtask_id=sub.id,
                        reason=reason,
                        rungs_tried=(*(s.rung for s in steps), name),
                        steps=tuple(steps),
                        outcome="awaiting_human",
                    ),
                    None,
                    None,
                )
            with child_span(f"escalate {name}") as span:
                candidate, detail, threshold = await self._try(rung, sub, failed)
                check = None if candidate is None else self._check(rung, candidate, threshold)
                if span.is_recording():
                    _describe_rung(span, sub, name, candidate, check)
            if candidate is None or check is None:
                steps.append(EscalationStep(rung=name, passed=False, detail=detail))
                continue
            steps.append(
                EscalationStep(
                    rung=name,
                    passed=check.passed,
                    confidence=candidate.confidence,
                    model=candidate.model,
                    detail=detail or "; ".join(check.reasons),
                )
            )
            if check.passed:
                record = Escalation(
                    subtask_id=sub.id,
                    reason=reason,
                    rungs_tried=tuple(s.rung for s in steps),
                    steps=tuple(steps),
                    outcome="resolved",
                    resolved_by=name,
                )
                return record, candidate, check
            # Keep what a failed rung cost: its remote calls and its local compute.
            failed = failed.model_copy(
                update={
                    "model_calls": failed.model_calls + candidate.model_calls,
                    "compute_ms": failed.compute_ms
                    + (candidate.compute_ms if candidate.source != "frontier" else 0.0),
                }
            )
        record = Escalation(
            subtask_id=sub.id,
            reason=reason,
            rungs_tried=tuple(s.rung for s in steps),
            steps=tuple(steps),
        )
        changed = failed.model_calls or steps
        return record, (failed if changed else None), None

    def _check(self, rung: Rung, candidate: SpecialistResult, threshold: float | None) -> Verdict:
        if isinstance(rung, FrontierRung):
            # The frontier answer reports no calibrated confidence: its contract is checked.
            return self.ctx.checker.contract_verdict(candidate)
        return self.ctx.checker.verdict(candidate, threshold=threshold)

    async def _try(self, rung: Rung, sub: Subtask, failed: SpecialistResult) -> _Attempt:
        if isinstance(rung, VoteRung):
            return await self._vote(rung, sub, failed)
        if isinstance(rung, SpecialistRung):
            return await self._second_opinion(rung, sub, failed)
        if isinstance(rung, FrontierRung):
            answerer = self.ctx.answerer
            if answerer is None:
                key = self.ctx.frontier_key()
                return _Attempt(None, f"skipped: no frontier model configured ({key} is not set)")
            result = await answerer.answer(sub, self.ctx.tools[sub.specialist])
            return _Attempt(result, "" if result.ok else f"failed: {result.error}")
        return _Attempt(None, f"unknown rung {rung.kind}")

    def _fitted(self, binding: str, name: str) -> RungConfidence | str:
        """The rung's confidence fitted for this specialist, or why it cannot be used."""
        tool = self.ctx.tools.get(binding)
        raw = tool.rungs.get(name) if tool is not None else None
        if raw is None:
            return (
                f"skipped: no confidence fitted for `{name}` on this specialist "
                "(benchmarks/rungs.py fits it on validation data into the artifact)"
            )
        fitted = RungConfidence.from_json(raw)
        if not fitted.reached:
            return (
                f"skipped: its fitted confidence never reached {fitted.target_precision:.0%} "
                f"precision on {fitted.fitted_on} validation escalations"
            )
        return fitted

    async def _second_opinion(
        self, rung: SpecialistRung, sub: Subtask, failed: SpecialistResult
    ) -> _Attempt:
        stronger = sub.model_copy(update={"specialist": rung.specialist})
        result = await call_subtask(self.ctx, stronger)
        # The result stays filed under the original binding, and says who answered.
        result = result.model_copy(update={"specialist": sub.specialist})
        if not result.ok:
            return _Attempt(result, f"call failed: {result.error}")
        fitted = self._fitted(sub.specialist, f"specialist:{_artifact_of(result.model)}")
        if isinstance(fitted, str) or not failed.ok or result.output is None:
            # Without a fitted confidence the stronger specialist's own one is judged.
            return _Attempt(result, "")
        _, features = second_opinion_features(
            Answer.from_output(failed.output or {}, failed.confidence),
            Answer.from_output(result.output, result.confidence),
        )
        confidence = fitted.score(features)
        detail = (
            f"fitted confidence {confidence:.2f} (accepted from {fitted.threshold:.2f}) for "
            f"{result.output.get('label')!r}"
        )
        return _Attempt(
            result.model_copy(update={"confidence": confidence}), detail, fitted.threshold
        )

    async def _vote(self, rung: VoteRung, sub: Subtask, failed: SpecialistResult) -> _Attempt:
        text = sub.input.get("text")
        if not isinstance(text, str):
            return _Attempt(None, "skipped: voting needs a `text` input")
        if not failed.ok or failed.output is None:
            return _Attempt(None, "skipped: the specialist gave no answer to vote on")
        fitted = self._fitted(sub.specialist, "vote")
        if isinstance(fitted, str):
            return _Attempt(None, fitted)
        variants = input_variants(text, rung.variants)
        if not variants:
            return _Attempt(None, "skipped: the text is too short to crop")
        start = time.perf_counter()
        results = await asyncio.gather(
            *(
                call_subtask(self.ctx, sub.model_copy(update={"input": {**sub.input, "text": v}}))
                for v in variants
            )
        )
        answered = [r for r in results if r.ok and r.output is not None]
        if not answered:
            return _Attempt(None, "every variant failed")
        winner, features = vote_features(
            Answer.from_output(failed.output, failed.confidence),
            [Answer.from_output(r.output or {}, r.confidence) for r in answered],
        )
        confidence = fitted.score(features)
        chosen = next(
            r for r in (failed, *answered) if r.output and str(r.output.get("label")) == winner
        )
        agreeing = sum(str((r.output or {}).get("label")) == winner for r in answered)
        detail = (
            f"{agreeing} of {len(variants)} crops said {winner!r}; fitted confidence "
            f"{confidence:.2f} (accepted from {fitted.threshold:.2f})"
        )
        return _Attempt(
            chosen.model_copy(
                update={
                    "input": sub.input,
                    "confidence": confidence,
                    "source": "vote",
                    "model": f"vote({len(variants)})/{chosen.model}",
                    "latency_ms": (time.perf_counter() - start) * 1000,
                    "compute_ms": sum(r.compute_ms for r in answered),
                    "tokens": sum(r.tokens for r in answered),
                    "attempts": sum(r.attempts for r in results),
                }
            ),
            detail,
            fitted.threshold,
        )


def _describe_rung(
    span: Span,
    sub: Subtask,
    rung: str,
    candidate: SpecialistResult | None,
    check: Verdict | None,
) -> None:
    """One rung on its span: which, for which subtask, and what its answer was judged."""
    span.set_attributes(
        {
            "orchestrator.rung": rung,
            "orchestrator.subtask.id": sub.id,
            "orchestrator.specialist": sub.specialist,
            "orchestrator.rung.answered": candidate is not None,
        }
    )
    if candidate is not None:
        describe_result(span, candidate)
    if check is not None:
        describe_verdict(span, check)


class _Attempt(NamedTuple):
    """What one rung produced: its answer (None: nothing to judge), a note, and the
    confidence threshold its answer is judged by (None: the binding's own)."""

    candidate: SpecialistResult | None
    detail: str
    threshold: float | None = None


def _artifact_of(model: str | None) -> str:
    """The trained artifact named in a text classifier's model id
    (``intent:trained-head:NAME/encoder``), else the model id itself."""
    text = model or ""
    _, found, rest = text.partition("trained-head:")
    return rest.split("/", 1)[0] if found else text
