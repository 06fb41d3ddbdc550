"""``specialists train`` and ``eval`` for ``--format cuad`` (the clauses specialist).

Output follows the other specialists: rich tables and progress bars for people, ``--json`` for
machines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from orchestrator._errors import ConfigurationError
from orchestrator.cli._output import err, out, progress_bars

__all__ = ["evaluate_cuad", "train_cuad"]


def _check_name(name: str, specialist: str | None) -> None:
    if specialist not in (None, "clauses"):
        raise ConfigurationError(
            f"--format cuad trains the clauses specialist, not {specialist!r}; drop --specialist"
        )
    if name in ("intent", "sentiment"):
        raise ConfigurationError(
            f"--format cuad trains the clauses specialist; name the artifact 'clauses' (or any "
            f"name other than {name!r})"
        )


def train_cuad(
    name: str,
    data: Path,
    *,
    specialist: str | None,
    store: Path,
    target_precision: float | None,
    seed: int | None,
    as_json: bool,
    command: str,
) -> int:
    from orchestrator.specialists.evaluation.cuad import load_cuad
    from orchestrator.specialists.training.clauses import DEFAULT_SEED, train_clauses

    _check_name(name, specialist)
    if not as_json:
        err.print(f"reading {data} ...")
    dataset = load_cuad(data)
    with progress_bars(not as_json) as progress:
        result = train_clauses(
            dataset,
            name,
            store / name,
            seed=DEFAULT_SEED if seed is None else seed,
            target_precision=0.8 if target_precision is None else target_precision,
            command=command,
            progress=progress,
        )
    card = {"path": str(result.path), **result.card}
    if as_json:
        out.print_json(json.dumps(card))
        return 0
    table = Table("field", "value", title=f"trained {name} -> {result.path}")
    table.add_row("specialist", "clauses")
    table.add_row("model", card["model"])
    table.add_row("categories", str(len(card["labels"])))
    split = card["split"]
    table.add_row(
        "contracts",
        f"{split['train_contracts']} train ({split['validation_contracts']} validation), "
        f"{split['test_contracts']} test held out; split seed {split['seed']}",
    )
    cal = card["calibration"]
    table.add_row(
        "calibration",
        f"platt per category; validation segment ECE {cal['ece_before']:.4f} -> "
        f"{cal['ece_after']:.4f}",
    )
    table.add_row(
        "validation presence F1 (macro)",
        f"{card['metrics']['validation']['presence_macro_f1']:.4f}",
    )
    out.print(table)
    err.print(f"evaluate with: orchestrator eval {name} --format cuad --data {data}")
    return 0


def evaluate_cuad(
    name: str,
    data: Path,
    split: str,
    *,
    store: Path,
    plots: Path | None,
    as_json: bool,
) -> dict[str, Any]:
    from orchestrator.specialists.clause_model import load_clause_model
    from orchestrator.specialists.evaluation.cuad import load_cuad
    from orchestrator.specialists.training.clauses import evaluate_clauses, write_pr_plot

    model = load_clause_model(name, store)
    dataset = load_cuad(data)
    with progress_bars(not as_json) as progress:
        report = evaluate_clauses(model, dataset, split, progress=progress)
    result: dict[str, Any] = {
        "artifact": str(model.path),
        "data": dataset.source,
        "split": split,
        "split_seed": model.split.get("seed"),
        "metrics": report["metrics"],
        "per_category": report["per_category"],
        "deviations": report["deviations"],
    }
    if plots is not None:
        result["plots"] = [str(p) for p in write_pr_plot(report, plots, model.name)]
    if model.path is not None:
        _record(model.path, split, report["metrics"], report["per_category"])
    if as_json:
        out.print_json(json.dumps(result))
        return result
    table = Table(
        "category",
        "P@80R",
        "AUPR",
        "presence F1",
        "contracts",
        title=f"{name} on {split} of {dataset.source} (split seed {model.split.get('seed')})",
    )
    for category, row in report["per_category"].items():
        table.add_row(
            category,
            _fmt(row["prec_at_80_recall"]),
            _fmt(row["aupr"]),
            _fmt(row["presence_f1"]),
            str(row["contracts_with_clause"]),
        )
    out.print(table)
    summary = Table("metric", "value", title="overall")
    for key, value in report["metrics"].items():
        summary.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    out.print(summary)
    for plot in result.get("plots", []):
        out.print(f"plot: {plot}")
    return result


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "n/a"


def _record(path: Path, split: str, metrics: dict[str, Any], rows: dict[str, Any]) -> None:
    """Add the split's metrics and per-category table to the model card (JSON and Markdown,
    each file replaced atomically)."""
    from orchestrator.specialists.training.artifacts import (
        clause_card_markdown,
        rewrite_model_card,
    )

    card = json.loads((path / "model_card.json").read_text(encoding="utf-8"))
    card.setdefault("metrics", {})[split] = metrics
    card.setdefault("per_category", {})[split] = rows
    rewrite_model_card(path, card, clause_card_markdown)
