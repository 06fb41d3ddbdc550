"""Training a specialist artifact: embed, fit heads, pick the best, calibrate, threshold, write.

The encoder stays frozen (the bundled int8 MiniLM on onnxruntime); only the head is trained,
so inference is exactly what the specialist runs. Head candidates are compared on validation
data; without a validation split a stratified share of the training data is held out, and
the chosen head is refitted on all of it for the epochs that early stopping picked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from orchestrator.specialists.artifacts import Artifact
from orchestrator.specialists.backends.encoder import TextEncoder, bundled_encoder
from orchestrator.specialists.calibration import Calibrator, Method
from orchestrator.specialists.evaluation.datasets import (
    DataError,
    TextDataset,
    check_trainable,
    stratified_split,
)
from orchestrator.specialists.heads import Head, HeadConfig
from orchestrator.specialists.out_of_scope import OutOfScopeDetector
from orchestrator.specialists.training.artifacts import write_artifact
from orchestrator.specialists.training.calibration import (
    Threshold,
    expected_calibration_error,
    fit_calibrator,
    threshold_for_precision,
)
from orchestrator.specialists.training.embeddings import DEFAULT_CACHE_DIR, split_embedder
from orchestrator.specialists.training.heads import accuracy, fit_head, macro_recall
from orchestrator.specialists.training.out_of_scope import (
    OutOfScopeSetting,
    card_section,
    choose_thresholds,
    fit_detector,
)

__all__ = [
    "SPECIALIST_OF_FORMAT",
    "FittedClassifier",
    "StepProgress",
    "TrainResult",
    "default_heads",
    "fit_classifier",
    "train_artifact",
]

#: Which specialist a dataset format trains when the user does not say.
SPECIALIST_OF_FORMAT = {
    "clinc150": "intent",
    "banking77": "intent",
    "sst2": "sentiment",
    "tweeteval": "sentiment",
}
#: A factory of progress callbacks: (description, total) -> advance(n).
StepProgress = Callable[[str, int], Callable[[int], None]]
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]


def _no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


def default_heads(balanced: bool) -> list[HeadConfig]:
    """The candidates compared on validation data.

    Linear heads over standardised features won over one-hidden-layer MLPs on CLINC150
    validation (94.5 vs 94.3 accuracy) at a fraction of the training time, so only the L2
    strength is searched by default.
    """
    return [HeadConfig(hidden=0, l2=l2, balanced=balanced) for l2 in (1e-4, 1e-3, 1e-2)]


@dataclass
class TrainResult:
    artifact: Artifact
    card: dict[str, Any]
    path: Path


@dataclass
class FittedClassifier:
    """A head chosen on validation data, its calibration and its acceptance threshold."""

    head: Head
    config: HeadConfig
    calibrator: Calibrator
    threshold: Threshold
    #: Every candidate head tried: its description, best epoch and validation score.
    tried: list[dict[str, Any]]
    #: accuracy, macro_recall, ece_before, ece_after on the validation data.
    val_metrics: dict[str, Any]
    #: Refuses questions unlike the in-scope training data (data with an out-of-scope label
    #: and out-of-scope validation questions to set its threshold on; else ``None``).
    out_of_scope: OutOfScopeDetector | None = None


def fit_classifier(
    x_fit: Floats,
    y_fit: Ints,
    x_val: Floats,
    y_val: Ints,
    classes: int,
    *,
    oos_index: int | None = None,
    macro: bool = False,
    calibration: Method = "temperature",
    class_offsets: bool = False,
    target_precision: float = 0.95,
    lower_bound: float | None = None,
    heads: Sequence[HeadConfig] | None = None,
    refit_on_all: bool = False,
    out_of_scope: OutOfScopeSetting | None = None,
    progress: StepProgress = _no_progress,
) -> FittedClassifier:
    """Pick a head on the validation features, calibrate it and choose its threshold there.

    ``oos_index`` is the "none of these" class: answering it is never accepted, and an
    out-of-scope example answered with an intent counts as an error. ``lower_bound`` (a
    confidence level) asks the threshold for a lower bound of the precision, not the measured one
    (:func:`~orchestrator.specialists.calibration.threshold_for_precision`). ``refit_on_all``
    refits the chosen head on the fit and validation features together for the epochs that
    early stopping picked (when the validation data was carved from the training data).

    With ``oos_index`` and out-of-scope validation questions an out-of-scope detector is fitted
    too, and its threshold is chosen with the confidence threshold by the rule of
    :mod:`~orchestrator.specialists.training.out_of_scope` (``out_of_scope``: its setting,
    default :class:`OutOfScopeSetting`).
    """
    score = macro_recall if macro else accuracy
    candidates = list(heads or default_heads(balanced=macro))
    tick = progress("fit heads", len(candidates))
    tried: list[dict[str, Any]] = []
    best: tuple[float, int, Head, HeadConfig] | None = None
    for config in candidates:
        head, epoch, value = fit_head(
            x_fit, y_fit, classes, config, x_val=x_val, y_val=y_val, score=score
        )
        tried.append({"head": config.describe(), "best_epoch": epoch, "val_score": value})
        if best is None or value > best[0]:
            best = (value, epoch, head, config)
        tick(1)
    assert best is not None
    _, best_epoch, head, config = best
    val_logits = head.logits(x_val)
    calibrator = fit_calibrator(val_logits, y_val, calibration, balance_classes=class_offsets)
    if refit_on_all:
        x_all = np.concatenate([x_fit, x_val])
        y_all = np.concatenate([y_fit, y_val])
        head, _, _ = fit_head(x_all, y_all, classes, config, epochs=best_epoch)

    raw = np.exp(val_logits - val_logits.max(axis=1, keepdims=True))
    raw /= raw.sum(axis=1, keepdims=True)
    cal = calibrator.probabilities(val_logits)
    pred = cal.argmax(axis=1)
    correct = pred == y_val
    eligible = pred != oos_index if oos_index is not None else np.ones(len(pred), dtype=bool)
    if oos_index is not None:
        # An out-of-scope example answered with an intent is an error; refusing it is right.
        correct = correct & eligible
    detector = None
    val_oos = y_val == oos_index if oos_index is not None else np.zeros(len(y_val), dtype=bool)
    if oos_index is None or not val_oos.any():
        threshold = threshold_for_precision(
            cal.max(axis=1), correct, target_precision, eligible=eligible, lower_bound=lower_bound
        )
    else:
        setting = out_of_scope or OutOfScopeSetting()
        raw_detector = fit_detector(x_fit, y_fit, oos_index, x_val, cal, ~val_oos, setting)
        threshold, detector = choose_thresholds(
            raw_detector,
            raw_detector.scores(x_val, cal),
            cal.max(axis=1),
            correct,
            eligible,
            val_oos,
            target=target_precision,
            lower_bound=lower_bound,
            setting=setting,
        )
    val_metrics: dict[str, Any] = {
        "accuracy": accuracy(y_val, pred),
        "macro_recall": macro_recall(y_val, pred),
        "ece_before": expected_calibration_error(raw.max(axis=1), raw.argmax(axis=1) == y_val),
        "ece_after": expected_calibration_error(cal.max(axis=1), pred == y_val),
    }
    return FittedClassifier(head, config, calibrator, threshold, tried, val_metrics, detector)


def _apply_variant(dataset: TextDataset, specialist: str, variant: str | None) -> str | None:
    if specialist != "sentiment":
        return None
    labels = set(dataset.split("train").labels)
    chosen = variant or ("three_class" if "neutral" in labels else "binary")
    if chosen not in ("binary", "three_class"):
        raise DataError(f"unknown sentiment variant {chosen!r}; use binary or three_class")
    if chosen == "three_class" and "neutral" not in labels:
        raise DataError(
            f"{dataset.source}: variant three_class needs a 'neutral' label; the data has "
            f"{', '.join(sorted(labels))}. Use --variant binary"
        )
    if chosen == "binary":
        for name, split in list(dataset.splits.items()):
            keep = [i for i, label in enumerate(split.labels) if label != "neutral"]
            dataset.splits[name] = split.subset(keep)
    return chosen


def train_artifact(
    dataset: TextDataset,
    name: str,
    target: str | Path,
    *,
    specialist: str,
    variant: str | None = None,
    target_precision: float = 0.95,
    lower_bound: float | None = None,
    calibration: Method = "temperature",
    class_offsets: bool = False,
    heads: Sequence[HeadConfig] | None = None,
    val_fraction: float = 0.15,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    command: str = "",
    encoder: TextEncoder | None = None,
    progress: StepProgress = _no_progress,
    encoder_files: dict[str, Path] | None = None,
    card_extra: dict[str, Any] | None = None,
    out_of_scope: OutOfScopeSetting | None = None,
) -> TrainResult:
    """Train, calibrate and write one artifact to `target` (atomically).

    ``class_offsets`` adds per-class logit offsets to the calibration, fitted on the held-out
    data with every class weighted the same (:func:`~orchestrator.specialists.training.
    calibration.fit_class_bias`): for macro recall when the served data drifts from the
    validation data.

    ``lower_bound`` asks the threshold for a lower confidence bound of the precision
    (:func:`fit_classifier`).

    ``out_of_scope`` sets up the out-of-scope detector of data with an out-of-scope label
    (:func:`fit_classifier`).

    ``encoder_files`` ship a fine-tuned `encoder` inside the artifact: ``encoder.onnx`` (or the
    first ``*.onnx`` name given) and ``tokenizer.json``. ``card_extra`` is merged into the card.
    """
    if specialist not in ("intent", "sentiment"):
        raise DataError(f"unknown specialist {specialist!r} to train; use intent or sentiment")
    dataset = replace(dataset, splits=dict(dataset.splits), notes=list(dataset.notes))
    variant = _apply_variant(dataset, specialist, variant)
    train = dataset.split("train")
    check_trainable(train, f"{dataset.source} (train split)")
    notes = list(dataset.notes)
    carved = "val" not in dataset.splits
    if carved:
        kept, held = stratified_split(train.labels, val_fraction, seed=0)
        fit_split, val_split = train.subset(kept), train.subset(held)
        notes.append(
            f"no validation split: {len(held)} training examples ({val_fraction:.0%} per label) "
            "were held out to pick the head and fit the calibration; the head was then "
            "refitted on all training examples"
        )
    else:
        fit_split, val_split = train, dataset.split("val")
    labels = tuple(sorted(set(train.labels)))
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted(set(val_split.labels) - set(labels))
    if unknown:
        raise DataError(
            f"{dataset.source}: validation labels not in the training data: "
            f"{', '.join(unknown[:5])}"
        )
    encoder = encoder or bundled_encoder()

    embed = split_embedder(encoder, cache_dir=cache_dir, progress=progress)
    x_fit, x_val = embed(fit_split.texts, "train"), embed(val_split.texts, "validation")
    y_fit = np.array([index[label] for label in fit_split.labels], dtype=np.int64)
    y_val = np.array([index[label] for label in val_split.labels], dtype=np.int64)
    oos = dataset.oos_label if dataset.oos_label in index else None
    fitted = fit_classifier(
        x_fit,
        y_fit,
        x_val,
        y_val,
        len(labels),
        oos_index=index[oos] if oos is not None else None,
        macro=variant == "three_class",
        calibration=calibration,
        class_offsets=class_offsets,
        target_precision=target_precision,
        lower_bound=lower_bound,
        heads=heads,
        refit_on_all=carved,
        out_of_scope=out_of_scope,
        progress=progress,
    )
    calibrator, threshold, val_metrics = fitted.calibrator, fitted.threshold, fitted.val_metrics
    ece_before, ece_after = val_metrics["ece_before"], val_metrics["ece_after"]
    artifact = Artifact(
        name=name,
        specialist=specialist,
        labels=labels,
        head=fitted.head,
        calibrator=calibrator,
        threshold=threshold.value,
        encoder_id=encoder.model_id,
        oos_label=oos,
        variant=variant,
        encoder_file=next((f for f in encoder_files or {} if f.endswith(".onnx")), None),
        out_of_scope=fitted.out_of_scope,
    )
    card: dict[str, Any] = {
        "name": name,
        "specialist": specialist,
        "variant": variant,
        "encoder": encoder.model_id,
        "head": fitted.config.describe(),
        "head_selection": fitted.tried,
        "labels": list(labels),
        "oos_label": oos,
        "data": {
            "source": dataset.source,
            "format": dataset.format,
            "splits": {k: len(v) for k, v in dataset.splits.items()},
            "notes": notes,
        },
        "calibration": {
            **calibrator.to_json(),
            "iso_x": len(calibrator.iso_x),
            "iso_y": len(calibrator.iso_y),
            "ece_before": ece_before,
            "ece_after": ece_after,
            "fitted_on": "validation",
        },
        "threshold": {
            "value": threshold.value,
            "target_precision": threshold.target_precision,
            "precision": threshold.precision,
            "coverage": threshold.coverage,
            "reached": threshold.reached,
        },
        "out_of_scope": card_section(fitted.out_of_scope),
        "metrics": {"validation": val_metrics},
        "command": command,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **(card_extra or {}),
    }
    path = write_artifact(target, artifact, card, encoder_files)
    artifact.path = path
    artifact.card = card
    return TrainResult(artifact, card, path)
