"""escalate: the ladder tried, in order, for each result that failed verification.

Rungs: ``vote`` (the same specialist on variants of the input, majority answer), ``specialist``
(a stronger binding), ``frontier`` (the frontier model answers the subtask itself) and
``human`` (the run pauses until a person approves, corrects or rejects; see :mod:`.review`).
Every rung tried is recorded; a result no rung could fix is kept, marked unverified.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from typing import Any

from orchestrator._contracts import Escalation, EscalationStep, SpecialistResult, Subtask, Verdict
from orchestrator._state import RunState, RunView
from orchestrator.graph.spec import FrontierRung, Rung, SpecialistRung, VoteRung
from orchestrator.steps.call import call_subtask
from orchestrator.steps.context import StepContext, timing

__all__ = ["Escalator", "escalate", "input_variants"]


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
    for record, result, verdict in outcomes:
        update["escalations"][record.subtask_id] = record.model_dump(mode="json")
        if result is not None:
            update["results"][record.subtask_id] = result.model_dump(mode="json")
        if verdict is not None:
            update["verdicts"][record.subtask_id] = verdict.model_dump(mode="json")
    return update


def input_variants(text: str, count: int) -> list[str]:
    """Up to `count` distinct rewrites of a text that keep its meaning (the first is the text)."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    candidates = [
        text,
        text.lower(),
        re.sub(r"[^\w\s']", " ", text).strip(),
        " ".join(sentences[1:] + sentences[:1]) if len(sentences) > 1 else text.rstrip(".!?") + ".",
        sentences[-1] if len(sentences) > 1 else text.upper(),
        " ".join(text.split()),
        text.capitalize(),
    ]
    out: list[str] = []
    for c in candidates:
        if c and c not in out:
            out.append(c)
    return out[:count]


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
            candidate, detail = await self._try(rung, sub)
            if candidate is None:
                steps.append(EscalationStep(rung=name, passed=False, detail=detail))
                continue
            check = self._check(rung, candidate)
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

    def _check(self, rung: Rung, candidate: SpecialistResult) -> Verdict:
        if isinstance(rung, FrontierRung):
            # The frontier answer reports no calibrated confidence: its contract is checked.
            return self.ctx.checker.contract_verdict(candidate)
        return self.ctx.checker.verdict(candidate)

    async def _try(self, rung: Rung, sub: Subtask) -> tuple[SpecialistResult | None, str]:
        if isinstance(rung, VoteRung):
            return await self._vote(rung, sub)
        if isinstance(rung, SpecialistRung):
            stronger = sub.model_copy(update={"specialist": rung.specialist})
            result = await call_subtask(self.ctx, stronger)
            # The result stays filed under the original binding, and says who answered.
            return result.model_copy(update={"specialist": sub.specialist}), (
                "" if result.ok else f"call failed: {result.error}"
            )
        if isinstance(rung, FrontierRung):
            answerer = self.ctx.answerer
            if answerer is None:
                key = self.ctx.frontier_key()
                return None, f"skipped: no frontier model configured ({key} is not set)"
            result = await answerer.answer(sub, self.ctx.tools[sub.specialist])
            return result, "" if result.ok else f"failed: {result.error}"
        return None, f"unknown rung {rung.kind}"

    async def _vote(self, rung: VoteRung, sub: Subtask) -> tuple[SpecialistResult | None, str]:
        text = sub.input.get("text")
        if not isinstance(text, str):
            return None, "skipped: voting needs a `text` input"
        variants = input_variants(text, rung.variants)
        start = time.perf_counter()
        results = await asyncio.gather(
            *(
                call_subtask(self.ctx, sub.model_copy(update={"input": {**sub.input, "text": v}}))
                for v in variants
            )
        )
        answered = [r for r in results if r.ok and r.output is not None]
        if not answered:
            return None, "every variant failed"

        def key(r: SpecialistResult) -> str:
            assert r.output is not None
            return str(r.output.get("label", json.dumps(r.output, sort_keys=True)))

        votes = Counter(key(r) for r in answered)
        winner, count = votes.most_common(1)[0]
        winners = [r for r in answered if key(r) == winner]
        confidences = [r.confidence for r in winners if r.confidence is not None]
        mean = sum(confidences) / len(confidences) if confidences else None
        confidence = mean * count / len(variants) if mean is not None else None
        first = winners[0]
        detail = f"{count} of {len(variants)} variants said {winner!r}"
        return first.model_copy(
            update={
                "input": sub.input,
                "confidence": confidence,
                "source": "vote",
                "model": f"vote({len(variants)})/{first.model}",
                "latency_ms": (time.perf_counter() - start) * 1000,
                "compute_ms": sum(r.compute_ms for r in answered),
                "tokens": sum(r.tokens for r in answered),
                "attempts": sum(r.attempts for r in results),
            }
        ), detail
