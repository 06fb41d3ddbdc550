"""Writing trained artifacts and their model cards.

Writes are atomic: everything goes into a temporary directory beside the target, which is
then renamed into place, so a failed or interrupted run never leaves a half-written artifact.
Layouts are described where the artifacts are read: :mod:`orchestrator.specialists.artifacts`
(heads) and :mod:`orchestrator.specialists.clause_model` (clauses).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.specialists.artifacts import Artifact
from orchestrator.specialists.clause_model import ClauseModel
from orchestrator.specialists.out_of_scope import OUT_OF_SCOPE_FILE
from orchestrator.specialists.versions import VersionStore

__all__ = [
    "atomic_dir",
    "clause_card_markdown",
    "offsets_text",
    "rewrite_model_card",
    "update_model_card",
    "write_artifact",
    "write_clause_model",
    "write_version",
]


def atomic_dir(target: Path, fill: Callable[[Path], None]) -> None:
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


def _trained_and_data(card: dict[str, Any], *table_head: str) -> list[str]:
    """The lines every model card shares: when it was trained, the command, the data table's
    head."""
    command = f"```\n{card['command']}\n```"
    trained = f"- **Trained:** {card['created']}"
    return [trained, "", "## Command", "", command, "", "## Data", "", *table_head]


def offsets_text(labels: list[str], offsets: list[float] | None) -> str:
    """A calibration's class offsets for people ("; class offsets negative -0.29, ..."), or
    nothing when it has none."""
    if not offsets:
        return ""
    return "; class offsets " + ", ".join(
        f"{lab} {b:+.2f}" for lab, b in zip(labels, offsets, strict=False)
    )


def _card_markdown(card: dict[str, Any]) -> str:
    title = card["name"] + (f"@{card['version']}" if card.get("version") else "")
    lines = [f"# Model card: {title}", ""]
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
        *_out_of_scope_markdown(card),
        *_trained_and_data(card, "| split | examples |", "|---|---:|"),
    ]
    lines += [f"| {k} | {v} |" for k, v in card["data"]["splits"].items()]
    for note in card["data"].get("notes", []):
        lines += ["", f"Note: {note}"]
    if card.get("finetune"):
        lines += ["", "## Fine-tuning", "", "```json", json.dumps(card["finetune"], indent=2)]
        lines += ["```"]
    lines += _lineage_markdown(card)
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


def _out_of_scope_markdown(card: dict[str, Any]) -> list[str]:
    section = card.get("out_of_scope")
    if not section:
        return []
    val = section.get("validation", {})
    return [
        f"- **Out-of-scope detector:** {' + '.join(section['signals'])} (standardised), "
        f"refuses above {section['threshold']:.3f}; rule: {section.get('rule', '-')}"
        + ("" if section.get("met", True) else " (NOT met)")
        + (
            f"; on validation AUROC {val['auroc']:.4f}, out-of-scope questions accepted "
            f"{val['out_of_scope_accepted']:.1%}"
            if val
            else ""
        )
    ]


def _lineage_markdown(card: dict[str, Any]) -> list[str]:
    lineage = card.get("lineage")
    if not lineage:
        return []
    gate = lineage.get("promotion", {})
    lines = [
        "",
        "## Lineage",
        "",
        f"- **Parent:** `{lineage['parent']}`",
        f"- **Trained on:** {lineage['base_examples']} base examples + "
        f"{lineage['teacher_labels_trained']} teacher labels "
        f"({lineage['teacher_labels_held_out']} more held out for the promotion gate)",
        f"- **Teacher:** {json.dumps(lineage.get('teacher', {}))}",
        f"- **Promotion rule:** {gate.get('rule', '-')}",
        f"- **Gate:** {'promoted' if gate.get('promote') else 'refused'}: "
        f"{gate.get('reason', '-')}",
    ]
    return lines


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
        if artifact.out_of_scope is not None and artifact.out_of_scope.arrays():
            np.savez(folder / OUT_OF_SCOPE_FILE, **artifact.out_of_scope.arrays())  # type: ignore[arg-type]
        _write_card(folder, card)

    atomic_dir(target, fill)
    return target


def write_version(
    store: VersionStore,
    artifact: Artifact,
    card: dict[str, Any],
    files: dict[str, Path] | None = None,
) -> int:
    """Write `artifact` as the next version of its name in `store` (not promoted); returns the
    version number and points ``artifact.path`` and ``artifact.card`` at what was written."""
    staging = store.staging(artifact.name)
    write_artifact(staging, artifact, card, files)

    def stamp(folder: Path, version: int) -> None:
        rewrite_model_card(folder, {**card, "version": version})

    version = store.add(artifact.name, staging, stamp)
    artifact.path = store.path(artifact.name, version)
    artifact.card = {**card, "version": version}
    return version


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


def write_clause_model(target: str | Path, model: ClauseModel, card: dict[str, Any]) -> Path:
    """Write the model and its card atomically; returns the directory."""
    target = Path(target)

    def fill(folder: Path) -> None:
        (folder / "artifact.json").write_text(
            json.dumps(model.manifest(), indent=1) + "\n", encoding="utf-8"
        )
        np.savez(
            folder / "weights.npz",
            weights=model.weights,
            bias=model.bias,
            idf=model.idf,
            layout_mean=model.layout_mean,
            layout_scale=model.layout_scale,
        )
        (folder / "model_card.json").write_text(json.dumps(card, indent=2) + "\n", "utf-8")
        (folder / "model_card.md").write_text(clause_card_markdown(card), encoding="utf-8")

    atomic_dir(target, fill)
    return target


def clause_card_markdown(card: dict[str, Any]) -> str:
    """The clause model's card for people."""
    split = card["split"]
    lines = [
        f"# Model card: {card['name']}",
        "",
        "- **Specialist:** `clauses` (contract clause extraction, CUAD categories)",
        f"- **Model:** {card['model']}",
        f"- **Data:** `{card['data']['source']}` (format `{card['data']['format']}`)",
        f"- **Categories:** {len(card['labels'])}",
        f"- **Contract split:** seed {split['seed']}, {split['test_fraction']:.0%} of contracts "
        f"held out for test ({split['test_contracts']} test, {split['train_contracts']} train, "
        f"of which {split['validation_contracts']} for validation)",
        f"- **Calibration:** {card['calibration']['method']} per category on validation "
        f"segments; segment ECE {card['calibration']['ece_before']:.4f} -> "
        f"{card['calibration']['ece_after']:.4f}",
        f"- **Span thresholds:** per category, the lowest reaching precision "
        f"{card['thresholds']['target_precision']:.2f} on validation segments (reached for "
        f"{card['thresholds']['reached']} of {len(card['labels'])} categories; the others "
        "use their most precise threshold)",
        "- **Presence thresholds:** per category, best document-level F1 on validation",
        *_trained_and_data(card, "| part | contracts | segments |", "|---|---:|---:|"),
    ]
    lines += [
        f"| {k} | {v['contracts']} | {v['segments']} |" for k, v in card["data"]["parts"].items()
    ]
    for note in card["data"].get("notes", []):
        lines += ["", f"Note: {note}"]
    deviations = card.get("deviations_from_official_cuad_evaluation", [])
    if deviations:
        lines += ["", "## Where the evaluation departs from CUAD's evaluate.py", ""]
        lines += [f"- {d}" for d in deviations]
    for section, metrics in card.get("metrics", {}).items():
        lines += ["", f"## Metrics: {section}", "", "| metric | value |", "|---|---:|"]
        for key, value in metrics.items():
            if isinstance(value, float):
                lines.append(f"| {key} | {value:.4f} |")
            elif isinstance(value, int):
                lines.append(f"| {key} | {value} |")
        per = card.get("per_category", {}).get(section)
        if per:
            lines += ["", "| category | P@80R | AUPR | presence F1 |", "|---|---:|---:|---:|"]
            for cat, row in per.items():
                lines.append(
                    f"| {cat} | {_fmt(row.get('prec_at_80_recall'))} | {_fmt(row.get('aupr'))} "
                    f"| {_fmt(row.get('presence_f1'))} |"
                )
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "n/a"
