"""Distillation: a candidate version from the base data plus teacher labels, and the gate that
decides whether it replaces the current version.

The teacher's labels come from escalations (the frontier model, a person, a stronger rung).
A stable share of them is held out and never trained on: the gate compares the candidate with
the current version there, at the same coverage, and on the base validation split. The
candidate is calibrated and thresholded on the base validation split, which is drawn like the
traffic; the escalated items are not (they are the ones the current version found hard).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from orchestrator.specialists.artifacts import Artifact, artifact_encoder, load_artifact
from orchestrator.specialists.calibration import Method
from orchestrator.specialists.evaluation.datasets import Split, TextDataset
from orchestrator.specialists.heads import HeadConfig
from orchestrator.specialists.training.artifacts import rewrite_model_card
from orchestrator.specialists.training.calibration import Threshold
from orchestrator.specialists.training.embeddings import embed_texts
from orchestrator.specialists.training.out_of_scope import (
    OutOfScopeSetting,
    card_section,
    setting_of,
)
from orchestrator.specialists.training.train import FittedClassifier, fit_classifier
from orchestrator.specialists.versions import VersionStore

if TYPE_CHECKING:
    from orchestrator.specialists.training.finetune import FinetuneConfig

__all__ = [
    "NEVER_ACCEPT",
    "DistillData",
    "DistillOutcome",
    "FinetunedCandidate",
    "GateDecision",
    "PromotionRule",
    "accepted_ranking",
    "classifier_artifact",
    "distill_candidate",
    "finetuned_candidate",
    "held_out",
    "lineage",
    "promotion_gate",
    "selective_accuracy",
    "served_threshold",
]

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]

#: The threshold of a version whose answers never reached the target precision on validation:
#: above every calibrated confidence, so all its answers escalate.
NEVER_ACCEPT = 1.000001
#: Fewer held-out teacher labels than this say too little to promote on.
MIN_HELD_OUT = 20


def held_out(key: str, share: float) -> bool:
    """Whether the teacher label keyed `key` belongs to the held-out slice (stable: the same
    key lands on the same side in every distillation)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def served_threshold(threshold: Threshold) -> float:
    """The threshold a distilled version serves with: the chosen one when it reached its
    target precision, :data:`NEVER_ACCEPT` otherwise (a version that cannot keep its promise
    answers nothing on its own)."""
    return threshold.value if threshold.reached else NEVER_ACCEPT


def classifier_artifact(
    like: Artifact | None,
    fitted: FittedClassifier,
    *,
    name: str = "",
    labels: Sequence[str] = (),
    encoder_id: str = "",
    oos_label: str | None = None,
) -> Artifact:
    """An intent/sentiment artifact around a fitted head: the label set, encoder and kind of
    `like` (the version it succeeds), or those given for a first version."""
    return Artifact(
        name=like.name if like else name,
        specialist=like.specialist if like else "intent",
        labels=like.labels if like else tuple(labels),
        head=fitted.head,
        calibrator=fitted.calibrator,
        threshold=served_threshold(fitted.threshold),
        encoder_id=like.encoder_id if like else encoder_id,
        oos_label=like.oos_label if like else oos_label,
        variant=like.variant if like else None,
        out_of_scope=fitted.out_of_scope,
    )


@dataclass(frozen=True, kw_only=True)
class PromotionRule:
    """When a candidate replaces the current version."""

    min_gain: float = 0.0
    """On the held-out teacher labels the candidate must beat the current version by more
    than this, at its own coverage (against the current version's most confident answers)
    or over all of them while not falling behind at its coverage."""
    max_base_drop: float = 0.0
    """How far its accuracy on the base validation split may fall below the current one's."""
    max_answered_drop: float = 0.0
    """How far the share of the base validation split that the candidate answers at its
    threshold may fall below the current version's. Both thresholds hold the same precision
    bound, so a candidate that answers less only escalates more."""
    min_held_out: int = MIN_HELD_OUT
    """Fewer held-out teacher labels than this: no promotion (too little to judge on)."""

    def describe(self) -> str:
        return (
            f"held-out teacher labels (at least {self.min_held_out}): accuracy at the "
            f"candidate's coverage >= current's, and it or the accuracy over all of them > "
            f"current + {self.min_gain:g}; base validation accuracy >= current - "
            f"{self.max_base_drop:g}; share of it answered >= current - "
            f"{self.max_answered_drop:g}; threshold reaches its target precision"
        )


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    numbers: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"promote": self.promote, "reason": self.reason, **self.numbers}


def accepted_ranking(artifact: Artifact, x: Floats) -> tuple[Ints, Floats, npt.NDArray[np.bool_]]:
    """Predicted class indices, the score answers are accepted by, and which answers the
    artifact accepts (:meth:`Artifact.accepted`)."""
    return artifact.accepted(x)


