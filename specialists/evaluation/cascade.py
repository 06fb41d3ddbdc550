"""Evaluating the specialist-then-frontier cascade on a labelled test split.

For a range of acceptance thresholds: which share of items the specialist escalates, how
accurate the answers it keeps are, and, when the frontier model can be reached, how accurate
and how costly the combined answers are. Without a key the escalated part is reported as not
answered, never guessed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator._contracts import SpecialistResult, Subtask, ToolInfo
from orchestrator._ledger import PriceTable
from orchestrator.agents.answerer import FrontierAnswerer
from orchestrator.specialists.artifacts import Artifact
from orchestrator.specialists.backends.encoder import bundled_encoder
from orchestrator.specialists.evaluation.datasets import Split
from orchestrator.specialists.evaluation.plotting import pyplot
from orchestrator.specialists.training.embeddings import embed_texts

__all__ = ["CascadePoint", "CascadeReport", "ask_frontier", "evaluate_cascade", "plot_cascade"]

DEFAULT_THRESHOLDS = tuple(round(x, 2) for x in np.linspace(0.0, 0.99, 34))


@dataclass(frozen=True)
class CascadePoint:
    threshold: float
    escalated_share: float
    accepted_accuracy: float | None
    accepted: int
    #: with the frontier answering the escalated items (None: not reached)
    combined_accuracy: float | None = None


@dataclass
class CascadeReport:
    dataset: str
    split: str
    items: int
    scored_items: int
    note: str
    points: list[CascadePoint]
    artifact_threshold: float
    at_stored_threshold: CascadePoint
    at_10_percent: CascadePoint | None
    frontier: dict[str, Any] = field(default_factory=dict)
    #: Data with an out-of-scope label: its items at the stored threshold.
    out_of_scope: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "items": self.items,
            "scored_items": self.scored_items,
            "note": self.note,
            "artifact_threshold": self.artifact_threshold,
            "at_stored_threshold": vars(self.at_stored_threshold),
            "at_10_percent_escalated": vars(self.at_10_percent) if self.at_10_percent else None,
            "frontier": self.frontier,
            "out_of_scope": self.out_of_scope,
            "points": [vars(p) for p in self.points],
        }


def _point(
    threshold: float, confidence: np.ndarray, correct: np.ndarray, scored: np.ndarray
) -> CascadePoint:
    # Share and accuracy are both over the scored items (CLINC150: the in-scope ones).
    accepted = (confidence >= threshold) & scored
    total = int(scored.sum())
    accuracy = float(correct[accepted].mean()) if accepted.any() else None
    share = 1 - accepted.sum() / total if total else 0.0
    return CascadePoint(
        threshold=threshold,
        escalated_share=float(share),
        accepted_accuracy=accuracy,
        accepted=int(accepted.sum()),
    )


def _out_of_scope_figures(
    accepted: np.ndarray, correct: np.ndarray, in_scope: np.ndarray
) -> dict[str, Any]:
    """At the stored threshold: how many out-of-scope items are answered with an intent, and
    the accepted answers' accuracy when those count as errors."""
    out = ~in_scope
    return {
        "items": int(out.sum()),
        "accepted": int((accepted & out).sum()),
        "refused_share": float(1 - (accepted & out).sum() / out.sum()),
        "accepted_accuracy_all_items": float((correct & in_scope)[accepted].mean())
        if accepted.any()
        else None,
    }


def ask_frontier(
    answerer: FrontierAnswerer, artifact: Artifact, texts: Sequence[str]
) -> list[SpecialistResult]:
    """The frontier model's answers to `texts` as the artifact's classifier (four at a time),
    each checked against its label set."""
    labels = list(artifact.labels)
    tool = ToolInfo(
        name=artifact.specialist,
        description=f"Classify the text into one of {len(labels)} intents.",
        input_schema={"type": "object"},
        labels=tuple(labels),
        output_schema={
            "type": "object",
            "properties": {"label": {"enum": labels}},
            "required": ["label"],
        },
    )

    async def ask_all() -> list[SpecialistResult]:
        gate = asyncio.Semaphore(4)

        async def ask(i: int, text: str) -> SpecialistResult:
            async with gate:
                sub = Subtask(id=f"item{i}", specialist=artifact.specialist, input={"text": text})
                return await answerer.answer(sub, tool)

        return await asyncio.gather(*(ask(i, t) for i, t in enumerate(texts)))

    return asyncio.run(ask_all())


