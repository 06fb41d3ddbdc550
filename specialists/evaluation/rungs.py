"""What each escalation rung can resolve, measured: its confidence fitted on validation data,
its share and accuracy on a test split's escalations.

An escalation is a test item whose calibrated confidence is below the artifact's stored
threshold, as at run time. For each rung the same features that the escalate step computes
(:mod:`orchestrator.specialists.rung_confidence`) are gathered on the validation items the
specialist escalates, a logistic model and a threshold for the artifact's target precision are
fitted there, and only then the test split is read: a rung *resolves* an escalation when its
fitted confidence clears that threshold, and it *qualifies* for a shipped ladder when it
resolves at least :data:`MIN_RESOLVED_SHARE` of the escalations at the target precision or
better.

Rungs: ``vote`` (the specialist on crops of the text), ``specialist`` (a second artifact's
opinion) and ``frontier`` (the frontier model, measured only when it can be reached).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from orchestrator.agents.answerer import FrontierAnswerer
from orchestrator.specialists.artifacts import Artifact, artifact_encoder
from orchestrator.specialists.backends.encoder import TextEncoder
from orchestrator.specialists.evaluation.cascade import ask_frontier
from orchestrator.specialists.evaluation.datasets import Split, TextDataset, stratified_split
from orchestrator.specialists.heads import Head
from orchestrator.specialists.rung_confidence import (
    SECOND_OPINION_FEATURES,
    VOTE_FEATURES,
    Answer,
    RungConfidence,
    input_variants,
    second_opinion_features,
    vote_features,
)
from orchestrator.specialists.training.embeddings import embed_texts
from orchestrator.specialists.training.heads import fit_head
from orchestrator.specialists.training.rung_confidence import (
    fit_rung_confidence,
    save_rung_confidences,
)

__all__ = [
    "MIN_RESOLVED_SHARE",
    "RungRow",
    "evaluate_rungs",
]

#: A rung must resolve at least this share of its escalations to be in a shipped ladder.
MIN_RESOLVED_SHARE = 0.20
TOP_K = 3  # the ranked labels a text classifier returns by default: all a rung sees


@dataclass(frozen=True)
class RungRow:
    """One rung on one artifact's test escalations."""

    dataset: str
    artifact: str
    rung: str
    measured: bool
    escalations: int
    resolved: int = 0
    resolved_share: float | None = None
    resolved_accuracy: float | None = None
    #: accuracy of the specialist's own answers on the same escalations
    specialist_accuracy: float | None = None
    target_precision: float = 0.0
    qualifies: bool = False
    validation: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _answers(artifact: Artifact, features: npt.NDArray[np.float32], head: Head) -> list[Answer]:
    probabilities = artifact.calibrator.probabilities(head.logits(features))
    labels = artifact.labels
    out = []
    for row in probabilities:
        top = np.argsort(-row)[:TOP_K]
        scores = {labels[j]: float(row[j]) for j in top}
        out.append(Answer(labels[top[0]], float(row[top[0]]), scores))
    return out


@dataclass
class _View:
    """One artifact's answers on one split (its validation head where the validation data
    was carved out of the training split)."""

    artifact: Artifact
    encoder: TextEncoder
    head: Head
    cache_dir: str | Path | None

    def answer(self, texts: Sequence[str], *, cache: bool = True) -> list[Answer]:
        features = embed_texts(self.encoder, texts, cache_dir=self.cache_dir if cache else None)
        return _answers(self.artifact, features, self.head)


def _validation(
    artifact: Artifact, dataset: TextDataset, cache_dir: str | Path | None
) -> tuple[Split, _View]:
    """The validation split the artifact was calibrated on, and a view that answers it as
    the calibrated head did: where training carved the validation items out of the training
    split, the head it shipped was refitted on them too, so the head fitted before that
    refit is trained again (same configuration and seed, same result)."""
    encoder = artifact_encoder(artifact)
    if "val" in dataset.splits:
        return dataset.split("val"), _View(artifact, encoder, artifact.head, cache_dir)
    train = dataset.split("train")
    kept, held = stratified_split(train.labels, 0.15, seed=0)
    fit_split, val_split = train.subset(kept), train.subset(held)
    index = {label: i for i, label in enumerate(artifact.labels)}
    x_fit = embed_texts(encoder, fit_split.texts, cache_dir=cache_dir)
    x_val = embed_texts(encoder, val_split.texts, cache_dir=cache_dir)
    y_fit = np.array([index[label] for label in fit_split.labels], dtype=np.int64)
    y_val = np.array([index[label] for label in val_split.labels], dtype=np.int64)
    head, _, _ = fit_head(
        x_fit, y_fit, len(artifact.labels), artifact.head.config, x_val=x_val, y_val=y_val
    )
    return val_split, _View(artifact, encoder, head, cache_dir)


@dataclass
class _Escalated:
    """The items of one split the specialist escalates, with its answers on them."""

    texts: list[str]
    truth: list[str]
    answers: list[Answer]
    positions: list[int]


def _escalated(view: _View, split: Split) -> _Escalated:
    answers = view.answer(split.texts)
    chosen = [i for i, a in enumerate(answers) if a.confidence < view.artifact.threshold]
    return _Escalated(
        [split.texts[i] for i in chosen],
        [split.labels[i] for i in chosen],
        [answers[i] for i in chosen],
        chosen,
    )


