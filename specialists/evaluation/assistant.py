"""The project's own set of realistic assistant requests, and how ``function_call`` scores on it.

``data/assistant_requests.jsonl`` holds requests of the kinds assistant users make (bookings,
calendar, email, reminders, weather, travel, shopping, smart home, CRM, support tickets,
currency), written for this project: single calls, several calls in one request, requests
that no tool serves, and chat follow-ups over several turns. Every request is offered all the
tools of ``data/assistant_tools.json`` (OpenAI format), as an assistant would offer them. The
expected calls are in BFCL's answer format (each argument lists its acceptable values; ``""``
means it may be left out) and are scored with the BFCL checker, calls in any order.

The split into ``tune`` and ``test`` was fixed before any result was looked at: within each
kind of request, in file order, the 1st, 3rd, 5th... request is ``tune`` and the 2nd, 4th...
is ``test``. Anything fitted or tuned may use ``tune`` only; ``test`` is the headline.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator._errors import ConfigurationError
from orchestrator.specialists.evaluation.bfcl import check_calls
from orchestrator.specialists.evaluation.kept_answers import kept_answers
from orchestrator.specialists.function_call.schema import normalize_function

__all__ = [
    "PARTS",
    "AssistantRequest",
    "assistant_tools",
    "evaluate_assistant",
    "load_requests",
    "write_plot",
]

DATA = Path(__file__).resolve().parent / "data"
PARTS = ("tune", "test", "all")
KINDS = ("single", "multi", "follow_up", "none")
# The BFCL checker reads BFCL's type names.
_BFCL_TYPES = {"number": "float", "object": "dict"}


@dataclass(frozen=True)
class AssistantRequest:
    id: str
    kind: str
    part: str
    now: datetime
    messages: list[dict[str, str]]
    answer: list[dict[str, dict[str, list[Any]]]]


def assistant_tools(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The tool definitions every request is offered."""
    file = Path(path) if path else DATA / "assistant_tools.json"
    tools: list[dict[str, Any]] = json.loads(file.read_text(encoding="utf-8"))
    return tools