def evaluate_cascade(
    artifact: Artifact,
    split: Split,
    *,
    dataset: str,
    split_name: str,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    answerer: FrontierAnswerer | None = None,
    prices: PriceTable | None = None,
    frontier_limit: int = 200,
    cache_dir: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> CascadeReport:
    """Score the artifact on `split`; with an answerer, send escalated items (up to
    `frontier_limit`, at the artifact's stored threshold) to the frontier model."""
    encoder = bundled_encoder()
    features = embed_texts(encoder, split.texts, cache_dir=cache_dir, progress=progress)
    # Answers with the out-of-scope class or refused by the artifact's out-of-scope detector
    # score -1: they escalate at every threshold.
    best, confidence, _ = artifact.accepted(features)
    labels = np.array(artifact.labels)
    predicted = labels[best]
    truth = np.array(split.labels)
    correct = predicted == truth
    oos = artifact.oos_label
    # CLINC150's published in-scope accuracy counts in-scope items only.
    scored = truth != oos if oos is not None else np.ones(len(truth), dtype=bool)
    note = (
        "in-scope items only, as CLINC150's in-scope accuracy is defined"
        if oos is not None
        else "all items"
    )
    points = [_point(t, confidence, correct, scored) for t in sorted(set(thresholds))]
    stored = _point(artifact.threshold, confidence, correct, scored)
    # The lowest threshold escalating at least 10%: the operating point the target names.
    order = np.sort(confidence[scored])
    cut = float(order[int(np.ceil(0.10 * len(order))) - 1]) + 1e-9 if len(order) else 1.0
    ten = _point(cut, confidence, correct, scored) if len(order) else None
    report = CascadeReport(
        dataset=dataset,
        split=split_name,
        items=len(truth),
        scored_items=int(scored.sum()),
        note=note,
        points=points,
        artifact_threshold=artifact.threshold,
        at_stored_threshold=stored,
        at_10_percent=ten,
    )
    if oos is not None and (~scored).any():
        report.out_of_scope = _out_of_scope_figures(
            confidence >= artifact.threshold, correct, scored
        )
    escalated = np.flatnonzero(confidence < artifact.threshold)
    if answerer is None:
        report.frontier = {
            "reached": False,
            "escalated_items": len(escalated),
            "note": "the frontier model was not reached (no API key): escalated items are not "
            "answered, so only the accepted answers' accuracy is reported",
        }
        return report
    chosen = escalated[:frontier_limit]
    answers = ask_frontier(answerer, artifact, [split.texts[int(i)] for i in chosen])
    frontier_correct = np.array(
        [
            bool(a.ok and a.output and a.output.get("label") == truth[i])
            for a, i in zip(answers, chosen, strict=True)
        ]
    )
    combined = correct.copy()
    combined[chosen] = frontier_correct
    sample = np.concatenate([np.flatnonzero(confidence >= artifact.threshold), chosen])
    sample_scored = sample[scored[sample]]
    table = prices or PriceTable.load()
    cost = 0.0
    for answer in answers:
        for call in answer.model_calls:
            price = table.price(call.model)
            cost += price.cost(call) if price else 0.0
    report.frontier = {
        "reached": True,
        "escalated_items": len(escalated),
        "answered": len(chosen),
        "frontier_accuracy": float(frontier_correct.mean()) if len(chosen) else None,
        "combined_accuracy": float(combined[sample_scored].mean()) if len(sample_scored) else None,
        "cost_usd": cost,
        "note": "combined accuracy over accepted items and the escalated items sent "
        f"(at most {frontier_limit})",
    }
    return report


def plot_cascade(report: CascadeReport, path: Path) -> Path:
    plt = pyplot()

    xs = [p.escalated_share * 100 for p in report.points if p.accepted_accuracy is not None]
    ys = [p.accepted_accuracy * 100 for p in report.points if p.accepted_accuracy is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ax.plot(xs, ys, marker=".", label="accepted specialist answers")
    stored = report.at_stored_threshold
    if stored.accepted_accuracy is not None:
        ax.scatter(
            [stored.escalated_share * 100],
            [stored.accepted_accuracy * 100],
            color="red",
            zorder=3,
            label=f"stored threshold {report.artifact_threshold:.2f}",
        )
    ax.axvline(10, color="grey", linestyle="--", linewidth=0.8, label="10% escalated")
    ax.set_xlabel("share escalated to the frontier (%)")
    ax.set_ylabel("accuracy of accepted answers (%)")
    ax.set_title(
        f"Cascade on {report.dataset} ({report.split}, {report.scored_items} items scored)"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
