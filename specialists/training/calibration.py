"""Fitting calibrated confidence: temperature scaling, isotonic regression, ECE, thresholds.

A head's softmax is usually over- or under-confident. The calibrator is fitted on validation
data that the head did not train on, and the acceptance threshold is then chosen on the
calibrated confidences for a target precision of the accepted answers.

With ``balance_classes`` the calibrator also carries one offset per class, fitted on the same
held-out logits with every class weighted the same. It moves the class boundaries, so it can
change answers: meant for macro recall when the served data drifts from the validation data
(on TweetEval it adds 0.5-2.5 points on the test tweets but does not help on held-out
validation tweets; benchmarks/RESULTS.md has the numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from orchestrator.specialists.calibration import Calibrator, Method
from orchestrator.specialists.heads import Floats, softmax

__all__ = [
    "Threshold",
    "expected_calibration_error",
    "fit_calibrator",
    "fit_class_bias",
    "threshold_for_precision",
    "wilson_lower_bound",
]


def expected_calibration_error(
    confidence: npt.NDArray[np.floating[Any]], correct: npt.NDArray[np.bool_], bins: int = 15
) -> float:
    """ECE over equal-width confidence bins: sum of |accuracy - confidence| weighted by size."""
    if len(confidence) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def _nll(logits: Floats, y: npt.NDArray[np.int64], temperature: float) -> float:
    p = softmax(logits / temperature)
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())


def _balanced_nll(logits: Floats, y: npt.NDArray[np.int64], bias: npt.NDArray[np.float64]) -> float:
    """Mean negative log-likelihood in which every class weighs the same."""
    p = softmax((logits + bias).astype(np.float32))
    picked = -np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))
    classes = np.unique(y)
    return float(np.mean([picked[y == c].mean() for c in classes]))


def fit_class_bias(
    logits: Floats, y: npt.NDArray[np.int64], *, steps: int = 500
) -> tuple[float, ...]:
    """Per-class logit offsets that minimise the class-balanced NLL on held-out logits.

    The loss is convex in the offsets, so gradient descent converges; the step grows while the
    loss falls and halves when it would rise.
    The offsets are centred (they only matter relative to each other). A class absent from
    `y` keeps offset 0.
    """
    k = logits.shape[1]
    bias = np.zeros(k)
    present = np.unique(y)
    if len(present) < 2:
        return tuple(0.0 for _ in range(k))
    onehot = np.zeros((len(y), k))
    onehot[np.arange(len(y)), y] = 1.0
    weight = np.zeros(len(y))
    for c in present:
        weight[y == c] = 1.0 / (len(present) * np.sum(y == c))
    loss, step = _balanced_nll(logits, y, bias), 1.0
    for _ in range(steps):
        p = softmax((logits + bias).astype(np.float32)).astype(np.float64)
        grad = (weight[:, None] * (p - onehot)).sum(axis=0)
        grad[[c for c in range(k) if c not in present]] = 0.0
        if np.abs(grad).max() < 1e-6:
            break
        while step > 1e-6:
            trial = bias - step * grad
            trial_loss = _balanced_nll(logits, y, trial)
            if trial_loss < loss:
                bias, loss = trial, trial_loss
                step *= 1.5
                break
            step /= 2
        else:
            break
    bias -= bias[present].mean()
    bias[[c for c in range(k) if c not in present]] = 0.0
    return tuple(float(b) for b in bias)


def _pav(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> tuple[list[float], list[float]]:
    """Pool-adjacent-violators: a non-decreasing step function fitted to (x, y)."""
    order = np.argsort(x, kind="stable")
    blocks: list[list[float]] = []  # [sum_y, count, max_x]
    for i in order:
        blocks.append([float(y[i]), 1.0, float(x[i])])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            s, c, hi = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
            blocks[-1][2] = hi
    return [b[2] for b in blocks], [b[0] / b[1] for b in blocks]


def fit_calibrator(
    logits: Floats, y: npt.NDArray[np.int64], method: Method, *, balance_classes: bool = False
) -> Calibrator:
    """Fit on held-out logits; temperature minimises the negative log-likelihood.

    ``balance_classes`` adds per-class offsets (:func:`fit_class_bias`) after the temperature,
    for tasks scored by macro recall; the isotonic map is then fitted on the offset logits.
    """
    if method == "none" or len(y) == 0:
        if balance_classes and len(y):
            return Calibrator(class_bias=fit_class_bias(logits, y))
        return Calibrator()
    # NLL in log-temperature is smooth and unimodal in practice: a coarse grid, then a fine one.
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 60))
    best = min(grid, key=lambda t: _nll(logits, y, float(t)))
    fine = best * np.exp(np.linspace(-0.12, 0.12, 25))
    temperature = float(min(fine, key=lambda t: _nll(logits, y, float(t))))
    bias = fit_class_bias(logits / temperature, y) if balance_classes else ()
    if method == "temperature":
        return Calibrator("temperature", temperature, class_bias=bias)
    p = Calibrator("temperature", temperature, class_bias=bias).probabilities(logits)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    xs, ys = _pav(p.max(axis=1).astype(np.float64), correct)
    return Calibrator("isotonic", temperature, tuple(xs), tuple(ys), class_bias=bias)


def wilson_lower_bound(
    share: npt.NDArray[np.float64], n: npt.NDArray[np.float64], confidence: float
) -> npt.NDArray[np.float64]:
    """One-sided Wilson score lower bound of a binomial share observed on `n` trials."""
    z = NormalDist().inv_cdf(confidence)
    n = np.maximum(n, 1.0)
    centre = share + z * z / (2 * n)
    spread = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    bound: npt.NDArray[np.float64] = (centre - spread) / (1 + z * z / n)
    return bound


@dataclass(frozen=True)
class Threshold:
    """An acceptance threshold and what it achieved on the data it was chosen on."""

    value: float
    target_precision: float
    precision: float
    coverage: float
    reached: bool


def threshold_for_precision(
    confidence: npt.NDArray[np.floating[Any]],
    correct: npt.NDArray[np.bool_],
    target: float,
    *,
    eligible: npt.NDArray[np.bool_] | None = None,
    min_accepted: int = 10,
    lower_bound: float | None = None,
) -> Threshold:
    """The lowest threshold whose accepted answers reach `target` precision.

    An answer is accepted when it is ``eligible`` (e.g. not already "out of scope") and its
    confidence is at least the threshold; precision is the share of accepted answers that are
    correct. When no threshold reaches the target, the most precise one is returned with
    ``reached=False``.

    With ``lower_bound`` (a confidence level, e.g. 0.95) the precision that must reach the
    target is its one-sided Wilson lower bound at that level, not the measured share: on a few
    hundred held-out answers the measured share is noisy, and new data should still see the
    target. ``precision`` then reports the bound.
    """
    eligible = np.ones(len(confidence), dtype=bool) if eligible is None else eligible
    conf = np.asarray(confidence, dtype=np.float64)
    order = np.argsort(-conf, kind="stable")
    ok = (correct & eligible)[order].astype(np.float64)
    el = eligible[order].astype(np.float64)
    accepted = np.cumsum(el)
    precision = np.cumsum(ok) / np.maximum(accepted, 1)
    if lower_bound is not None:
        precision = wilson_lower_bound(precision, accepted, lower_bound)
    valid = accepted >= min(min_accepted, max(1, int(el.sum())))
    # Only cut between distinct confidences: equal scores are accepted or refused together.
    last_of_tie = np.r_[conf[order][1:] != conf[order][:-1], True]
    candidates = np.flatnonzero(valid & last_of_tie)
    if len(candidates) == 0:
        return Threshold(1.0, target, 0.0, 0.0, False)
    meets = candidates[precision[candidates] >= target]
    k = int(meets.max()) if len(meets) else int(candidates[np.argmax(precision[candidates])])
    n_el = max(1.0, float(el.sum()))
    return Threshold(
        value=float(conf[order][k]),
        target_precision=target,
        precision=float(precision[k]),
        coverage=float(accepted[k] / n_el),
        reached=bool(len(meets)),
    )
