"""``orchestrator eval``: score a trained artifact (a text classifier, the clauses model with
``--format cuad``, or the function_call specialist on BFCL with ``--format bfcl``); and
``orchestrator eval-cascade``: the specialist-then-frontier cascade on a test split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from orchestrator._errors import ConfigurationError
from orchestrator.cli._exit import ExitCode
from orchestrator.cli._options import CacheOpt, FormatOpt, JsonOpt, StoreOpt
from orchestrator.cli._output import command_line, err, out, progress_bars
from orchestrator.cli.clauses import evaluate_cuad
from orchestrator.specialists.artifacts import DEFAULT_STORE, load_artifact
from orchestrator.specialists.evaluation.datasets import load_dataset
from orchestrator.specialists.training.embeddings import DEFAULT_CACHE_DIR

__all__ = ["eval_cascade", "evaluate", "score_artifact"]

#: Up to this many labels, `eval` prints a table per label.
_PER_CLASS_ROWS = 20


def score_artifact(
    name: str,
    data: Path,
    fmt: str,
    split: str,
    *,
    store: Path,
    cache_dir: Path,
    plots: Path | None,
    latency_samples: int,
    show_progress: bool,
    text_column: str = "text",
    label_column: str = "label",
) -> dict[str, Any]:
    from orchestrator.specialists.evaluation.classifiers import evaluate_artifact, write_plots

    artifact = load_artifact(name, store)
    dataset = load_dataset(data, fmt, text_column=text_column, label_column=label_column)
    chosen = dataset.split(split)
    if artifact.variant == "binary":
        chosen = chosen.subset(i for i, label in enumerate(chosen.labels) if label != "neutral")
    with progress_bars(show_progress) as progress:
        report = evaluate_artifact(
            artifact,
            chosen,
            oos_label=dataset.oos_label,
            cache_dir=cache_dir,
            latency_samples=latency_samples,
            progress=progress,
        )
    result: dict[str, Any] = {
        "artifact": str(artifact.path),
        "data": dataset.source,
        "split": split,
        "metrics": report["metrics"],
        "per_class": report["per_class"],
        "accuracy_at_escalated": dict(
            zip(
                [f"{e:.2f}" for e in report["risk_coverage"]["escalated"][::10]],
                report["risk_coverage"]["accuracy"][::10],
                strict=True,
            )
        ),
    }
    if plots is not None:
        result["plots"] = [str(p) for p in write_plots(report, plots, artifact.name)]
    return result


def evaluate(
    name: Annotated[str, typer.Argument(help="Artifact name in the store, or its directory.")],
    fmt: FormatOpt,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Data file or folder (--format assistant: the bundled requests)."
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="Split to evaluate on.")] = "test",
    plots: Annotated[
        Path | None, typer.Option(help="Write risk-coverage and confusion PNGs here.")
    ] = None,
    latency_samples: Annotated[
        int, typer.Option(help="Requests timed one by one (0: skip timing).")
    ] = 200,
    text_column: Annotated[str, typer.Option(help="csv/jsonl: the text column.")] = "text",
    label_column: Annotated[str, typer.Option(help="csv/jsonl: the label column.")] = "label",
    store: StoreOpt = DEFAULT_STORE,
    cache_dir: CacheOpt = DEFAULT_CACHE_DIR,
    as_json: JsonOpt = False,
    category: Annotated[
        list[str] | None, typer.Option(help="--format bfcl: categories to run (repeatable).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="--format bfcl: the first N questions of each category.")
    ] = None,
    part: Annotated[
        str | None,
        typer.Option(
            help="--format bfcl: all, tune (first half) or rest (second half); --format "
            "assistant: tune, test or all (default: test)."
        ),
    ] = None,
    filler: Annotated[
        str | None,
        typer.Option(
            help="--format bfcl: extract, hybrid, generate or tools (default: the specialist's)."
        ),
    ] = None,
) -> int:
    """Evaluate a trained artifact: quality, calibration, risk-coverage, latency.

    With ``--format cuad`` a clauses artifact is scored like CUAD; with ``--format bfcl`` the
    ``function_call`` specialist is run on BFCL files, with ``--format assistant`` on the
    project's own realistic assistant requests."""
    if fmt == "assistant":
        return _evaluate_assistant(
            name, data, part or "test", plots, as_json=as_json, filler=filler
        )
    if data is None:
        raise ConfigurationError(f"--data: required with --format {fmt}")
    if fmt == "cuad":
        evaluate_cuad(name, data, split, store=store, plots=plots, as_json=as_json)
        return 0
    if fmt == "bfcl":
        return _evaluate_bfcl(
            name,
            data,
            category,
            limit=limit,
            part=part or "all",
            plots=plots,
            as_json=as_json,
            filler=filler,
        )
    result = score_artifact(
        name,
        data,
        fmt,
        split,
        store=store,
        cache_dir=cache_dir,
        plots=plots,
        latency_samples=latency_samples,
        show_progress=not as_json,
        text_column=text_column,
        label_column=label_column,
    )
    if as_json:
        out.print_json(json.dumps(result))
        return 0
    table = Table("metric", "value", title=f"{name} on {split} of {result['data']}")
    for key, value in result["metrics"].items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    out.print(table)
    rows = result["per_class"]
    if len(rows) <= _PER_CLASS_ROWS:  # 150 intents are for --json and the confusion plot
        by_class = Table("label", "support", "predicted", "precision", "recall", title="per label")
        for label, row in rows.items():
            by_class.add_row(
                label,
                f"{row['support']:.0f}",
                f"{row['predicted']:.0f}",
                f"{row['precision']:.4f}",
                f"{row['recall']:.4f}",
            )
        out.print(by_class)
    for plot in result.get("plots", []):
        out.print(f"plot: {plot}")
    return 0


