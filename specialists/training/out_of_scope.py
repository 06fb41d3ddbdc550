"""Fitting the out-of-scope detector and choosing its threshold, on training and validation
data only.

The detector (:class:`~orchestrator.specialists.out_of_scope.OutOfScopeDetector`) is fitted on
the in-scope training examples (class means and a shared covariance) and standardised on the
validation split's in-scope questions. Its threshold and the confidence threshold are then
chosen together on the validation split, by a rule that never looks at how much of the traffic
is out of scope (the validation split's share can be far from the served one: CLINC150 has 3%
out of scope in validation, 18% in test):

1. the accepted answers reach the target precision (the same one-sided lower bound as
   without a detector), and
2. at most :attr:`OutOfScopeSetting.max_accepted` of the validation split's out-of-scope
   questions are answered with an in-scope intent; when the precision is held by a one-sided
   lower bound, this share is held by the upper bound at the same confidence (a few accepted
   out of a hundred say little about the rate on new questions);

among the pairs of thresholds that meet both, the one that answers the most validation
questions wins (the loosest out-of-scope threshold on ties). When none can (too few
out-of-scope questions to promise the cap), the pair that keeps the precision and comes
closest to the cap wins, and the fit says ``met: false``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from orchestrator.specialists.heads import Floats, Ints
from orchestrator.specialists.out_of_scope import OutOfScopeDetector, Signal
from orchestrator.specialists.training.calibration import (
    Threshold,
    threshold_for_precision,
    wilson_lower_bound,
)

__all__ = [
    "DEFAULT_MAX_OOS_ACCEPTED",
    "OutOfScopeSetting",
    "auroc",
    "card_section",
    "choose_thresholds",
    "fit_detector",
    "oos_upper_bound",
    "setting_of",
    "whitening",
]

#: The share of the validation split's out-of-scope questions that may still be answered with
#: an intent. Set before any test run to the error budget of the default 97% precision target:
#: out-of-scope questions then get through no more often than in-scope answers may be wrong.
DEFAULT_MAX_OOS_ACCEPTED = 0.03
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, kw_only=True)
class OutOfScopeSetting:
    """How the out-of-scope detector is built and thresholded."""

    max_accepted: float = DEFAULT_MAX_OOS_ACCEPTED
    """At most this share of the validation split's out-of-scope questions may be accepted
    with an in-scope intent (0 refuses all that the thresholds can; 1 turns the cap off)."""
    signals: tuple[Signal, ...] = ("mahalanobis",)
    """The signals summed. With ``shrinkage`` the best mean AUROC on CLINC150's validation
    split, over heads on 10 examples per class and on all training examples (0.9792 and
    0.9846), of the detectors benchmarks/intent_oos_detectors.py compares (the head's own
    probabilities, kNN, and sums of them with the distance do worse there; RESULTS.md)."""
    shrinkage: float = 0.9
    """Weight of the scaled identity mixed into the shared covariance (a 384-d covariance
    from 10 examples per class needs it)."""
    candidates: int = 200
    """Out-of-scope thresholds tried: quantiles of the validation scores."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_accepted <= 1.0:
            raise ValueError(f"max_accepted {self.max_accepted}: give a share in [0, 1]")
        if not 0.0 <= self.shrinkage <= 1.0:
            raise ValueError(f"shrinkage {self.shrinkage}: give a weight in [0, 1]")

    def describe(self) -> str:
        return (
            "the pair of thresholds (confidence, out-of-scope score) that accepts the most "
            "validation questions while the one-sided lower bound of the accepted answers' "
            "precision reaches the target and the one-sided upper bound of the share of the "
            "validation split's out-of-scope questions accepted with an in-scope intent is at "
            f"most {self.max_accepted:.1%} (the share itself when no bound is asked for)"
        )


def whitening(x: Floats, y: Ints, shrinkage: float) -> tuple[Floats, Floats]:
    """A transform under which the shared-covariance Mahalanobis distance is Euclidean, and the
    class means (one row per class present in `y`, in sorted order) under it."""
    classes = np.unique(y)
    means = np.stack([x[y == c].mean(axis=0) for c in classes]).astype(np.float64)
    centred = x.astype(np.float64) - means[np.searchsorted(classes, y)]
    cov = centred.T @ centred / max(1, len(x) - len(classes))
    dim = cov.shape[0]
    cov = (1.0 - shrinkage) * cov + shrinkage * float(np.trace(cov)) / dim * np.eye(dim)
    # Jitter keeps the factorisation possible when the data spans fewer dimensions (no shrinkage).
    precision = np.linalg.inv(cov + 1e-6 * np.eye(dim))
    transform = np.linalg.cholesky((precision + precision.T) / 2)
    return transform.astype(np.float32), (means @ transform).astype(np.float32)


def fit_detector(
    x_fit: Floats,
    y_fit: Ints,
    oos_index: int,
    val_features: Floats,
    val_probabilities: Floats,
    val_in_scope: Bools,
    setting: OutOfScopeSetting,
) -> OutOfScopeDetector:
    """The detector without its threshold (it refuses nothing until
    :func:`choose_thresholds` sets one)."""
    transform = means = None
    if "mahalanobis" in setting.signals:
        in_scope = y_fit != oos_index
        transform, means = whitening(x_fit[in_scope], y_fit[in_scope], setting.shrinkage)
    raw = OutOfScopeDetector(
        signals=setting.signals,
        centre=tuple(0.0 for _ in setting.signals),
        spread=tuple(1.0 for _ in setting.signals),
        threshold=float("inf"),
        oos_index=oos_index,
        transform=transform,
        whitened_means=means,
    )
    values = [
        raw.signal(name, val_features, val_probabilities)[val_in_scope] for name in raw.signals
    ]
    return replace(
        raw,
        centre=tuple(float(v.mean()) for v in values),
        spread=tuple(max(float(v.std()), 1e-6) for v in values),
    )