def load_requests(path: str | Path | None = None, part: str = "all") -> list[AssistantRequest]:
    """The requests of one part (``tune``, ``test`` or ``all``), each with its part."""
    if part not in PARTS:
        raise ConfigurationError(f"--part {part!r}: use one of {', '.join(PARTS)}")
    file = Path(path) if path else DATA / "assistant_requests.jsonl"
    if not file.is_file():
        raise ConfigurationError(f"{file}: not found; --data must be a requests .jsonl file")
    seen: Counter[str] = Counter()
    items: list[AssistantRequest] = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            kind = row["kind"]
            item_part = "tune" if seen[kind] % 2 == 0 else "test"
            seen[kind] += 1
            item = AssistantRequest(
                id=row["id"],
                kind=kind,
                part=item_part,
                now=datetime.fromisoformat(row["now"]),
                messages=row["messages"],
                answer=row["answer"],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{file}:{number}: not a request row ({exc})") from None
        if part in ("all", item_part):
            items.append(item)
    return items


def _bfcl_doc(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A tool as the BFCL checker reads it (its type names)."""
    spec = normalize_function(tool)

    def retype(schema: Any) -> Any:
        if isinstance(schema, dict):
            out = {k: retype(v) for k, v in schema.items()}
            if isinstance(out.get("type"), str):
                out["type"] = _BFCL_TYPES.get(out["type"], out["type"])
            return out
        return schema

    return {"name": spec.name, "parameters": retype(spec.parameters)}


def _latency(times: Sequence[float], q: float) -> float:
    return float(np.percentile(times, q)) if times else 0.0


def evaluate_assistant(
    specialist: Any,
    *,
    part: str = "test",
    path: str | Path | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    examples: int = 8,
) -> dict[str, Any]:
    """Run ``function_call`` on the requests of ``part`` and score each one (right only when
    every expected call is made, with the right arguments, and no other).

    Reported: accuracy overall and per kind; the share of requests a tool serves that got no
    call (``refused``) and of those no tool serves that got one (``called_irrelevant``); how
    many answers pass verification and how often those are right; the risk-coverage curve
    (accuracy of the answers kept against the share kept, keeping verified answers first,
    most confident first); and at the specialist's threshold, the share of the relevant
    requests kept and the accuracy of what is kept.
    """
    from orchestrator.specialists.function_call.specialist import FunctionCallInput

    specialist.ensure_loaded()
    tools = assistant_tools()
    docs = [_bfcl_doc(t) for t in tools]
    items = load_requests(path, part)
    advance = progress("assistant", len(items)) if progress else (lambda n: None)
    threshold = getattr(specialist, "acceptance_threshold", None)
    rows: list[dict[str, Any]] = []
    for item in items:
        request = FunctionCallInput.model_validate(
            {"request": item.messages, "functions": tools, "now": item.now}
        )
        start = time.perf_counter()
        prediction = specialist.predict_batch([request])[0]
        elapsed = 1000 * (time.perf_counter() - start)
        calls = [{c.name: c.arguments} for c in prediction.output.calls]
        category = "parallel_multiple" if item.answer else "irrelevance"
        problems = check_calls(category, docs, calls, item.answer)
        verified = not specialist.verify(request, prediction.output)
        rows.append(
            {
                "id": item.id,
                "kind": item.kind,
                "right": not problems,
                "verified": verified,
                "confidence": float(prediction.confidence),
                "calls": calls,
                "expected": item.answer,
                "problems": problems,
                "ms": elapsed,
            }
        )
        advance(1)
    return summarise(rows, part, threshold, examples=examples)


def summarise(
    rows: Sequence[Mapping[str, Any]], part: str, threshold: float | None, *, examples: int = 8
) -> dict[str, Any]:
    """The report of :func:`evaluate_assistant` from its scored rows."""
    right = np.array([bool(r["right"]) for r in rows])
    verified = np.array([bool(r["verified"]) for r in rows])
    relevant = np.array([r["kind"] != "none" for r in rows])
    called = np.array([bool(r["calls"]) for r in rows])
    report: dict[str, Any] = {
        "part": part,
        "requests": len(rows),
        "accuracy": float(right.mean()) if len(rows) else 0.0,
        "by_kind": {
            kind: {
                "requests": int(sum(1 for r in rows if r["kind"] == kind)),
                "accuracy": float(np.mean([r["right"] for r in rows if r["kind"] == kind])),
            }
            for kind in KINDS
            if any(r["kind"] == kind for r in rows)
        },
        "refused": float((~called & relevant).sum() / max(relevant.sum(), 1)),
        "called_irrelevant": float((called & ~relevant).sum() / max((~relevant).sum(), 1)),
        "verified": float(verified.mean()) if len(rows) else 0.0,
        "verified_accuracy": float(right[verified].mean()) if verified.any() else 0.0,
        "risk_coverage": {},
        "latency_p50_ms": _latency([r["ms"] for r in rows], 50),
        "latency_p95_ms": _latency([r["ms"] for r in rows], 95),
        "failures": [dict(r) for r in rows if not r["right"]][:examples],
    }
    report.update(kept_answers([{**r, "relevant": r["kind"] != "none"} for r in rows], threshold))
    report["rows"] = [
        {k: r[k] for k in ("id", "kind", "right", "verified", "confidence")} for r in rows
    ]
    return report


def write_plot(report: Mapping[str, Any], folder: str | Path, name: str = "assistant") -> Path:
    """The risk-coverage curve as a PNG (needs the `eval` extra); ``name`` says whose
    requests were answered (``assistant``, ``bfcl``)."""
    from orchestrator.specialists.evaluation.plotting import pyplot

    plt = pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    curve = report["risk_coverage"]
    kept = [100 * (1 - e) for e in curve["escalated"]]
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    ax.plot(kept, [100 * a for a in curve["accuracy"]], lw=2)
    if "kept" in report:
        ax.scatter([100 * report["kept"]], [100 * report["kept_accuracy"]], color="black")
        ax.annotate("threshold", (100 * report["kept"], 100 * report["kept_accuracy"]))
    ax.set_xlabel("share of answers kept (verified, most confident first), %")
    ax.set_ylabel("answers fully right among those kept, %")
    ax.set_title(f"function_call on {name} requests ({report['part']}): risk-coverage")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = folder / f"{name}_{report['part']}_risk_coverage.png"
    fig.savefig(path)
    plt.close(fig)
    return path
