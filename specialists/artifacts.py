"""Trained specialist artifacts: a directory with the head, labels, calibration and a model card.

Layout of ``<store>/<name>/``::

    artifact.json    what the specialist needs: kind, labels, encoder, calibration, threshold
    head.npz         the head's weights
    out_of_scope.npz the out-of-scope detector's arrays, when it has one
    model_card.json  data source, metrics, the exact command (machine-readable)
    model_card.md    the same for people

This module reads artifacts (what a specialist needs at run time); writing them, with their
model cards, is the training bench's job (:mod:`orchestrator.specialists.training.artifacts`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from orchestrator._errors import ConfigurationError
from orchestrator.specialists.backends.encoder import (
    OnnxSentenceEncoder,
    TextEncoder,
    bundled_encoder,
)
from orchestrator.specialists.calibration import Calibrator
from orchestrator.specialists.heads import Head
from orchestrator.specialists.out_of_scope import OutOfScopeDetector
from orchestrator.specialists.versions import VersionStore, parse_version_ref

__all__ = [
    "ARTIFACT_FORMAT",
    "DEFAULT_STORE",
    "Artifact",
    "artifact_encoder",
    "load_artifact",
    "resolve_artifact",
]

ARTIFACT_FORMAT = 1
DEFAULT_STORE = Path(".orchestrator") / "specialists"
Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


@dataclass
class Artifact:
    """A trained head with its label set, calibration and acceptance threshold."""

    name: str
    specialist: str
    labels: tuple[str, ...]
    head: Head
    calibrator: Calibrator
    threshold: float
    encoder_id: str
    oos_label: str | None = None
    variant: str | None = None
    card: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    encoder_file: str | None = None
    """A fine-tuned encoder inside the artifact (ONNX, with ``tokenizer.json`` beside it);
    ``None`` means the bundled encoder."""
    out_of_scope: OutOfScopeDetector | None = None
    """Refuses answers to questions unlike the in-scope training data; ``None`` (artifacts
    trained without an out-of-scope label, or before detectors existed): no such refusal."""

    @property
    def version(self) -> int | None:
        """The version number in a versioned store (``None``: an unversioned artifact)."""
        value = self.card.get("version")
        if value is None and self.path is not None:
            # A version adopted from an unversioned artifact keeps the card it had.
            ref = parse_version_ref(self.path.name)
            value = ref.version if ref is not None and ref.name == self.name else None
        return int(value) if value is not None else None

    @property
    def ref(self) -> str:
        """``NAME@N`` for a version, the plain name otherwise."""
        return self.name if self.version is None else f"{self.name}@{self.version}"

    def probabilities(self, features: Floats) -> Floats:
        """Calibrated probabilities over :attr:`labels`."""
        return self.calibrator.probabilities(self.head.logits(features))

    def accepted(self, features: Floats) -> tuple[Ints, Floats, npt.NDArray[np.bool_]]:
        """Predicted class indices, the score answers are accepted by (calibrated confidence;
        -1 for an answer with the out-of-scope class or refused by the out-of-scope detector,
        which is never accepted), and which answers clear the threshold."""
        p = self.probabilities(features)
        pred = p.argmax(axis=1).astype(np.int64)
        score = p.max(axis=1).astype(np.float32)
        if self.oos_label is not None:
            score[pred == self.labels.index(self.oos_label)] = -1.0
        if self.out_of_scope is not None:
            score[self.out_of_scope.refuses(features, p)] = -1.0
        return pred, score, score >= self.threshold

    def manifest(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "name": self.name,
            "specialist": self.specialist,
            "variant": self.variant,
            "labels": list(self.labels),
            "oos_label": self.oos_label,
            "encoder": self.encoder_id,
            "head": self.head.state(),
            "calibration": self.calibrator.to_json(),
            "threshold": self.threshold,
        } | (
            ({"encoder_file": self.encoder_file} if self.encoder_file else {})
            | ({"out_of_scope": self.out_of_scope.to_json()} if self.out_of_scope else {})
        )


def resolve_artifact(name_or_path: str | Path, store: str | Path | None = None) -> Path:
    """A path to an artifact directory, or a name looked up in the store: ``NAME@N`` is that
    version, ``NAME`` the promoted version (or the unversioned artifact when it has none)."""
    candidate = Path(name_or_path)
    if (candidate / "artifact.json").is_file():
        return candidate
    root = Path(store or DEFAULT_STORE)
    ref = parse_version_ref(str(name_or_path))
    if ref is not None:
        versioned = VersionStore(root).resolve(ref)
        if versioned is not None:
            return versioned
    in_store = root / str(name_or_path)
    if (in_store / "artifact.json").is_file():
        return in_store
    raise ConfigurationError(
        f"no trained artifact {str(name_or_path)!r} (looked for {candidate}/artifact.json and "
        f"{in_store}/artifact.json); train one with `orchestrator specialists train`"
    )


def load_artifact(name_or_path: str | Path, store: str | Path | None = None) -> Artifact:
    path = resolve_artifact(name_or_path, store)
    try:
        raw = json.loads((path / "artifact.json").read_text(encoding="utf-8"))
        with np.load(path / "head.npz") as arrays:
            head = Head.from_state(raw["head"], {k: arrays[k] for k in arrays.files})
        card_file = path / "model_card.json"
        card = json.loads(card_file.read_text(encoding="utf-8")) if card_file.is_file() else {}
        detector = raw.get("out_of_scope")
        out_of_scope = OutOfScopeDetector.from_json(detector, path) if detector else None
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigurationError(f"{path}: unreadable artifact ({exc}); train it again") from None
    if raw.get("format") != ARTIFACT_FORMAT:
        raise ConfigurationError(
            f"{path}: artifact format {raw.get('format')!r}, this version reads "
            f"{ARTIFACT_FORMAT}; train it again"
        )
    return Artifact(
        name=raw["name"],
        specialist=raw["specialist"],
        labels=tuple(raw["labels"]),
        head=head,
        calibrator=Calibrator.from_json(raw["calibration"]),
        threshold=float(raw["threshold"]),
        encoder_id=raw["encoder"],
        oos_label=raw.get("oos_label"),
        variant=raw.get("variant"),
        card=card,
        path=path,
        encoder_file=raw.get("encoder_file"),
        out_of_scope=out_of_scope,
    )


def artifact_encoder(artifact: Artifact, *, fresh: bool = False) -> TextEncoder:
    """The encoder `artifact` was trained on: its own fine-tuned ONNX file, or the bundled one.

    ``fresh`` builds a new session with an empty cache (for timing) instead of a shared one.
    """
    if not artifact.encoder_file:
        return OnnxSentenceEncoder.bundled() if fresh else bundled_encoder()
    if artifact.path is None:
        raise ConfigurationError(f"artifact {artifact.name!r} has no directory to load from")
    if fresh:
        return _artifact_encoder(artifact.path, artifact.encoder_file, artifact.encoder_id)
    return _shared_encoder(str(artifact.path.resolve()), artifact.encoder_file, artifact.encoder_id)


def _artifact_encoder(path: Path, file: str, model_id: str) -> OnnxSentenceEncoder:
    return OnnxSentenceEncoder(path / file, path / "tokenizer.json", model_id=model_id)


@lru_cache(maxsize=8)
def _shared_encoder(path: str, file: str, model_id: str) -> OnnxSentenceEncoder:
    return _artifact_encoder(Path(path), file, model_id)