def _evaluate_bfcl(
    name: str,
    data: Path,
    categories: list[str] | None,
    *,
    limit: int | None,
    part: str,
    plots: Path | None = None,
    as_json: bool,
    filler: str | None = None,
) -> int:
    from orchestrator.specialists.evaluation.assistant import write_plot
    from orchestrator.specialists.evaluation.bfcl import CATEGORIES, evaluate_bfcl

    unknown = sorted(set(categories or []) - set(CATEGORIES))
    if unknown:
        raise ConfigurationError(f"unknown BFCL category {unknown}; known: {', '.join(CATEGORIES)}")
    specialist = _function_call(name, "bfcl", filler)
    with progress_bars(not as_json) as progress:
        report = evaluate_bfcl(
            specialist,
            data,
            categories or list(CATEGORIES),
            part=part,
            limit=limit,
            progress=progress,
        )
    report["command"] = command_line(
        "eval",
        name,
        data=data,
        format="bfcl",
        limit=limit,
        part=None if part == "all" else part,
        filler=filler,
    ) + "".join(f" --category {c}" for c in categories or [])
    report["filler"] = getattr(specialist, "filler", None)
    if plots is not None and report.get("risk_coverage"):
        report["plots"] = [str(write_plot(report, plots, "bfcl"))]
    if as_json:
        out.print_json(json.dumps(report))
        return 0
    table = Table(
        "category",
        "questions",
        "accuracy",
        "refused",
        "function choice",
        "p50 ms",
        "p95 ms",
        title=f"function_call on BFCL v4 ({part}) in {data}",
    )
    for cat, row in report["categories"].items():
        refused = row.get("refused")
        choice = row.get("function_choice")
        table.add_row(
            cat,
            str(row["questions"]),
            f"{100 * row['accuracy']:.1f}",
            "" if refused is None else f"{100 * refused:.1f}",
            "" if choice is None else f"{100 * choice:.1f}",
            f"{row['latency_p50_ms']:.0f}",
            f"{row['latency_p95_ms']:.0f}",
        )
    out.print(table)
    out.print(
        f"latency per question: p50 {report['latency_p50_ms']:.0f} ms, "
        f"p95 {report['latency_p95_ms']:.0f} ms"
    )
    _print_kept(report)
    return 0


def _function_call(name: str, fmt: str, filler: str | None) -> Any:
    from orchestrator.specialists._registry import default_registry

    if name != "function_call":
        raise ConfigurationError(
            f"--format {fmt} evaluates the function_call specialist, not {name!r}"
        )
    fillers = ("auto", "extract", "hybrid", "generate", "tools")
    if filler is not None and filler not in fillers:
        raise ConfigurationError(f"--filler {filler!r}: use one of {', '.join(fillers)}")
    return default_registry().create(name, {"filler": filler} if filler else None)


def _evaluate_assistant(
    name: str,
    data: Path | None,
    part: str,
    plots: Path | None,
    *,
    as_json: bool,
    filler: str | None,
) -> int:
    from orchestrator.specialists.evaluation.assistant import evaluate_assistant, write_plot

    specialist = _function_call(name, "assistant", filler)
    with progress_bars(not as_json) as progress:
        report = evaluate_assistant(specialist, part=part, path=data, progress=progress)
    report["command"] = command_line(
        "eval", name, data=data, format="assistant", part=part, filler=filler
    )
    report["filler"] = getattr(specialist, "filler", None)
    if plots is not None:
        report["plots"] = [str(write_plot(report, plots))]
    if as_json:
        out.print_json(json.dumps(report))
        return 0
    table = Table("requests", "kind", "fully right", title=f"function_call on assistant ({part})")
    table.add_row(str(report["requests"]), "all", f"{100 * report['accuracy']:.1f}")
    for kind, row in report["by_kind"].items():
        table.add_row(str(row["requests"]), kind, f"{100 * row['accuracy']:.1f}")
    out.print(table)
    out.print(
        f"refused {100 * report['refused']:.1f}% of relevant requests, called a tool on "
        f"{100 * report['called_irrelevant']:.1f}% of irrelevant ones; verified "
        f"{100 * report['verified']:.1f}% (of which {100 * report['verified_accuracy']:.1f}% "
        f"right); p50 {report['latency_p50_ms']:.0f} ms"
    )
    _print_kept(report)
    return 0


