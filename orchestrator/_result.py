"""Assembling the final :class:`RunResult` from a finished run's state."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from orchestrator._contracts import ModelCall, RunResult, SpecialistResult, SubtaskReport
from orchestrator._ledger import PriceTable, build_ledger
from orchestrator._secrets import scrub_secrets
from orchestrator._state import RunState, RunView

__all__ = ["build_run_result"]


def build_run_result(
    graph: str,
    thread_id: str,
    state: RunState,
    *,
    planner: str,
    total_ms: float,
    startup_ms: float | None = None,
    prices: PriceTable | None = None,
    frontier_model: str | None = None,
    pending_review: Sequence[str] = (),
) -> RunResult:
    run = RunView(state)
    plans = [run.plan(node) for node in run.planned_nodes()]
    results = {sid: r for sid in run.result_ids() if (r := run.result(sid)) is not None}
    reports: list[SubtaskReport] = []
    skipped: dict[str, str] = {}
    not_run = 0  # planned but never called: a dependency failed
    for plan in plans:
        skipped.update(plan.skipped)
        for sub in plan.subtasks:
            result = results.get(sub.id)
            verdict = run.verdict(sub.id)
            if result is None:
                failed = [d for d in sub.depends_on if not (d in results and results[d].ok)]
                skipped[sub.id] = f"dependency failed: {', '.join(failed)}" if failed else "not run"
                not_run += 1
                continue
            reports.append(
                SubtaskReport(
                    id=sub.id,
                    specialist=sub.specialist,
                    ok=result.ok,
                    verified=bool(verdict and verdict.passed),
                    confidence=result.confidence,
                    model=result.model,
                    latency_ms=result.latency_ms,
                    compute_ms=result.compute_ms,
                    tokens=result.tokens,
                    attempts=result.attempts,
                    output=result.output,
                    error=scrub_secrets(result.error) if result.error else None,
                    reasons=verdict.reasons if verdict else (),
                    source=result.source,
                )
            )
    fields = run.fields
    timings = _timings(state.get("timings", []), results.values(), total_ms)
    if startup_ms is not None:
        timings["startup"] = startup_ms
    plan_errors = [f"{p.planner}: {p.error}" for p in plans if p.error]
    # A composed text is never "verified" itself (it is written from verified fields only),
    # nor is the request's own text: neither makes a run partial.
    checked = [
        f
        for f in fields.values()
        if f.provenance.source != "request"
        and (f.provenance.source != "frontier" or f.provenance.specialist is not None)
    ]
    status: Literal["ok", "partial", "failed", "awaiting_human"]
    if pending_review:
        status = "awaiting_human"
    elif plan_errors or (reports and not any(r.ok for r in reports)):
        status = "failed"
    elif (
        any(not r.ok or not r.verified for r in reports)
        or any(not f.provenance.verified for f in checked)
        or not_run
        or state.get("notes")
    ):
        status = "partial"
    else:
        status = "ok"
    other_calls = [c for p in plans for c in p.model_calls]
    other_calls += [ModelCall.model_validate(c) for c in state.get("model_calls", [])]
    ledger = build_ledger(
        results.values(), other_calls, prices or PriceTable.load(), frontier_model
    )
    return RunResult(
        graph=graph,
        thread_id=thread_id,
        request=run.request,
        status=status,
        fields=fields,
        subtasks=tuple(reports),
        skipped=skipped,
        escalations=tuple(e for s in run.escalation_ids() if (e := run.escalation(s))),
        ledger=ledger,
        pending_review=tuple(pending_review),
        error=scrub_secrets("; ".join(plan_errors)) or None,
        notes=tuple(state.get("notes", [])),
        path=tuple(state.get("path", [])),
        planner=", ".join(sorted({p.planner for p in plans})) or planner,
        timings_ms={k: round(v, 3) for k, v in timings.items()},
        compute_ms=round(sum(r.compute_ms for r in results.values()), 3),
        tokens=sum(r.tokens for r in results.values()),
    )


def _covered_ms(intervals: list[tuple[float, float]]) -> float:
    """How long at least one of the (start, end) intervals was running, in ms."""
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered * 1000


def _timings(
    entries: list[dict[str, Any]], results: Iterable[SpecialistResult], total_ms: float
) -> dict[str, float]:
    """Wall time per kind of step and the total. Parallel calls count once for the time
    they overlap, so the parts never add up to more than the total; a run read back from
    its checkpoint (or resumed) reports the span its steps took as its total."""
    parts: defaultdict[str, float] = defaultdict(float)
    spans: defaultdict[str, list[tuple[float, float]]] = defaultdict(list)
    for entry in entries:
        if "at" in entry:
            spans[entry["kind"]].append((entry["at"], entry["at"] + entry["ms"] / 1000))
        else:  # written before steps recorded when they started
            parts[entry["kind"]] += entry["ms"]
    for kind, intervals in spans.items():
        parts[kind] += _covered_ms(intervals)
    if "call" not in parts:
        parts["call"] = sum(r.latency_ms for r in results)
    everything = [interval for intervals in spans.values() for interval in intervals]
    span = (
        _covered_ms([(min(s for s, _ in everything), max(e for _, e in everything))])
        if everything
        else 0.0
    )
    total = total_ms
    if sum(parts.values()) > total:
        total = max(span, sum(parts.values()))
    return {**parts, "total": total}
