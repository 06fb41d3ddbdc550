"""How sure an escalation rung is of its answer: features of what it saw, scored by a small
logistic model fitted on validation data, with an acceptance threshold for the specialist's
target precision.

A rung is asked only about answers the specialist was unsure of, so a formula over its raw
scores (a vote's mean confidence, a second model's softmax) says little about how often it is
right there. Instead the rung's features are computed the same way at evaluation and at run
time (:func:`vote_features`, :func:`second_opinion_features`), a logistic model is fitted on
the validation items the specialist escalates, and the threshold is the lowest score whose
accepted answers reached the target precision on them (``training/rung_confidence.py`` fits
them; this module only reads and applies them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "RUNGS_FILE",
    "Answer",
    "RungConfidence",
    "input_variants",
    "load_rung_confidences",
    "second_opinion_features",
    "vote_features",
]

Floats = npt.NDArray[np.float64]
#: Where a trained artifact keeps its rungs' fitted confidences (rung name -> JSON).
RUNGS_FILE = "rungs.json"

VOTE_FEATURES = ("original_confidence", "agreement", "winner_mean_score", "winner_is_original")
SECOND_OPINION_FEATURES = (
    "first_confidence",
    "second_confidence",
    "agree",
    "second_score_of_first",
)


@dataclass(frozen=True)
class Answer:
    """One classifier answer as a rung sees it: the label, its confidence and the ranked
    scores the specialist returned (its top few labels)."""

    label: str
    confidence: float
    scores: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_output(cls, output: Mapping[str, Any], confidence: float | None) -> Answer:
        """From a classifier's output (``label`` and ``ranked``) and its confidence."""
        ranked = output.get("ranked") or []
        scores = {
            str(r["label"]): float(r["score"])
            for r in ranked
            if isinstance(r, Mapping) and "label" in r and "score" in r
        }
        return cls(str(output.get("label")), float(confidence or 0.0), scores)

    def score(self, label: str) -> float:
        if label == self.label:
            return self.confidence
        return self.scores.get(label, 0.0)


_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_JOIN = r"(?:but|and|because|so|although|though|while)\s+"
_CLAUSE = re.compile(rf"\s*[,;:]\s+(?:{_JOIN})?|\s+{_JOIN}", re.I)


def input_variants(text: str, count: int) -> list[str]:
    """Up to `count` versions of `text` that a sentence encoder reads differently (the text
    itself is not one of them).

    Case and punctuation changes do not count: an uncased encoder embeds them the same. So
    the variants are crops: each sentence of a longer text alone, each clause alone, then the
    text with one word left out, at positions spread over it. A short text of one or two
    words has no variant.
    """
    text = " ".join(text.split())
    candidates: list[str] = []
    sentences = [s for s in _SENTENCE.split(text) if s]
    if len(sentences) > 1:
        candidates += sentences
    clauses = [c for c in _CLAUSE.split(text) if c and len(c.split()) >= 2]
    if len(clauses) > 1:
        candidates += clauses
    words = text.split()
    if len(words) >= 3:
        # Spread the left-out words over the text: first, last, then the middle ones.
        slots = max(0, count - len(candidates))
        positions = np.linspace(0, len(words) - 1, num=min(len(words), max(slots, 1)))
        for i in dict.fromkeys(round(float(p)) for p in positions):
            candidates.append(" ".join(words[:i] + words[i + 1 :]))
    out: list[str] = []
    for candidate in candidates:
        if candidate and candidate != text and candidate not in out:
            out.append(candidate)
    return out[:count]


def vote_features(original: Answer, variants: Sequence[Answer]) -> tuple[str, list[float]]:
    """The vote's answer (of the labels answered, the one with the highest summed score over
    the original and its variants) and its features, in the order of ``VOTE_FEATURES``."""
    everyone = [original, *variants]
    labels = dict.fromkeys(a.label for a in everyone)
    winner = max(labels, key=lambda label: sum(a.score(label) for a in everyone))
    if not variants:
        return winner, [original.confidence, 1.0, original.score(winner), 1.0]
    agreement = sum(a.label == winner for a in variants) / len(variants)
    mean = sum(a.score(winner) for a in variants) / len(variants)
    return winner, [original.confidence, agreement, mean, float(winner == original.label)]


def second_opinion_features(first: Answer, second: Answer) -> tuple[str, list[float]]:
    """The second model's answer and its features, in the order of
    ``SECOND_OPINION_FEATURES``."""
    return second.label, [
        first.confidence,
        second.confidence,
        float(first.label == second.label),
        second.score(first.label),
    ]


@dataclass(frozen=True)
class RungConfidence:
    """A fitted logistic model over one rung's features and its acceptance threshold."""

    rung: str
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float
    target_precision: float
    #: on the validation escalations it was fitted on
    fitted_on: int = 0
    precision: float = 0.0
    coverage: float = 0.0
    reached: bool = False

    def score(self, features: npt.ArrayLike) -> float:
        """The probability that the rung's answer is right."""
        z = (np.asarray(features, dtype=np.float64) - self.mean) / np.asarray(self.scale)
        logit = float(z @ np.asarray(self.weights) + self.bias)
        return float(1.0 / (1.0 + np.exp(-np.clip(logit, -40, 40))))

    def accepts(self, score: float) -> bool:
        return self.reached and score >= self.threshold

    def to_json(self) -> dict[str, Any]:
        return {
            "rung": self.rung,
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "bias": self.bias,
            "threshold": self.threshold,
            "target_precision": self.target_precision,
            "fitted_on": self.fitted_on,
            "precision": self.precision,
            "coverage": self.coverage,
            "reached": self.reached,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RungConfidence:
        return cls(
            rung=str(raw["rung"]),
            features=tuple(raw["features"]),
            mean=tuple(float(v) for v in raw["mean"]),
            scale=tuple(float(v) for v in raw["scale"]),
            weights=tuple(float(v) for v in raw["weights"]),
            bias=float(raw["bias"]),
            threshold=float(raw["threshold"]),
            target_precision=float(raw["target_precision"]),
            fitted_on=int(raw.get("fitted_on", 0)),
            precision=float(raw.get("precision", 0.0)),
            coverage=float(raw.get("coverage", 0.0)),
            reached=bool(raw.get("reached", False)),
        )


def load_rung_confidences(folder: Path | None) -> dict[str, RungConfidence]:
    """The fitted rung confidences an artifact directory keeps (none when never fitted)."""
    if folder is None or not (folder / RUNGS_FILE).is_file():
        return {}
    raw = json.loads((folder / RUNGS_FILE).read_text(encoding="utf-8"))
    return {name: RungConfidence.from_json(entry) for name, entry in raw.items()}
