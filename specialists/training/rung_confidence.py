"""Fitting an escalation rung's confidence on validation escalations, and writing the fits
beside an artifact (``rungs.json``); the run-time side that applies them is
``specialists/rung_confidence.py``."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from orchestrator.specialists.rung_confidence import RUNGS_FILE, RungConfidence
from orchestrator.specialists.training.calibration import threshold_for_precision

__all__ = ["fit_rung_confidence", "save_rung_confidences"]

Floats = npt.NDArray[np.float64]


def _logistic(z: Floats, y: Floats, l2: float, steps: int = 2000) -> tuple[Floats, float]:
    """L2-penalised logistic regression by gradient descent (convex; a few features)."""
    w = np.zeros(z.shape[1])
    b = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w + b, -40, 40)))
        w -= 0.5 * (z.T @ (p - y) / len(y) + l2 * w)
        b -= 0.5 * float((p - y).mean())
    return w, b


def fit_rung_confidence(
    rung: str,
    names: Sequence[str],
    features: npt.ArrayLike,
    correct: npt.ArrayLike,
    target_precision: float,
    *,
    l2: float = 1e-2,
    min_accepted: int = 10,
) -> RungConfidence:
    """Fit the rung's confidence on validation escalations: `features` (one row per item) and
    whether the rung's answer was `correct`; the threshold is the lowest score whose accepted
    answers reach `target_precision` (``reached`` is False when none does)."""
    x = np.asarray(features, dtype=np.float64).reshape(-1, len(names))
    y = np.asarray(correct, dtype=bool)
    if len(y) == 0:
        return RungConfidence(
            rung,
            tuple(names),
            (0.0,) * len(names),
            (1.0,) * len(names),
            (0.0,) * len(names),
            0.0,
            1.0,
            target_precision,
        )
    mean = x.mean(axis=0)
    # A feature that never varied on validation says nothing: it must not blow up at run time.
    std = x.std(axis=0)
    scale = np.where(std > 1e-6, std, 1.0)
    w, b = _logistic((x - mean) / scale, y.astype(np.float64), l2)
    fitted = RungConfidence(
        rung,
        tuple(names),
        tuple(mean.tolist()),
        tuple(scale.tolist()),
        tuple(w.tolist()),
        b,
        1.0,
        target_precision,
    )
    scores = np.array([fitted.score(row) for row in x])
    cut = threshold_for_precision(scores, y, target_precision, min_accepted=min_accepted)
    return RungConfidence(
        rung=rung,
        features=tuple(names),
        mean=fitted.mean,
        scale=fitted.scale,
        weights=fitted.weights,
        bias=fitted.bias,
        threshold=cut.value,
        target_precision=target_precision,
        fitted_on=len(y),
        precision=cut.precision,
        coverage=cut.coverage,
        reached=cut.reached,
    )


def save_rung_confidences(folder: Path, fitted: Mapping[str, RungConfidence]) -> None:
    """Write them beside the artifact (replaced atomically)."""
    text = json.dumps({name: f.to_json() for name, f in fitted.items()}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{RUNGS_FILE}.tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, folder / RUNGS_FILE)
