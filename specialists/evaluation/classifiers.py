"""Evaluating a trained artifact: accuracy, macro-F1/recall, out-of-scope recall, calibration,
risk-coverage, latency and throughput, and PNG plots (matplotlib, Agg backend).

Quality metrics use the dataset's embeddings (cached); latency and throughput are measured
through the specialist itself with a fresh encoder, so no result comes from a cache.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from orchestrator.specialists.artifacts import Artifact, artifact_encoder
from orchestrator.specialists.backends.encoder import TextEncoder
from orchestrator.specialists.evaluation.datasets import DataError, Split
from orchestrator.specialists.evaluation.plotting import pyplot
from orchestrator.specialists.heads import softmax
from orchestrator.specialists.training.calibration import expected_calibration_error
from orchestrator.specialists.training.embeddings import DEFAULT_CACHE_DIR, embed_texts
from orchestrator.specialists.training.train import StepProgress

__all__ = [
    "classification_metrics",
    "evaluate_artifact",
    "risk_coverage",
    "write_plots",
]

Floats = npt.NDArray[np.float32]


def _noop(description: str, total: int) -> Any:
    return lambda n: None


def classification_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None = None
) -> dict[str, float]:
    """Accuracy, macro-F1 and macro recall over `labels` (default: the labels in `y_true`)."""
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    classes = list(labels) if labels is not None else sorted(set(y_true))
    truth, pred = np.asarray(y_true), np.asarray(y_pred)
    f1s: list[float] = []
    recalls: list[float] = []
    for c in classes:
        tp = float(((pred == c) & (truth == c)).sum())
        fp = float(((pred == c) & (truth != c)).sum())
        fn = float(((pred != c) & (truth == c)).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return {
        "accuracy": float((truth == pred).mean()) if len(truth) else 0.0,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "macro_recall": float(np.mean(recalls)) if recalls else 0.0,
    }


def per_class_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, dict[str, float]]:
    """For each label: its support, how often it was predicted, precision and recall. A drift
    shows here first ("negative" predicted for 56% of texts where 32% are negative)."""
    truth, pred = np.asarray(y_true), np.asarray(y_pred)
    rows: dict[str, dict[str, float]] = {}
    for c in labels:
        tp = float(((pred == c) & (truth == c)).sum())
        support, predicted = float((truth == c).sum()), float((pred == c).sum())
        rows[c] = {
            "support": support,
            "predicted": predicted,
            "precision": tp / predicted if predicted else 0.0,
            "recall": tp / support if support else 0.0,
        }
    return rows


def risk_coverage(
    confidence: npt.NDArray[np.floating[Any]], correct: npt.NDArray[np.bool_], points: int = 101
) -> dict[str, list[float]]:
    """Accuracy of the accepted answers when the least confident share is escalated."""
    order = np.argsort(-np.asarray(confidence), kind="stable")
    hits = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    escalated = np.linspace(0.0, 0.99, points)
    kept = np.maximum(1, np.round((1.0 - escalated) * len(order)).astype(int))
    return {"escalated": escalated.tolist(), "accuracy": hits[kept - 1].tolist()}


def _accuracy_at(curve: dict[str, list[float]], share: float) -> float:
    i = int(np.argmin(np.abs(np.asarray(curve["escalated"]) - share)))
    return curve["accuracy"][i]


def _fresh_specialist(artifact: Artifact, encoder: TextEncoder) -> Any:
    # Imported here: the specialist modules import this package's siblings.
    from orchestrator.specialists.intent import IntentSpecialist
    from orchestrator.specialists.sentiment import SentimentSpecialist

    cls = IntentSpecialist if artifact.specialist == "intent" else SentimentSpecialist
    assert artifact.path is not None
    spec = cls({"artifact": str(artifact.path)}, encoder=encoder)
    spec.ensure_loaded()
    return spec


def _timing(artifact: Artifact, texts: list[str]) -> dict[str, float]:
    from orchestrator.specialists._base import TextInput

    inputs = [TextInput(text=t) for t in texts]
    # Fresh encoders: their caches have never seen these texts.
    single = _fresh_specialist(artifact, artifact_encoder(artifact, fresh=True))
    single.predict_batch(inputs[:2])  # warm-up: first run allocates onnxruntime buffers
    times: list[float] = []
    for item in inputs[2:]:
        start = time.perf_counter()
        single.predict_batch([item])
        times.append((time.perf_counter() - start) * 1000)
    batched = _fresh_specialist(artifact, artifact_encoder(artifact, fresh=True))
    start = time.perf_counter()
    for i in range(0, len(inputs), 32):
        batched.predict_batch(inputs[i : i + 32])
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(times, n=20)
    return {
        "latency_p50_ms": statistics.median(times),
        "latency_p95_ms": q[18],
        "throughput_batch32_per_s": len(inputs) / elapsed,
    }


def evaluate_artifact(
    artifact: Artifact,
    split: Split,
    *,
    oos_label: str | None = None,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    latency_samples: int = 200,
    progress: StepProgress = _noop,
) -> dict[str, Any]:
    """All metrics of `artifact` on `split`; `oos_label` names the data's out-of-scope label."""
    if len(split) == 0:
        raise DataError("the evaluation split is empty")
    known = set(artifact.labels) | ({oos_label} if oos_label else set())
    unknown = sorted(set(split.labels) - known)
    if unknown:
        raise DataError(
            f"labels in the evaluation data that the artifact does not know: "
            f"{', '.join(unknown[:5])}; was it trained on this dataset?"
        )
    encoder = artifact_encoder(artifact)
    x = embed_texts(
        encoder, split.texts, cache_dir=cache_dir, progress=progress("embed", len(split))
    )
    logits = artifact.head.logits(x)
    raw = softmax(logits)
    cal = artifact.probabilities(x)
    labels = np.asarray(artifact.labels)
    truth = np.asarray(split.labels)
    argmax = labels[cal.argmax(axis=1)]
    conf = cal.max(axis=1)
    model_oos = artifact.oos_label
    # Refused: under the threshold, the out-of-scope class, or the out-of-scope detector's.
    refused = ~artifact.accepted(x)[2]
    answer = np.where(refused, oos_label or "", argmax) if model_oos is not None else argmax
    metrics: dict[str, Any] = {"examples": len(split)}
    metrics.update(classification_metrics(list(truth), list(argmax), sorted(set(truth))))
    metrics["ece_before"] = expected_calibration_error(
        raw.max(axis=1), labels[raw.argmax(axis=1)] == truth
    )
    metrics["ece_after"] = expected_calibration_error(conf, argmax == truth)
    metrics["threshold"] = artifact.threshold
    in_scope = truth != oos_label if oos_label else np.ones(len(truth), dtype=bool)
    if oos_label is not None and (~in_scope).any():
        metrics["in_scope_accuracy_no_threshold"] = float(
            (argmax[in_scope] == truth[in_scope]).mean()
        )
        metrics["in_scope_accuracy"] = float((answer[in_scope] == truth[in_scope]).mean())
        metrics["oos_recall_no_threshold"] = float((argmax[~in_scope] == model_oos).mean())
        metrics["oos_recall"] = float(refused[~in_scope].mean())
    accepted = ~refused
    metrics["coverage_at_threshold"] = float(accepted[in_scope].mean())
    metrics["accepted_accuracy_at_threshold"] = (
        float((argmax[in_scope & accepted] == truth[in_scope & accepted]).mean())
        if (in_scope & accepted).any()
        else 0.0
    )
    curve = risk_coverage(conf[in_scope], argmax[in_scope] == truth[in_scope])
    metrics["accuracy_at_10pct_escalated"] = _accuracy_at(curve, 0.10)
    if latency_samples:
        texts = list(dict.fromkeys(split.texts))[: latency_samples + 2]
        metrics.update(_timing(artifact, texts))
    shown = answer if model_oos else argmax
    return {
        "metrics": metrics,
        "per_class": per_class_metrics(list(truth), list(shown), sorted(set(truth) | set(shown))),
        "risk_coverage": curve,
        "confusion": {"truth": list(truth), "pred": list(shown)},
    }


