"""Few-shot classification over sentence embeddings.

Each label is described by a sentence and a handful of examples. At load time the examples
are embedded and a multinomial logistic-regression head is fitted on them (a few hundred
full-batch gradient steps on a few dozen 384-d vectors: milliseconds). Scores are that head's
softmax; they are not calibrated yet, so thresholds should be tuned per graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.specialists.backends.encoder import TextEncoder

__all__ = ["FewShotHead", "LabelSpec", "load_label_specs"]

Floats = npt.NDArray[np.float32]


class LabelSpec(BaseModel):
    """One label: what it means, and a few examples of it."""

    model_config = ConfigDict(extra="forbid")
    description: str = Field(min_length=1, description="One sentence saying what the label means.")
    examples: list[str] = Field(default_factory=list, description="A few texts with this label.")


def load_label_specs(path: Path) -> dict[str, LabelSpec]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {str(k): LabelSpec.model_validate(v) for k, v in raw.items()}


class FewShotHead:
    """A softmax head fitted on embedded examples; the description counts as one example."""

    def __init__(
        self,
        encoder: TextEncoder,
        labels: Mapping[str, LabelSpec],
        *,
        l2: float = 1e-3,
        steps: int = 300,
        learning_rate: float = 2.0,
    ) -> None:
        if len(labels) < 2:
            raise ValueError("a classifier needs at least two labels")
        self.labels = tuple(labels)
        texts: list[str] = []
        targets: list[int] = []
        for index, spec in enumerate(labels.values()):
            for text in (spec.description, *spec.examples):
                texts.append(text)
                targets.append(index)
        features = encoder.encode(texts)
        self._encoder = encoder
        self._weights, self._bias = _fit_softmax(
            features, np.asarray(targets), len(self.labels), l2=l2, steps=steps, lr=learning_rate
        )

    def probabilities(self, texts: Sequence[str]) -> Floats:
        return self.probabilities_of(self._encoder.encode(texts))

    def probabilities_of(self, features: Floats) -> Floats:
        logits = features @ self._weights + self._bias
        return _softmax(logits)


def _softmax(logits: Floats) -> Floats:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probabilities: Floats = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
    return probabilities


def _fit_softmax(
    x: Floats, y: npt.NDArray[np.int_], classes: int, *, l2: float, steps: int, lr: float
) -> tuple[Floats, Floats]:
    # Features are unit vectors, so a fixed learning rate converges without line search.
    n, d = x.shape
    w = np.zeros((d, classes), dtype=np.float32)
    b = np.zeros(classes, dtype=np.float32)
    onehot = np.eye(classes, dtype=np.float32)[y]
    for _ in range(steps):
        p = _softmax(x @ w + b)
        grad = (p - onehot) / n
        w -= lr * (x.T @ grad + l2 * w)
        b -= lr * grad.sum(axis=0)
    return w, b
