"""Trained specialist artifacts: a directory with the head, labels, calibration and a model card.

Layout of ``<store>/<name>/``::

    artifact.json    what the specialist needs: kind, labels, encoder, calibration, threshold
    head.npz         the head's weights
    model_card.json  data source, metrics, the exact command (machine-readable)
    model_card.md    the same for people

Writes are atomic: everything goes into a temporary directory beside the target, which is
then renamed into place, so a failed or interrupted run never leaves a half-written artifact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
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

__all__ = [
    "ARTIFACT_FORMAT",
    "DEFAULT_STORE",
    "Artifact",
    "artifact_encoder",
    "load_artifact",
    "offsets_text",
    "resolve_artifact",
    "rewrite_model_card",
    "update_model_card",
    "write_artifact",
]

ARTIFACT_FORMAT = 1
DEFAULT_STORE = Path(".orchestrator") / "specialists"
Floats = npt.NDArray[np.float32]


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

    def probabilities(self, features: Floats) -> Floats:
        """Calibrated probabilities over :attr:`labels`."""
        return self.calibrator.probabilities(self.head.logits(features))

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
        } | ({"encoder_file": self.encoder_file} if self.encoder_file else {})


def resolve_artifact(name_or_path: str | Path, store: str | Path | None = None) -> Path:
    """A path to an artifact directory, or a name looked up in the store."""
    candidate = Path(name_or_path)
    if (candidate / "artifact.json").is_file():
        return candidate
    in_store = Path(store or DEFAULT_STORE) / str(name_or_path)
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


def _atomic_dir(target: Path, fill: Callable[[Path], None]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        fill(tmp)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def offsets_text(labels: list[str], offsets: list[float] | None) -> str:
    """A calibration's class offsets for people ("; class offsets negative -0.29, ..."), or
    nothing when it has none."""
    if not offsets:
        return ""
    return "; class offsets " + ", ".join(
        f"{lab} {b:+.2f}" for lab, b in zip(labels, offsets, strict=False)
    )


def _card_markdown(card: dict[str, Any]) -> str:
    lines = [f"# Model card: {card['name']}", ""]
    lines += [
        f"- **Specialist:** `{card['specialist']}`"
        + (f" ({card['variant']})" if card.get("variant") else ""),
        f"- **Encoder:** `{card['encoder']}` "
        + ("(fine-tuned, in this directory)" if card.get("finetune") else "(frozen)")
        + f" + head: {card['head']}",
        f"- **Data:** `{card['data']['source']}` (format `{card['data']['format']}`)",
        f"- **Labels:** {len(card['labels'])}"
        + (f"; out-of-scope label `{card['oos_label']}`" if card.get("oos_label") else ""),
        f"- **Calibration:** {card['calibration']['method']} "
        f"(temperature {card['calibration']['temperature']:.3f}"
        + offsets_text(card["labels"], card["calibration"].get("class_bias"))
        + "); ECE on validation "
        f"{card['calibration']['ece_before']:.4f} -> {card['calibration']['ece_after']:.4f}",
        f"- **Acceptance threshold:** {card['threshold']['value']:.4f} for target precision "
        f"{card['threshold']['target_precision']:.3f} (validation precision "
        f"{card['threshold']['precision']:.4f} at coverage {card['threshold']['coverage']:.4f}"
        + ("" if card["threshold"]["reached"] else "; target NOT reached")
        + ")",
        f"- **Trained:** {card['created']}",
        "",
        "## Command",
        "",
        f"```\n{card['command']}\n```",
        "",
        "## Data",
        "",
        "| split | examples |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v} |" for k, v in card["data"]["splits"].items()]
    for note in card["data"].get("notes", []):
        lines += ["", f"Note: {note}"]
    if card.get("finetune"):
        lines += ["", "## Fine-tuning", "", "```json", json.dumps(card["finetune"], indent=2)]
        lines += ["```"]
    for section, metrics in card.get("metrics", {}).items():
        lines += ["", f"## Metrics: {section}", "", "| metric | value |", "|---|---:|"]
        for key, value in metrics.items():
            if isinstance(value, int | float):
                lines.append(
                    f"| {key} | {value:.4f} |"
                    if isinstance(value, float)
                    else f"| {key} | {value} |"
                )
    return "\n".join(lines) + "\n"


def _write_card(folder: Path, card: dict[str, Any]) -> None:
    (folder / "model_card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (folder / "model_card.md").write_text(_card_markdown(card), encoding="utf-8")


def write_artifact(
    target: str | Path,
    artifact: Artifact,
    card: dict[str, Any],
    files: dict[str, Path] | None = None,
) -> Path:
    """Write `artifact` and its model card to `target` atomically; returns the path.

    ``files`` (name in the artifact -> source file) are copied in too, e.g. a fine-tuned encoder.
    """
    target = Path(target)

    def fill(folder: Path) -> None:
        for name, source in (files or {}).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, folder / name)
        (folder / "artifact.json").write_text(
            json.dumps(artifact.manifest(), indent=2) + "\n", encoding="utf-8"
        )
        np.savez(folder / "head.npz", **artifact.head.params)  # type: ignore[arg-type]
        _write_card(folder, card)

    _atomic_dir(target, fill)
    return target


def update_model_card(path: str | Path, section: str, metrics: dict[str, Any]) -> None:
    """Add or replace one metrics section of an artifact's card (each file replaced atomically)."""
    path = Path(path)
    card = json.loads((path / "model_card.json").read_text(encoding="utf-8"))
    card.setdefault("metrics", {})[section] = metrics
    rewrite_model_card(path, card)


def rewrite_model_card(
    path: str | Path,
    card: dict[str, Any],
    render: Callable[[dict[str, Any]], str] = _card_markdown,
) -> None:
    """Replace an artifact's ``model_card.json`` and ``model_card.md`` (``render`` writes the
    Markdown), each file atomically."""
    path = Path(path)
    for filename, text in (
        ("model_card.json", json.dumps(card, indent=2) + "\n"),
        ("model_card.md", render(card)),
    ):
        fd, tmp = tempfile.mkstemp(dir=path, prefix=f".{filename}.tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path / filename)
