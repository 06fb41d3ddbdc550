"""Calibrated confidence at inference: a :class:`Calibrator` maps a head's logits to
probabilities (temperature scaling, an isotonic map of the top probability, per-class
offsets). Fitting one, and choosing acceptance thresholds, is the training bench's job
(:mod:`orchestrator.specialists.training.calibration`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from orchestrator.specialists.heads import Floats, softmax

__all__ = ["Calibrator", "Method"]

Method = Literal["temperature", "isotonic", "none"]


@dataclass(frozen=True)
class Calibrator:
    """Maps logits to calibrated probabilities."""

    method: Method = "none"
    temperature: float = 1.0
    #: Isotonic map of the top probability: upper x of each step and its value.
    iso_x: tuple[float, ...] = ()
    iso_y: tuple[float, ...] = ()
    #: Added to the tempered logits, one per class (empty: none); see
    #: :func:`~orchestrator.specialists.training.calibration.fit_class_bias`.
    class_bias: tuple[float, ...] = ()

    def probabilities(self, logits: Floats) -> Floats:
        tempered = logits / self.temperature
        if self.class_bias:
            tempered = (tempered + np.asarray(self.class_bias, dtype=np.float32)).astype(np.float32)
        p = softmax(tempered)
        if self.method != "isotonic" or not self.iso_x:
            return p
        top = p.max(axis=1)
        idx = np.clip(np.searchsorted(np.asarray(self.iso_x), top), 0, len(self.iso_y) - 1)
        mapped = np.clip(np.asarray(self.iso_y)[idx], 1e-4, 1.0)
        # Rescale the other labels so that each row still sums to one and keeps its ranking:
        # where the map falls under what the runner-up would then get (answers that near
        # chance), the top label stays just above the runner-up rather than losing its place.
        rest = 1.0 - top
        second = np.sort(p, axis=1)[:, -2] if p.shape[1] > 1 else np.zeros_like(top)
        tie = second / np.clip(rest + second, 1e-12, None)
        mapped = np.minimum(np.maximum(mapped, tie * (1 + 1e-5)), 1.0)
        factor = np.where(rest > 0, (1.0 - mapped) / np.clip(rest, 1e-12, None), 0.0)
        arg = p.argmax(axis=1)
        out = p * factor[:, None]
        out[np.arange(len(p)), arg] = mapped
        result: Floats = out.astype(np.float32)
        return result

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "temperature": self.temperature,
            "iso_x": list(self.iso_x),
            "iso_y": list(self.iso_y),
        } | ({"class_bias": list(self.class_bias)} if self.class_bias else {})

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Calibrator:
        return cls(
            method=raw["method"],
            temperature=float(raw["temperature"]),
            iso_x=tuple(raw.get("iso_x", ())),
            iso_y=tuple(raw.get("iso_y", ())),
            class_bias=tuple(float(b) for b in raw.get("class_bias", ())),
        )
