"""Out-of-scope scores at inference: how unlike the in-scope training data a question is.

A head trained with an out-of-scope class still answers many out-of-scope questions with an
intent, confidently: the softmax has to put its mass somewhere. A :class:`OutOfScopeDetector`
adds up standardised signals that look at the question from other sides:

- ``mahalanobis``: the squared Mahalanobis distance of the embedding to the nearest in-scope
  class mean, under one shared (shrunk) covariance (Lee et al. 2018; Podolskiy et al. 2021
  found it the strongest detector on CLINC150 with transformer encoders);
- ``oos_probability``: the calibrated probability of the head's own out-of-scope class;
- ``max_probability``: one minus the calibrated probability of the best in-scope intent.

Each signal is centred and scaled by its mean and spread on the validation split's in-scope
questions, and an answer is refused when the sum exceeds :attr:`OutOfScopeDetector.threshold`.
Fitting the detector and choosing its threshold is the training bench's job
(:mod:`orchestrator.specialists.training.out_of_scope`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from orchestrator.specialists.heads import Floats

__all__ = ["OUT_OF_SCOPE_FILE", "OutOfScopeDetector", "Signal"]

Signal = Literal["mahalanobis", "oos_probability", "max_probability"]
#: The detector's arrays, beside ``head.npz`` in an artifact directory.
OUT_OF_SCOPE_FILE = "out_of_scope.npz"


@dataclass(frozen=True, eq=False)
class OutOfScopeDetector:
    """Refuses answers to questions unlike the in-scope training data."""

    signals: tuple[Signal, ...]
    #: Mean and spread of each signal on the validation split's in-scope questions.
    centre: tuple[float, ...]
    spread: tuple[float, ...]
    threshold: float
    """An answer whose summed score exceeds this is refused (``inf``: none is)."""
    oos_index: int
    """The head's out-of-scope class."""
    #: ``x @ transform`` whitens the embedding space (a Cholesky factor of the inverse shared
    #: covariance), so the Mahalanobis distance is a Euclidean one to ``means @ transform``.
    transform: Floats | None = None
    whitened_means: Floats | None = None
    #: How the threshold was chosen and what it achieved on validation (for the model card).
    fit: dict[str, Any] | None = None

    def signal(self, name: Signal, features: Floats, probabilities: Floats) -> Floats:
        """One raw signal, higher meaning further out of scope."""
        if name == "mahalanobis":
            assert self.transform is not None and self.whitened_means is not None
            z = features @ self.transform
            m = self.whitened_means
            squared = (z * z).sum(axis=1)[:, None] - 2.0 * z @ m.T + (m * m).sum(axis=1)[None]
            out: Floats = squared.min(axis=1).astype(np.float32)
            return out
        if name == "oos_probability":
            column: Floats = probabilities[:, self.oos_index].astype(np.float32)
            return column
        in_scope = np.delete(probabilities, self.oos_index, axis=1)
        best: Floats = (1.0 - in_scope.max(axis=1)).astype(np.float32)
        return best

    def scores(self, features: Floats, probabilities: Floats) -> Floats:
        """The summed standardised signals, one per question."""
        total = np.zeros(len(features), dtype=np.float32)
        for name, centre, spread in zip(self.signals, self.centre, self.spread, strict=True):
            total += (self.signal(name, features, probabilities) - centre) / spread
        return total

    def refuses(self, features: Floats, probabilities: Floats) -> npt.NDArray[np.bool_]:
        out: npt.NDArray[np.bool_] = self.scores(features, probabilities) > self.threshold
        return out

    # -- storage -------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "signals": list(self.signals),
            "centre": list(self.centre),
            "spread": list(self.spread),
            "threshold": self.threshold,
            "oos_index": self.oos_index,
            "arrays": OUT_OF_SCOPE_FILE if self.transform is not None else None,
        } | ({"fit": self.fit} if self.fit is not None else {})

    def arrays(self) -> dict[str, Floats]:
        if self.transform is None or self.whitened_means is None:
            return {}
        return {"transform": self.transform, "whitened_means": self.whitened_means}

    @classmethod
    def from_json(cls, raw: dict[str, Any], directory: Path | None) -> OutOfScopeDetector:
        signals = tuple(raw["signals"])
        unknown = [s for s in signals if s not in get_args(Signal)]
        if unknown:
            raise ValueError(f"unknown out-of-scope signal(s) {unknown}")
        transform = means = None
        if raw.get("arrays"):
            if directory is None:
                raise ValueError("out-of-scope arrays need the artifact's directory")
            with np.load(directory / str(raw["arrays"])) as arrays:
                transform, means = arrays["transform"], arrays["whitened_means"]
        return cls(
            signals=signals,
            centre=tuple(float(c) for c in raw["centre"]),
            spread=tuple(float(s) for s in raw["spread"]),
            threshold=float(raw["threshold"]),
            oos_index=int(raw["oos_index"]),
            transform=transform,
            whitened_means=means,
            fit=raw.get("fit"),
        )
