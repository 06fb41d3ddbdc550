"""Distilling an artifact from its teacher-labelled traces (``orchestrator distill NAME``, and
the background learner).

The candidate trains on the artifact's base training data (the dataset its model card names)
plus the teacher labels of its traces, and is calibrated on the base validation split. Of the
labels recorded since the current version was written, a stable share is held out: the
current version never saw them and the candidate does not train on them, so the gate compares
the two there, at the same coverage, and on the base validation split.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from orchestrator._errors import ConfigurationError
from orchestrator._traces import Trace, TraceStore
from orchestrator.specialists.artifacts import (
    DEFAULT_STORE,
    Artifact,
    artifact_encoder,
    load_artifact,
)
from orchestrator.specialists.backends.encoder import TextEncoder
from orchestrator.specialists.evaluation.datasets import (
    Split,
    load_dataset,
    stratified_split,
)
from orchestrator.specialists.training.artifacts import write_version
from orchestrator.specialists.training.distill import (
    DistillData,
    PromotionRule,
    distill_candidate,
    finetuned_candidate,
    held_out,
)
from orchestrator.specialists.training.embeddings import DEFAULT_CACHE_DIR, embed_texts
from orchestrator.specialists.versions import VersionStore

if TYPE_CHECKING:
    from orchestrator.specialists.training.finetune import FinetuneConfig

__all__ = [
    "DistillReport",
    "TeacherLabels",
    "distill_from_traces",
    "own_answers",
    "teacher_labels",
]

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]

#: Share of the new teacher labels held out for the promotion gate.
HELD_OUT_SHARE = 0.2
#: How `specialists train` carves validation data from a dataset that has none.
_CARVED_VALIDATION = 0.15


@dataclass
class TeacherLabels:
    """The teacher labels usable for one artifact, and what was left out and why."""

    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    recorded_at: list[float] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)


def teacher_labels(
    traces: list[Trace], artifact: Artifact, *, out_of_scope: str = "out_of_scope"
) -> TeacherLabels:
    """(text, label) pairs from traces whose final answer came from a teacher; the intent
    specialist's "none of these" answer (``out_of_scope``) is the artifact's own label."""
    out = TeacherLabels()
    known = set(artifact.labels)
    aliases = {out_of_scope: artifact.oos_label} if artifact.oos_label else {}
    for trace in traces:
        text = trace.input.get("text")
        label = (trace.final or {}).get("label")
        if not isinstance(text, str) or not isinstance(label, str):
            out.skipped["no text input or no label answer"] = (
                out.skipped.get("no text input or no label answer", 0) + 1
            )
            continue
        label = aliases.get(label, label)
        if label not in known:
            reason = "a label the specialist does not have"
            out.skipped[reason] = out.skipped.get(reason, 0) + 1
            continue
        out.texts.append(text)
        out.labels.append(label)
        out.keys.append(trace.id)
        out.recorded_at.append(trace.recorded_at)
    return out


def own_answers(traces: list[Trace], artifact: Artifact) -> TeacherLabels:
    """(text, label) pairs from traces the specialist answered itself and verification
    passed: its accepted answers, for a candidate that self-trains."""
    out = TeacherLabels()
    known = set(artifact.labels)
    for trace in traces:
        text = trace.input.get("text")
        label = (trace.final or {}).get("label")
        accepted = trace.source == "specialist" and trace.verdict == "passed"
        if accepted and isinstance(text, str) and label in known:
            out.texts.append(text)
            out.labels.append(str(label))
            out.keys.append(trace.id)
            out.recorded_at.append(trace.recorded_at)
    return out


@dataclass
class DistillReport:
    name: str
    current: str
    distilled: bool
    reason: str
    candidate: str | None = None
    promoted: bool = False
    teacher_labels: int = 0
    own_answers: int = 0
    held_out: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


def _created(artifact: Artifact) -> float:
    text = artifact.card.get("created")
    if not isinstance(text, str):
        return 0.0
    moment = dt.datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


@dataclass
class _Base:
    """The base data: the training and validation splits the artifact was made from."""

    source: str
    format: str
    train: Split
    val: Split


def _base_data(artifact: Artifact, data: str | Path | None, fmt: str | None) -> _Base:
    """The training and validation splits of the data the artifact's card names (or those
    given), carved as `specialists train` carves them."""
    recorded = artifact.card.get("data") or {}
    source = data or recorded.get("source")
    fmt = fmt or recorded.get("format")
    if not source or not fmt:
        raise ConfigurationError(
            f"{artifact.ref}: its model card names no training data; give --data and --format"
        )
    if not Path(source).exists():
        raise ConfigurationError(
            f"{artifact.ref} was trained on {source}, which is not there; give --data and "
            "--format to name the base training data"
        )
    dataset = load_dataset(source, fmt)
    train = dataset.split("train")
    if "val" in dataset.splits:
        val = dataset.split("val")
    else:
        kept, carved = stratified_split(train.labels, _CARVED_VALIDATION, seed=0)
        train, val = train.subset(kept), train.subset(carved)
    return _Base(str(source), str(fmt), train, val)


def distill_from_traces(
    name: str,
    traces: TraceStore,
    *,
    store: str | Path = DEFAULT_STORE,
    min_labels: int = 50,
    since: float | None = None,
    data: str | Path | None = None,
    fmt: str | None = None,
    rule: PromotionRule | None = None,
    held_out_share: float = HELD_OUT_SHARE,
    lower_bound: float = 0.95,
    finetune: FinetuneConfig | None = None,
    pretrained: str | Path | None = None,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    command: str = "",
    self_labels: bool = False,
    warm_start: bool = False,
) -> DistillReport:
    """Distil a candidate for the artifact `name` from its teacher-labelled traces, put it
    through the promotion gate, and write it as the next version (promoted if it passed).

    With ``finetune`` the encoder is fine-tuned too (the `train` extra; ``pretrained`` is the
    checkpoint to start from, default all-MiniLM-L6-v2, or with ``warm_start`` the current
    version's own fine-tuned encoder); otherwise only the head is trained, over the current
    version's encoder.

    With ``self_labels`` the candidate also trains on the specialist's own accepted answers
    in the traces (verification passed, nobody escalated): self-training. The held-out
    teacher labels and the base validation split still judge it.
    """
    current = load_artifact(name, store)
    if current.specialist not in ("intent", "sentiment"):
        raise ConfigurationError(
            f"{current.ref}: distillation trains intent and sentiment artifacts; this one is "
            f"a {current.specialist} artifact"
        )
    if current.encoder_file and finetune is None:
        raise ConfigurationError(
            f"{current.ref} runs a fine-tuned encoder; distil it with --finetune"
        )
    found = traces.traces(current.name, since=since, taught_only=True)
    labels = teacher_labels(found, current)
    report = DistillReport(
        name=current.name,
        current=current.ref,
        distilled=False,
        reason="",
        teacher_labels=len(labels),
        skipped=labels.skipped,
    )
    if len(labels) < min_labels:
        report.reason = (
            f"{len(labels)} teacher labels for {current.name}"
            + (" in the time given" if since is not None else "")
            + f", fewer than the {min_labels} asked for; nothing distilled"
        )
        return report
    newer = _created(current)
    held = [
        at >= newer and held_out(key, held_out_share)
        for key, at in zip(labels.keys, labels.recorded_at, strict=True)
    ]
    own = own_answers(traces.traces(current.name, since=since), current) if self_labels else None
    report.own_answers = len(own) if own is not None else 0
    base = _base_data(current, data, fmt)
    index = {label: i for i, label in enumerate(current.labels)}
    unknown = sorted(set(base.train.labels + base.val.labels) - set(index))
    if unknown:
        raise ConfigurationError(
            f"the base data has labels {current.ref} does not know: {', '.join(unknown[:5])}"
        )
    taught = Split(
        [t for t, h in zip(labels.texts, held, strict=True) if not h],
        [t for t, h in zip(labels.labels, held, strict=True) if not h],
    )
    judged = Split(
        [t for t, h in zip(labels.texts, held, strict=True) if h],
        [t for t, h in zip(labels.labels, held, strict=True) if h],
    )
    note = {
        "traces": len(found),
        "since": since,
        "first": min(labels.recorded_at),
        "last": max(labels.recorded_at),
        "skipped": labels.skipped,
    }
    target = float((current.card.get("threshold") or {}).get("target_precision", 0.97))
    versions = VersionStore(store)
    features = _Features(artifact_encoder(current), cache_dir)
    if finetune is None:
        outcome = distill_candidate(
            current,
            DistillData(
                base_x=features(base.train.texts),
                base_y=_ys(base.train.labels, index),
                val_x=features(base.val.texts),
                val_y=_ys(base.val.labels, index),
                teacher_x=features(taught.texts),
                teacher_y=_ys(taught.labels, index),
                held_x=features(judged.texts),
                held_y=_ys(judged.labels, index),
                teacher_note=note,
                own_x=features(own.texts) if own else None,
                own_y=_ys(own.labels, index) if own else None,
            ),
            rule=rule or PromotionRule(),
            target_precision=target,
            lower_bound=lower_bound,
            command=command,
        )
        number = write_version(versions, outcome.candidate, outcome.card)
        decision = outcome.decision
    else:
        finetuned = finetuned_candidate(
            current,
            Split(
                base.train.texts + taught.texts + (own.texts if own else []),
                base.train.labels + taught.labels + (own.labels if own else []),
            ),
            base.val,
            judged,
            current_held_x=features(judged.texts),
            current_val_x=features(base.val.texts),
            versions=versions,
            config=finetune,
            rule=rule or PromotionRule(),
            target_precision=target,
            lower_bound=lower_bound,
            teacher=note,
            base_examples=len(base.train),
            own_answers=len(own) if own else 0,
            source=base.source,
            fmt=base.format,
            pretrained=pretrained,
            warm_start=warm_start,
            command=command,
        )
        number, decision = finetuned.version, finetuned.decision
    if decision.promote:
        versions.promote(current.name, number, reason=decision.reason)
    report.distilled = True
    report.candidate = f"{current.name}@{number}"
    report.promoted = decision.promote
    report.reason = decision.reason
    report.held_out = len(judged)
    report.gate = decision.numbers
    return report


def _ys(names: list[str], index: dict[str, int]) -> Ints:
    return np.array([index[n] for n in names], dtype=np.int64)


class _Features:
    """Embeddings of texts through one encoder, cached on disk."""

    def __init__(self, encoder: TextEncoder, cache_dir: str | Path | None) -> None:
        self.encoder = encoder
        self.cache_dir = cache_dir

    def __call__(self, texts: list[str]) -> Floats:
        return embed_texts(self.encoder, texts, cache_dir=self.cache_dir)