def _print_kept(report: dict[str, Any]) -> None:
    """The figures at the acceptance threshold and the plots of a function_call report."""
    if "kept" in report:
        out.print(
            f"at threshold {report['threshold']:.2f}: kept {100 * report['kept_relevant']:.1f}% "
            f"of relevant requests, {100 * report['kept_accuracy']:.1f}% of kept right"
        )
    for plot in report.get("plots", []):
        out.print(f"plot: {plot}")


def eval_cascade(
    artifact: Annotated[str, typer.Argument(help="A trained intent artifact (name or path).")],
    data: Annotated[Path, typer.Option(help="The dataset (e.g. ../shared/data/clinc150).")],
    format: Annotated[str, typer.Option("--format", help="clinc150, banking77, csv, jsonl...")],
    split: Annotated[str, typer.Option(help="Which split to score.")] = "test",
    model: Annotated[str, typer.Option(help="Frontier model for escalated items.")] = (
        "claude-sonnet-5"
    ),
    frontier_limit: Annotated[
        int, typer.Option(help="Most escalated items sent to the frontier model.")
    ] = 200,
    plot: Annotated[Path | None, typer.Option(help="Write the curve as a PNG here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> int:
    """The specialist-then-frontier cascade on a test split: for a range of thresholds, the
    share escalated and the accuracy of the answers kept (and, with ANTHROPIC_API_KEY, of the
    combined answers and their cost)."""
    from orchestrator.agents._frontier import frontier_from_spec
    from orchestrator.agents.answerer import FrontierAnswerer
    from orchestrator.graph.spec import FrontierSpec
    from orchestrator.specialists.artifacts import load_artifact
    from orchestrator.specialists.evaluation.cascade import evaluate_cascade, plot_cascade
    from orchestrator.specialists.evaluation.datasets import load_dataset

    trained = load_artifact(artifact)
    dataset = load_dataset(data, format)
    frontier = frontier_from_spec(FrontierSpec(model=model))
    rows = dataset.split(split)
    with err.status(f"scoring {len(rows)} {split} items…"):
        report = evaluate_cascade(
            trained,
            rows,
            dataset=dataset.name,
            split_name=split,
            answerer=FrontierAnswerer(frontier) if frontier else None,
            frontier_limit=frontier_limit,
        )
    if plot is not None:
        plot_cascade(report, plot)
    if as_json:
        out.print_json(json.dumps(report.to_json()))
        return ExitCode.OK
    table = Table(
        title=f"Cascade: {trained.name} on {report.dataset} {split} "
        f"({report.items} items; {report.note})",
        title_justify="left",
    )
    for column in ("threshold", "escalated", "accepted", "accuracy of accepted"):
        table.add_column(column, justify="right")
    for point in report.points[::3]:
        table.add_row(
            f"{point.threshold:.2f}",
            f"{point.escalated_share:.1%}",
            str(point.accepted),
            "-" if point.accepted_accuracy is None else f"{point.accepted_accuracy:.2%}",
        )
    out.print(table)
    marks: list[tuple[str, Any]] = [
        ("stored threshold", report.at_stored_threshold),
        ("10% escalated", report.at_10_percent),
    ]
    for label, mark in marks:
        if mark is not None and mark.accepted_accuracy is not None:
            out.print(
                f"{label:<17} {mark.threshold:.3f}: {mark.escalated_share:.1%} escalated,"
                f" accepted answers {mark.accepted_accuracy:.2%} accurate"
            )
    oos = report.out_of_scope
    if oos is not None:
        accuracy = oos["accepted_accuracy_all_items"]
        out.print(
            f"out of scope      {oos['accepted']} of {oos['items']} answered with an intent "
            f"({oos['refused_share']:.1%} refused); accepted answers "
            + ("-" if accuracy is None else f"{accuracy:.2%}")
            + " accurate counting them"
        )
    frontier_info = report.frontier
    if frontier_info.get("reached"):
        out.print(
            f"frontier          {frontier_info['answered']} escalated items answered, "
            f"{frontier_info['frontier_accuracy']:.2%} accurate; combined "
            f"{frontier_info['combined_accuracy']:.2%}; cost ${frontier_info['cost_usd']:.4f}"
        )
    else:
        out.print(f"frontier          {frontier_info['note']}")
    if plot is not None:
        out.print(f"plot              {plot}")
    return ExitCode.OK
