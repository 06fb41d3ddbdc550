"""What escalating the least trusted function calls buys: the risk-coverage curve of a set
of scored answers and the figures at the specialist's acceptance threshold.

An answer is kept when it passes verification and its confidence reaches the threshold;
every other answer escalates. The curve keeps verified answers first, most confident first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from orchestrator.specialists.evaluation.classifiers import risk_coverage

__all__ = ["kept_answers"]


def kept_answers(rows: Sequence[Mapping[str, Any]], threshold: float | None) -> dict[str, Any]:
    """``risk_coverage`` of rows holding ``right``, ``verified``, ``confidence`` and
    ``relevant`` (a function serves the request); with a threshold, the share of all answers
    and of the relevant requests that is kept, and how often the kept answers are right."""
    if not rows:
        return {}
    right = np.array([bool(r["right"]) for r in rows])
    verified = np.array([bool(r["verified"]) for r in rows])
    confidence = np.array([float(r["confidence"]) for r in rows])
    relevant = np.array([bool(r["relevant"]) for r in rows])
    # Verified answers are kept before any that failed verification.
    trust = np.where(verified, confidence, confidence - 2.0)
    report: dict[str, Any] = {"risk_coverage": risk_coverage(trust, right)}
    if threshold is not None:
        kept = verified & (confidence >= threshold)
        report["threshold"] = threshold
        report["kept"] = float(kept.mean())
        report["kept_relevant"] = float((kept & relevant).sum() / max(relevant.sum(), 1))
        report["kept_accuracy"] = float(right[kept].mean()) if kept.any() else 0.0
    return report