def selective_accuracy(
    score: Floats, correct: npt.NDArray[np.bool_], coverage: float
) -> float | None:
    """Accuracy of the `coverage` share of answers with the highest scores (``None``: none)."""
    k = round(coverage * len(score))
    if k == 0:
        return None
    order = np.argsort(-score, kind="stable")[:k]
    return float(correct[order].mean())


def _correct(artifact: Artifact, pred: Ints, truth: Sequence[str]) -> npt.NDArray[np.bool_]:
    names = np.asarray(artifact.labels)[pred]
    return np.asarray(names == np.asarray(truth, dtype=object), dtype=bool)


def promotion_gate(
    current: Artifact,
    candidate: Artifact,
    *,
    held_x: Floats,
    held_y: Sequence[str],
    val_x: Floats,
    val_y: Sequence[str],
    rule: PromotionRule,
    candidate_threshold: Threshold | None = None,
    candidate_held_x: Floats | None = None,
    candidate_val_x: Floats | None = None,
) -> GateDecision:
    """Compare `candidate` with `current` on held-out teacher labels at the same coverage and
    on the base validation split; promote only when it is better there and no worse here.

    ``candidate_held_x`` and ``candidate_val_x`` are the candidate's own features when it runs
    another encoder than the current version (a fine-tuned one)."""
    own_held = held_x if candidate_held_x is None else candidate_held_x
    own_val = val_x if candidate_val_x is None else candidate_val_x
    numbers: dict[str, Any] = {"held_out": len(held_y), "rule": rule.describe()}
    cur_pred, cur_score, _ = accepted_ranking(current, held_x)
    cand_pred, cand_score, cand_accepts = accepted_ranking(candidate, own_held)
    # The coverage the candidate would run at on these items; all of them if it accepts none.
    coverage = float(cand_accepts.mean()) if len(held_y) and cand_accepts.any() else 1.0
    cand_right = _correct(candidate, cand_pred, held_y)
    cur_right = _correct(current, cur_pred, held_y)
    cand_held = selective_accuracy(cand_score, cand_right, coverage)
    cur_held = selective_accuracy(cur_score, cur_right, coverage)
    cand_all = float(cand_right.mean()) if len(held_y) else 0.0
    cur_all = float(cur_right.mean()) if len(held_y) else 0.0
    val_cur_pred, _, val_cur_accepts = accepted_ranking(current, val_x)
    val_cand_pred, _, val_cand_accepts = accepted_ranking(candidate, own_val)
    val_cur = float(_correct(current, val_cur_pred, val_y).mean())
    val_cand = float(_correct(candidate, val_cand_pred, val_y).mean())
    answered_cur = float(val_cur_accepts.mean()) if len(val_y) else 0.0
    answered_cand = float(val_cand_accepts.mean()) if len(val_y) else 0.0
    numbers |= {
        "coverage": coverage,
        "held_out_accuracy": {"current": cur_held, "candidate": cand_held},
        "held_out_accuracy_all": {"current": cur_all, "candidate": cand_all},
        "validation_accuracy": {"current": val_cur, "candidate": val_cand},
        "validation_answered": {"current": answered_cur, "candidate": answered_cand},
    }
    if candidate_threshold is not None:
        numbers["threshold"] = asdict(candidate_threshold)
    if len(held_y) < rule.min_held_out:
        return GateDecision(
            False,
            f"only {len(held_y)} held-out teacher labels (the rule needs {rule.min_held_out}); "
            "the current version stays",
            numbers,
        )
    # Better: more accurate at the candidate's coverage, or as accurate there and more
    # accurate over all held-out labels (a few dozen items at a low coverage often tie).
    better = (
        cand_held is not None
        and cur_held is not None
        and cand_held >= cur_held
        and (cand_held > cur_held + rule.min_gain or cand_all > cur_all + rule.min_gain)
    )
    if not better:
        return GateDecision(
            False,
            f"not better on the held-out teacher labels: {_pct(cand_held)} vs "
            f"{_pct(cur_held)} for the current version at {coverage:.0%} coverage, "
            f"{cand_all:.2%} vs {cur_all:.2%} over all {len(held_y)}",
            numbers,
        )
    if val_cand < val_cur - rule.max_base_drop:
        return GateDecision(
            False,
            f"worse on the base validation split ({val_cand:.2%} vs {val_cur:.2%})",
            numbers,
        )
    if answered_cand < answered_cur - rule.max_answered_drop:
        return GateDecision(
            False,
            f"answers less of the base validation split at its threshold ({answered_cand:.2%} "
            f"vs {answered_cur:.2%}), so it would escalate more; the current version stays",
            numbers,
        )
    if candidate_threshold is not None and not candidate_threshold.reached:
        return GateDecision(
            False,
            f"the candidate's answers never reach {candidate_threshold.target_precision:.0%} "
            "precision on the validation split; the current version stays",
            numbers,
        )
    return GateDecision(
        True,
        f"better on {len(held_y)} held-out teacher labels ({_pct(cand_held)} vs "
        f"{_pct(cur_held)} at {coverage:.0%} coverage, {cand_all:.2%} vs {cur_all:.2%} over "
        f"all) and no worse on the base validation split ({val_cand:.2%} vs {val_cur:.2%}, "
        f"{answered_cand:.2%} vs {answered_cur:.2%} answered)",
        numbers,
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


@dataclass
class DistillData:
    """Features and class indices (into the current version's labels) for one distillation."""

    base_x: Floats
    base_y: Ints
    val_x: Floats
    val_y: Ints
    teacher_x: Floats
    teacher_y: Ints
    held_x: Floats
    held_y: Ints
    #: What the teacher labels were (for the card): counts, sources, time range.
    teacher_note: dict[str, Any] = field(default_factory=dict)
    #: The serving versions' own accepted answers, trained on beside the teacher labels
    #: (self-training); none unless asked for.
    own_x: Floats | None = None
    own_y: Ints | None = None

    def training(self) -> tuple[Floats, Ints]:
        """What the candidate trains on: base examples, teacher labels, own answers."""
        xs = [self.base_x, self.teacher_x] + ([self.own_x] if self.own_x is not None else [])
        ys = [self.base_y, self.teacher_y] + ([self.own_y] if self.own_y is not None else [])
        return np.concatenate(xs), np.concatenate(ys)


@dataclass
class DistillOutcome:
    candidate: Artifact
    fitted: FittedClassifier
    decision: GateDecision
    card: dict[str, Any]
    #: CPU seconds the candidate took to train and calibrate (all threads).
    cpu_seconds: float


def distill_candidate(
    current: Artifact,
    data: DistillData,
    *,
    rule: PromotionRule,
    target_precision: float,
    lower_bound: float | None = 0.95,
    calibration: Method = "temperature",
    heads: Sequence[HeadConfig] | None = None,
    command: str = "",
) -> DistillOutcome:
    """Train a candidate on base + teacher labels, calibrate it on the base validation split,
    and put it through the promotion gate against `current`."""
    started = time.process_time()
    oos_index = current.labels.index(current.oos_label) if current.oos_label else None
    fitted = fit_classifier(
        *data.training(),
        data.val_x,
        data.val_y,
        len(current.labels),
        oos_index=oos_index,
        macro=current.variant == "three_class",
        calibration=calibration,
        target_precision=target_precision,
        lower_bound=lower_bound,
        heads=heads,
        out_of_scope=setting_of(current.out_of_scope),
    )
    candidate = classifier_artifact(current, fitted)
    names = np.asarray(current.labels)
    decision = promotion_gate(
        current,
        candidate,
        held_x=data.held_x,
        held_y=list(names[data.held_y]),
        val_x=data.val_x,
        val_y=list(names[data.val_y]),
        rule=rule,
        candidate_threshold=fitted.threshold,
    )
    cpu = time.process_time() - started
    card = lineage_card(current, fitted, decision, data, command=command)
    candidate.card = card
    return DistillOutcome(candidate, fitted, decision, card, cpu)


@dataclass
class FinetunedCandidate:
    """A fine-tuned candidate written into the store as ``NAME@version``, and the verdict."""

    version: int
    candidate: Artifact
    decision: GateDecision
    #: CPU seconds of the fine-tuning, export, head and gate (all threads).
    cpu_seconds: float


def finetuned_candidate(
    current: Artifact,
    train: Split,
    val: Split,
    judged: Split,
    *,
    current_held_x: Floats,
    current_val_x: Floats,
    versions: VersionStore,
    config: FinetuneConfig,
    rule: PromotionRule,
    target_precision: float,
    lower_bound: float | None,
    teacher: dict[str, Any],
    base_examples: int,
    own_answers: int = 0,
    source: str = "",
    fmt: str = "",
    pretrained: str | Path | None = None,
    warm_start: bool = False,
    out_of_scope: OutOfScopeSetting | None = None,
    command: str = "",
) -> FinetunedCandidate:
    """Fine-tune an encoder and head on `train` (base examples, teacher labels, then the last
    `own_answers` of it: the serving versions' own accepted answers, if any), calibrate
    them on `val`, judge the candidate on its own embeddings against `current` (on its
    embeddings of `judged` and `val`), and write it as the next version of `current`.

    Needs the ``train`` extra; ``pretrained`` is the checkpoint to start from (default
    all-MiniLM-L6-v2). With ``warm_start``, a `current` that was fine-tuned itself is the
    start instead: its encoder's weights, so each version goes on from the last one (a
    `current` without such weights falls back to ``pretrained``; the lineage says which)."""
    from orchestrator.specialists.training.finetune import finetune_artifact, warm_start_from

    started = time.process_time()
    start = warm_start_from(current) if warm_start else None
    if start is not None:
        pretrained = start
    staging = versions.staging(current.name)
    dataset = TextDataset(
        name=current.name,
        format=fmt,
        source=source,
        splits={"train": train, "val": val},
        oos_label=current.oos_label,
    )
    options: dict[str, Any] = {"out_of_scope": out_of_scope} if out_of_scope else {}
    result = finetune_artifact(
        dataset,
        current.name,
        staging,
        specialist=current.specialist,
        variant=current.variant,
        config=config,
        pretrained=pretrained,
        target_precision=target_precision,
        lower_bound=lower_bound,
        cache_dir=None,  # a candidate's embeddings are worth nothing once it is judged
        command=command,
        **options,
    )
    candidate = result.artifact
    own = artifact_encoder(candidate, fresh=True)
    threshold = Threshold(**{k: v for k, v in result.card["threshold"].items() if k != "rule"})
    decision = promotion_gate(
        current,
        candidate,
        held_x=current_held_x,
        held_y=judged.labels,
        val_x=current_val_x,
        val_y=val.labels,
        candidate_held_x=embed_texts(own, judged.texts, cache_dir=None),
        candidate_val_x=embed_texts(own, val.texts, cache_dir=None),
        rule=rule,
        candidate_threshold=threshold,
    )
    card = result.card | {
        "lineage": lineage(
            current,
            decision,
            base=base_examples,
            trained=len(train) - base_examples - own_answers,
            held=len(judged),
            teacher=teacher,
            own=own_answers,
        )
        | {"warm_start": current.ref if start is not None else None}
    }

    def stamp(folder: Path, version: int) -> None:
        rewrite_model_card(folder, {**card, "version": version})

    version = versions.add(current.name, staging, stamp)
    # Loaded again from where the version now lives (the staging folder is gone).
    candidate = load_artifact(versions.path(current.name, version))
    return FinetunedCandidate(version, candidate, decision, time.process_time() - started)


def lineage(
    parent: Artifact,
    decision: GateDecision,
    *,
    base: int,
    trained: int,
    held: int,
    teacher: dict[str, Any],
    own: int = 0,
) -> dict[str, Any]:
    """The model card's lineage: the parent version, what was trained on, the gate's verdict."""
    return {
        "parent": parent.ref,
        "base_examples": base,
        "teacher_labels_trained": trained,
        "teacher_labels_held_out": held,
        "own_answers_trained": own,
        "teacher": teacher,
        "promotion": decision.to_json(),
    }


def lineage_card(
    current: Artifact,
    fitted: FittedClassifier,
    decision: GateDecision,
    data: DistillData,
    *,
    command: str,
) -> dict[str, Any]:
    """The candidate's model card: the parent's, with its own head, calibration, threshold,
    metrics and lineage (parent version, teacher labels used, the gate's rule and numbers)."""
    card = {k: v for k, v in current.card.items() if k not in ("version", "finetune", "lineage")}
    threshold = fitted.threshold
    card |= {
        "name": current.name,
        "specialist": current.specialist,
        "variant": current.variant,
        "encoder": current.encoder_id,
        "labels": list(current.labels),
        "oos_label": current.oos_label,
        "head": fitted.config.describe(),
        "head_selection": fitted.tried,
        "calibration": {
            **fitted.calibrator.to_json(),
            "iso_x": len(fitted.calibrator.iso_x),
            "iso_y": len(fitted.calibrator.iso_y),
            "ece_before": fitted.val_metrics["ece_before"],
            "ece_after": fitted.val_metrics["ece_after"],
            "fitted_on": "validation",
        },
        "threshold": {
            "value": served_threshold(threshold),
            "target_precision": threshold.target_precision,
            "precision": threshold.precision,
            "coverage": threshold.coverage,
            "reached": threshold.reached,
            "rule": "lowest threshold whose one-sided lower confidence bound of the "
            "validation precision reaches the target"
            + (" (chosen with the out-of-scope threshold)" if fitted.out_of_scope else ""),
        },
        "out_of_scope": card_section(fitted.out_of_scope),
        "metrics": {"validation": fitted.val_metrics},
        "lineage": lineage(
            current,
            decision,
            base=len(data.base_y),
            trained=len(data.teacher_y),
            held=len(data.held_y),
            teacher=data.teacher_note,
            own=0 if data.own_y is None else len(data.own_y),
        ),
        "command": command,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    data_section = dict(card.get("data") or {})
    data_section.setdefault("source", "")
    data_section.setdefault("format", "")
    data_section.setdefault("splits", {})
    card["data"] = data_section
    return card
