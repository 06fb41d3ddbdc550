"""Few-shot classification over sentence embeddings.

Each label is described by a sentence and a handful of examples. At load time the examples
are embedded and a multinomial logistic-regression head is fitted on them (a few hundred
full-batch gradient steps on a few dozen 384-d vectors: milliseconds). Scores are that head's
softmax at a temperature; the default 1 leaves them uncalibrated, so a label set of one's own
should have its thresholds tuned per graph. The built-in intents ship their fitted head, with
a temperature fitted on held-out messages.
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
    """A softmax head over sentence embeddings: one weight column and one bias per label.

    :meth:`fit` fits it on the labels' examples (the description counts as one example);
    :meth:`save` and :meth:`load` keep a fitted head, so that a fixed label file need not be
    embedded and fitted again in every process.
    """

    def __init__(
        self,
        encoder: TextEncoder,
        labels: Sequence[str],
        weights: Floats,
        bias: Floats,
        *,
        temperature: float = 1.0,
    ) -> None:
        if len(labels) < 2:
            raise ValueError("a classifier needs at least two labels")
        if weights.shape != (encoder.dim, len(labels)) or bias.shape != (len(labels),):
            raise ValueError(
                f"a head for {len(labels)} labels on {encoder.dim}-d embeddings needs weights "
                f"of shape ({encoder.dim}, {len(labels)}) and a bias of {len(labels)}; got "
                f"{weights.shape} and {bias.shape}"
            )
        if temperature <= 0:
            raise ValueError("the temperature must be positive")
        self.labels = tuple(labels)
        self.temperature = temperature
        self._encoder = encoder
        self._weights = weights.astype(np.float32)
        self._bias = bias.astype(np.float32)

    @classmethod
    def fit(
        cls,
        encoder: TextEncoder,
        labels: Mapping[str, LabelSpec],
        *,
        l2: float = 1e-3,
        steps: int = 300,
        learning_rate: float = 2.0,
        temperature: float = 1.0,
        balanced: bool = False,
    ) -> FewShotHead:
        if len(labels) < 2:
            raise ValueError("a classifier needs at least two labels")
        texts: list[str] = []
        targets: list[int] = []
        for index, spec in enumerate(labels.values()):
            for text in (spec.description, *spec.examples):
                texts.append(text)
                targets.append(index)
        weights, bias = _fit_softmax(
            encoder.encode(texts),
            np.asarray(targets),
            len(labels),
            l2=l2,
            steps=steps,
            lr=learning_rate,
            balanced=balanced,
        )
        return cls(encoder, tuple(labels), weights, bias, temperature=temperature)

    def save(self, path: Path) -> None:
        with path.open("wb") as file:
            np.savez(file, labels=np.asarray(self.labels), weights=self._weights, bias=self._bias)

    @classmethod
    def load(cls, path: Path, encoder: TextEncoder, *, temperature: float = 1.0) -> FewShotHead:
        with np.load(path) as arrays:
            labels = tuple(str(label) for label in arrays["labels"])
            return cls(encoder, labels, arrays["weights"], arrays["bias"], temperature=temperature)

    def probabilities(self, texts: Sequence[str]) -> Floats:
        return self.probabilities_of(self._encoder.encode(texts))

    def logits_of(self, features: Floats) -> Floats:
        """The head's raw logits (before the temperature), one row per embedding."""
        logits: Floats = features @ self._weights + self._bias
        return logits

    def probabilities_of(self, features: Floats) -> Floats:
        return _softmax(self.logits_of(features) / np.float32(self.temperature))


def _softmax(logits: Floats) -> Floats:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probabilities: Floats = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
    return probabilities


def _fit_softmax(
    x: Floats,
    y: npt.NDArray[np.int_],
    classes: int,
    *,
    l2: float,
    steps: int,
    lr: float,
    balanced: bool = False,
) -> tuple[Floats, Floats]:
    # Features are unit vectors, so a fixed learning rate converges without line search.
    n, d = x.shape
    w = np.zeros((d, classes), dtype=np.float32)
    b = np.zeros(classes, dtype=np.float32)
    onehot = np.eye(classes, dtype=np.float32)[y]
    # Balanced: every label weighs the same in the loss, however many examples it has.
    counts = np.bincount(y, minlength=classes).astype(np.float32)
    weight = (1.0 / (classes * counts[y]) if balanced else np.full(n, 1.0 / n)).astype(np.float32)
    for _ in range(steps):
        p = _softmax(x @ w + b)
        grad = (p - onehot) * weight[:, None]
        w -= lr * (x.T @ grad + l2 * w)
        b -= lr * grad.sum(axis=0)
    return w, b
