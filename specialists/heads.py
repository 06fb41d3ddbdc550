"""Classification heads over frozen sentence embeddings: what inference needs, in numpy.

A head is a softmax regression (``hidden=0``) or a one-hidden-layer MLP over standardised
embeddings. This module applies one; fitting it (Adam on mini-batches, early stopping) is
the training bench's job (:mod:`orchestrator.specialists.training.heads`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Floats", "Head", "HeadConfig", "Ints", "softmax"]

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class HeadConfig:
    """Hyper-parameters of one head."""

    hidden: int = 0
    """Width of the hidden layer; 0 means a linear softmax head."""
    l2: float = 1e-4
    """L2 penalty on the weights (per example)."""
    dropout: float = 0.0
    """Dropout on the hidden layer while training."""
    epochs: int = 40
    """Upper bound on passes over the data; early stopping usually ends sooner."""
    patience: int = 8
    """Stop after this many epochs without a better validation score."""
    batch_size: int = 128
    learning_rate: float = 1e-3
    balanced: bool = False
    """Weight examples by inverse class frequency (helps macro recall on skewed data)."""
    seed: int = 0

    def describe(self) -> str:
        kind = f"mlp{self.hidden}" if self.hidden else "linear"
        extra = ", balanced" if self.balanced else ""
        return f"{kind} (l2={self.l2:g}, dropout={self.dropout:g}{extra})"


def softmax(logits: Floats) -> Floats:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: Floats = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
    return out


class Head:
    """A trained head: standardisation, optional hidden layer, softmax logits."""

    def __init__(self, params: dict[str, Floats], config: HeadConfig) -> None:
        self.params = params
        self.config = config

    @property
    def classes(self) -> int:
        return int(self.params["b_out"].shape[0])

    def logits(self, x: Floats) -> Floats:
        """Raw (uncalibrated) logits, one row per embedding."""
        h = (x - self.params["mean"]) / self.params["scale"]
        if self.config.hidden:
            h = np.maximum(h @ self.params["w_hidden"] + self.params["b_hidden"], 0.0)
        out: Floats = (h @ self.params["w_out"] + self.params["b_out"]).astype(np.float32)
        return out

    def state(self) -> dict[str, Any]:
        return {"config": asdict(self.config)}

    @classmethod
    def from_state(cls, state: dict[str, Any], arrays: dict[str, Floats]) -> Head:
        return cls(dict(arrays), HeadConfig(**state["config"]))