def _vote_rows(view: _View, items: _Escalated, variants: int) -> list[tuple[str, list[float]]]:
    crops = [input_variants(text, variants) for text in items.texts]
    flat = [c for group in crops for c in group]
    # Crops are new texts each time the ladder runs: encoded fresh, never cached.
    answered = iter(view.answer(flat, cache=False) if flat else [])
    rows = []
    for original, group in zip(items.answers, crops, strict=True):
        rows.append(vote_features(original, [next(answered) for _ in group]))
    return rows


def _second_rows(second: _View, items: _Escalated) -> list[tuple[str, list[float]]]:
    theirs = second.answer(items.texts)
    return [
        second_opinion_features(first, other)
        for first, other in zip(items.answers, theirs, strict=True)
    ]


def _score(
    name: str,
    fitted: RungConfidence,
    rows: list[tuple[str, list[float]]],
    items: _Escalated,
    common: dict[str, Any],
) -> RungRow:
    resolved = [
        label == truth
        for (label, features), truth in zip(rows, items.truth, strict=True)
        if fitted.accepts(fitted.score(features))
    ]
    share = len(resolved) / len(rows) if rows else None
    accuracy = float(np.mean(resolved)) if resolved else None
    return RungRow(
        rung=name,
        measured=True,
        escalations=len(rows),
        resolved=len(resolved),
        resolved_share=share,
        resolved_accuracy=accuracy,
        qualifies=bool(
            share is not None
            and accuracy is not None
            and share >= MIN_RESOLVED_SHARE
            and accuracy >= fitted.target_precision
        ),
        validation={
            "escalations": fitted.fitted_on,
            "threshold": fitted.threshold,
            "precision": fitted.precision,
            "resolved_share": fitted.coverage,
            "target_reached": fitted.reached,
        },
        **common,
    )


def _fit(
    name: str, names: Sequence[str], rows: list[tuple[str, list[float]]], truth: list[str],
    target: float,
) -> RungConfidence:  # fmt: skip
    return fit_rung_confidence(
        name,
        names,
        [features for _, features in rows],
        [label == t for (label, _), t in zip(rows, truth, strict=True)],
        target,
    )


def _frontier_row(
    answerer: FrontierAnswerer | None,
    artifact: Artifact,
    items: _Escalated,
    limit: int,
    common: dict[str, Any],
) -> RungRow:
    if answerer is None:
        return RungRow(
            rung="frontier",
            measured=False,
            escalations=len(items.texts),
            note="not measured: the frontier model was not reached (no API key)",
            **common,
        )
    # The frontier reports no confidence: every contract-valid answer resolves.
    chosen = list(range(min(limit, len(items.texts))))
    answers = ask_frontier(answerer, artifact, [items.texts[i] for i in chosen])
    resolved = [
        a.output["label"] == items.truth[i]
        for a, i in zip(answers, chosen, strict=True)
        if a.ok and a.output
    ]
    share = len(resolved) / len(chosen) if chosen else None
    accuracy = float(np.mean(resolved)) if resolved else None
    target = common["target_precision"]
    return RungRow(
        rung="frontier",
        measured=True,
        escalations=len(chosen),
        resolved=len(resolved),
        resolved_share=share,
        resolved_accuracy=accuracy,
        qualifies=bool(share and accuracy and share >= MIN_RESOLVED_SHARE and accuracy >= target),
        note=f"the first {len(chosen)} escalations sent",
        **common,
    )


def evaluate_rungs(
    artifact: Artifact,
    dataset: TextDataset,
    *,
    split: str = "test",
    second: Artifact | None = None,
    answerer: FrontierAnswerer | None = None,
    variants: int = 5,
    frontier_limit: int = 200,
    cache_dir: str | Path | None = None,
    write: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[RungRow]:
    """Fit each rung's confidence on `artifact`'s validation escalations, then score it on
    `split`; with ``write`` the fitted confidences go into the artifact's ``rungs.json``
    (which the specialist publishes, and the escalate step reads)."""
    say = progress or (lambda message: None)
    target = float(artifact.card.get("threshold", {}).get("target_precision", 0.95))
    val_split, val_view = _validation(artifact, dataset, cache_dir)
    test_view = _View(artifact, val_view.encoder, artifact.head, cache_dir)
    say("specialist answers")
    val_items = _escalated(val_view, val_split)
    test_items = _escalated(test_view, dataset.split(split))
    common = {"dataset": dataset.name, "artifact": artifact.name, "target_precision": target}
    own = [a.label == t for a, t in zip(test_items.answers, test_items.truth, strict=True)]
    common["specialist_accuracy"] = float(np.mean(own)) if own else None
    fitted: dict[str, RungConfidence] = {}
    rows: list[RungRow] = []
    say("vote: crops of the escalated texts")
    val_rows = _vote_rows(val_view, val_items, variants)
    fitted["vote"] = _fit("vote", VOTE_FEATURES, val_rows, val_items.truth, target)
    rows.append(
        _score(
            "vote", fitted["vote"], _vote_rows(test_view, test_items, variants), test_items, common
        )
    )
    if second is not None:
        say(f"specialist: {second.name}'s opinion")
        name = f"specialist:{second.name}"
        _, second_val = _validation(second, dataset, cache_dir)
        second_test = _View(second, second_val.encoder, second.head, cache_dir)
        val_rows = _second_rows(second_val, val_items)
        fitted[name] = _fit(name, SECOND_OPINION_FEATURES, val_rows, val_items.truth, target)
        rows.append(
            _score(name, fitted[name], _second_rows(second_test, test_items), test_items, common)
        )
    rows.append(_frontier_row(answerer, artifact, test_items, frontier_limit, common))
    if write and artifact.path is not None:
        save_rung_confidences(artifact.path, fitted)
    return rows