def auroc(in_scope: Floats, out_of_scope: Floats) -> float:
    """The chance that an out-of-scope question scores above an in-scope one (ties count
    half)."""
    if len(in_scope) == 0 or len(out_of_scope) == 0:
        return float("nan")
    both = np.concatenate([in_scope, out_of_scope]).astype(np.float64)
    order = both.argsort(kind="stable")
    ranks = np.empty(len(both))
    ranks[order] = np.arange(1, len(both) + 1)
    # Average ranks over ties.
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    n_out = len(out_of_scope)
    u = ranks[len(in_scope) :].sum() - n_out * (n_out + 1) / 2
    return float(u / (len(in_scope) * n_out))


def oos_upper_bound(share: float, n: int, confidence: float | None) -> float:
    """The share of out-of-scope questions accepted, as the cap holds it: its one-sided Wilson
    upper bound at ``confidence``, or the share itself without one."""
    if confidence is None:
        return share
    complement = np.array([1.0 - share])
    return float(1.0 - wilson_lower_bound(complement, np.array([float(n)]), confidence)[0])


def choose_thresholds(
    detector: OutOfScopeDetector,
    oos_scores: Floats,
    confidence: Floats,
    correct: Bools,
    eligible: Bools,
    val_out_of_scope: Bools,
    *,
    target: float,
    lower_bound: float | None,
    setting: OutOfScopeSetting,
) -> tuple[Threshold, OutOfScopeDetector]:
    """The confidence threshold and the detector with its threshold, chosen together on the
    validation split (the module's rule). ``correct`` marks right answers (an out-of-scope
    question answered with an intent is wrong); ``eligible`` the answers that may be accepted
    at all (not the out-of-scope class)."""
    n_oos = max(1, int(val_out_of_scope.sum()))
    # The loosest candidate refuses nothing (finite, so the artifact's JSON stays standard).
    loosest = float(oos_scores.max()) + 1.0
    levels = np.quantile(oos_scores, np.linspace(0.5, 1.0, setting.candidates))
    candidates = sorted({*(float(v) for v in levels), loosest}, reverse=True)
    best: tuple[tuple[bool, bool, float, float, float, float], float, Threshold] | None = None
    for cut in candidates:
        kept = eligible & (oos_scores <= cut)
        if not kept.any():
            continue
        threshold = threshold_for_precision(
            confidence, correct & kept, target, eligible=kept, lower_bound=lower_bound
        )
        accepted = kept & (confidence >= threshold.value)
        oos_share = float((accepted & val_out_of_scope).sum()) / n_oos
        excess = max(0.0, oos_upper_bound(oos_share, n_oos, lower_bound) - setting.max_accepted)
        # Both rules met first; then the precision; then the cap as nearly as it can be kept
        # (too few out-of-scope questions can leave it out of reach); then the most answers;
        # then the fewest out-of-scope accepted.
        met = excess == 0.0 and threshold.reached
        rank = (met, threshold.reached, -excess, float(accepted.mean()), -oos_share, cut)
        if best is None or rank > best[0]:
            best = (rank, cut, threshold)
    assert best is not None, "no validation answer is eligible"
    (met, _, _, coverage, neg_share, _), cut, threshold = best
    refused = eligible & (oos_scores > cut)
    fit: dict[str, Any] = {
        "rule": setting.describe(),
        "max_accepted": setting.max_accepted,
        "met": met,
        "shrinkage": setting.shrinkage,
        "fitted_on": "in-scope training examples (class means, shared covariance); "
        "validation split (standardisation, thresholds)",
        "validation": {
            "questions": len(oos_scores),
            "out_of_scope": int(val_out_of_scope.sum()),
            "auroc": auroc(oos_scores[~val_out_of_scope], oos_scores[val_out_of_scope]),
            "out_of_scope_accepted": -neg_share,
            "out_of_scope_accepted_upper_bound": oos_upper_bound(-neg_share, n_oos, lower_bound),
            "refused_by_detector": {
                "out_of_scope": float((refused & val_out_of_scope).sum()) / n_oos,
                "in_scope": float((refused & ~val_out_of_scope).mean()),
            },
            "coverage": coverage,
        },
    }
    return threshold, replace(detector, threshold=cut, fit=fit)


def setting_of(detector: OutOfScopeDetector | None) -> OutOfScopeSetting:
    """The setting `detector` was fitted with (a successor version is fitted the same way);
    the default one for a version without a detector."""
    if detector is None or detector.fit is None:
        return OutOfScopeSetting()
    return OutOfScopeSetting(
        max_accepted=float(detector.fit["max_accepted"]),
        signals=detector.signals,
        shrinkage=float(detector.fit["shrinkage"]),
    )


def card_section(detector: OutOfScopeDetector | None) -> dict[str, Any] | None:
    """The model card's out-of-scope section: signals, threshold, the rule and what it
    achieved on validation (``None`` without a detector)."""
    if detector is None:
        return None
    return {"signals": list(detector.signals), "threshold": detector.threshold} | (
        detector.fit or {}
    )