def write_plots(
    report: dict[str, Any], folder: str | Path, title: str, *, top: int = 20
) -> list[Path]:
    """Risk-coverage and confusion PNGs; the confusion plot shows the `top` most confused labels."""
    plt = pyplot()

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    curve = report["risk_coverage"]
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    ax.plot([100 * e for e in curve["escalated"]], [100 * a for a in curve["accuracy"]], lw=2)
    ax.axvline(10, color="grey", ls="--", lw=1, label="10% escalated")
    ax.set_xlabel("share escalated (least confident first), %")
    ax.set_ylabel("accuracy of accepted answers, %")
    ax.set_title(f"{title}: risk-coverage")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    rc = folder / "risk_coverage.png"
    fig.savefig(rc)
    plt.close(fig)

    truth = np.asarray(report["confusion"]["truth"])
    pred = np.asarray(report["confusion"]["pred"])
    errors: dict[str, int] = {}
    for t, p in zip(truth, pred, strict=True):
        if t != p:
            errors[t] = errors.get(t, 0) + 1
            errors[p] = errors.get(p, 0) + 1
    classes = sorted(set(truth) | set(pred))
    if len(classes) > top:
        classes = sorted(sorted(errors, key=lambda c: -errors[c])[:top])
    idx = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for t, p in zip(truth, pred, strict=True):
        if t in idx and p in idx:
            matrix[idx[t], idx[p]] += 1
    size = max(5.0, 0.45 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size), dpi=110)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if matrix[i, j]:
                color = "white" if matrix[i, j] > matrix.max() / 2 else "black"
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7, color=color)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    subset = "" if len(classes) == len(set(truth) | set(pred)) else f" ({top} most confused labels)"
    ax.set_title(f"{title}: confusion{subset}")
    fig.tight_layout()
    cm = folder / "confusion.png"
    fig.savefig(cm)
    plt.close(fig)
    return [rc, cm]
