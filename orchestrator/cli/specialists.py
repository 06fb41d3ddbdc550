"""CLI commands that train, evaluate and pack the text specialists.

``register(app, specialists_app)`` adds ``specialists train``, ``specialists build-pack`` and
the top-level ``eval`` to the main typer app.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator._errors import ConfigurationError
from orchestrator.specialists.artifacts import DEFAULT_STORE, load_artifact
from orchestrator.specialists.calibration import Method
from orchestrator.specialists.evaluation.datasets import FORMATS, load_dataset
from orchestrator.specialists.training.artifacts import offsets_text, update_model_card
from orchestrator.specialists.training.embeddings import DEFAULT_CACHE_DIR
from orchestrator.specialists.training.train import (
    SPECIALIST_OF_FORMAT,
    StepProgress,
    train_artifact,
)

__all__ = ["PACK", "register"]

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)

#: The full pack: artifact name -> (data folder under the data directory, format, variant).
PACK: dict[str, tuple[str, str, str | None]] = {
    "intent-clinc150": ("clinc150", "clinc150", None),
    "intent-banking77": ("banking77", "banking77", None),
    "sentiment-sst2": ("sst2", "sst2", "binary"),
    "sentiment-tweeteval": ("tweeteval_sentiment", "tweeteval", "three_class"),
}
_TARGET_PRECISION = {"intent": 0.97, "sentiment": 0.95}

DataOpt = Annotated[Path, typer.Option("--data", help="Data file or folder.")]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        help=f"One of: {', '.join(FORMATS)}, cuad (clauses), bfcl or assistant (function_call).",
    ),
]
StoreOpt = Annotated[
    Path, typer.Option("--store", help="Artifact store: artifacts are <store>/<name>.")
]
CacheOpt = Annotated[Path, typer.Option("--cache-dir", help="Embedding cache directory.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


@contextmanager
def _progress(enabled: bool) -> Iterator[StepProgress]:
    """Rich progress bars on stderr (stdout stays clean for --json)."""
    if not enabled:
        yield lambda description, total: lambda n: None
        return
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )

    def task(description: str, total: int) -> Callable[[int], None]:
        task_id = bars.add_task(description, total=total)
        return lambda n: bars.advance(task_id, n)

    with bars:
        yield task


def _command_line(*parts: str, **flags: object) -> str:
    """The command that reproduces a run (flags left at their defaults are omitted)."""
    words = ["orchestrator", *parts]
    for key, value in flags.items():
        if value is True:
            words.append(f"--{key.replace('_', '-')}")
        elif value not in (None, False):
            words += [f"--{key.replace('_', '-')}", str(value)]
    return shlex.join(words)


#: Up to this many labels, `eval` prints a table per label.
_PER_CLASS_ROWS = 20


def _train_one(
    name: str,
    data: Path,
    fmt: str,
    *,
    specialist: str | None,
    variant: str | None,
    store: Path,
    cache_dir: Path,
    target_precision: float | None,
    calibration: str,
    text_column: str,
    label_column: str,
    show_progress: bool,
    command: str,
    finetune: dict[str, Any] | None = None,
    class_offsets: bool = False,
) -> dict[str, Any]:
    kind = specialist or (
        name if name in ("intent", "sentiment") else SPECIALIST_OF_FORMAT.get(fmt)
    )
    if kind is None:
        raise ConfigurationError(
            f"--format {fmt} does not say which specialist to train; pass --specialist intent "
            "or --specialist sentiment"
        )
    if calibration not in ("temperature", "isotonic", "none"):
        raise ConfigurationError(
            f"--calibration {calibration!r}: use temperature, isotonic or none"
        )
    method: Method = calibration  # type: ignore[assignment]
    pretrained = None
    if finetune is not None:
        from orchestrator.specialists.training.finetune import require_torch, resolve_init

        require_torch()  # before loading the data
        finetune = dict(finetune)
        init = finetune.pop("init", None)
        pretrained = resolve_init(init, store) if init else None
    dataset = load_dataset(data, fmt, text_column=text_column, label_column=label_column)
    options: dict[str, Any] = {
        "target_precision": target_precision or _TARGET_PRECISION[kind],
        "calibration": method,
        "cache_dir": cache_dir,
        "class_offsets": class_offsets,
    }
    if finetune is not None:
        from orchestrator.specialists.training.finetune import (
            FinetuneConfig,
            finetune_artifact,
        )

        settings = dict(finetune)
        max_train = settings.pop("max_train", None)
        with _progress(show_progress) as progress:
            result = finetune_artifact(
                dataset,
                name,
                store / name,
                specialist=kind,
                variant=variant,
                config=FinetuneConfig(**settings),
                max_train=max_train,
                command=command,
                progress=progress,
                pretrained=pretrained,
                **options,
            )
        return {"path": str(result.path), **result.card}
    with _progress(show_progress) as progress:
        result = train_artifact(
            dataset,
            name,
            store / name,
            specialist=kind,
            variant=variant,
            command=command,
            progress=progress,
            **options,
        )
    return {"path": str(result.path), **result.card}


def _print_card(card: dict[str, Any]) -> None:
    table = Table("field", "value", title=f"trained {card['name']} -> {card['path']}")
    table.add_row("specialist", f"{card['specialist']} {card.get('variant') or ''}".strip())
    table.add_row("head", card["head"])
    table.add_row("labels", str(len(card["labels"])))
    cal = card["calibration"]
    table.add_row(
        "calibration",
        f"{cal['method']} T={cal['temperature']:.3f}"
        + offsets_text(card["labels"], cal.get("class_bias"))
        + f"; val ECE {cal['ece_before']:.4f} -> {cal['ece_after']:.4f}",
    )
    thr = card["threshold"]
    table.add_row(
        "threshold",
        f"{thr['value']:.4f} (val precision {thr['precision']:.4f} at coverage "
        f"{thr['coverage']:.4f}; target {thr['target_precision']:.3f}"
        + ("" if thr["reached"] else ", NOT reached")
        + ")",
    )
    table.add_row("val accuracy", f"{card['metrics']['validation']['accuracy']:.4f}")
    tuned = card.get("finetune")
    if tuned:
        table.add_row(
            "fine-tuning",
            f"{tuned['steps']} steps in {tuned['seconds']:.0f} s, best epoch {tuned['best_epoch']};"
            f" val {tuned['val_score_onnx_fp32']:.4f} fp32 / {tuned['val_score_onnx_int8']:.4f}"
            f" int8 ONNX -> kept {tuned['onnx']}",
        )
    out.print(table)


def train(
    name: Annotated[str, typer.Argument(help="Artifact name (intent/sentiment, or any name).")],
    data: DataOpt,
    fmt: FormatOpt,
    specialist: Annotated[
        str | None, typer.Option(help="intent or sentiment (default: from the format).")
    ] = None,
    variant: Annotated[
        str | None, typer.Option(help="Sentiment only: binary or three_class.")
    ] = None,
    target_precision: Annotated[
        float | None, typer.Option(help="Precision the acceptance threshold aims for.")
    ] = None,
    calibration: Annotated[
        str, typer.Option(help="temperature, isotonic or none.")
    ] = "temperature",
    text_column: Annotated[str, typer.Option(help="csv/jsonl: the text column.")] = "text",
    label_column: Annotated[str, typer.Option(help="csv/jsonl: the label column.")] = "label",
    store: StoreOpt = DEFAULT_STORE,
    cache_dir: CacheOpt = DEFAULT_CACHE_DIR,
    as_json: JsonOpt = False,
    seed: Annotated[
        int | None,
        typer.Option(
            help="cuad: seed of the train/test contract split; --finetune: seed of the data "
            "order, dropout and head initialisation."
        ),
    ] = None,
    class_offsets: Annotated[
        bool,
        typer.Option(
            "--class-offsets",
            help="Fit one logit offset per class on the held-out data, every class weighted "
            "the same (for macro recall when the data you serve drifts from the validation "
            "data; see benchmarks/RESULTS.md, TweetEval).",
        ),
    ] = False,
    finetune: Annotated[
        bool,
        typer.Option(
            "--finetune",
            help="Fine-tune the encoder too (torch: the `train` extra), export it to int8 ONNX "
            "inside the artifact.",
        ),
    ] = False,
    epochs: Annotated[int, typer.Option(help="--finetune: passes over the data.")] = 2,
    lr: Annotated[float, typer.Option(help="--finetune: encoder learning rate.")] = 5e-5,
    max_length: Annotated[int, typer.Option(help="--finetune: tokens per text.")] = 64,
    batch_size: Annotated[int, typer.Option(help="--finetune: texts per step.")] = 32,
    max_train: Annotated[
        int | None, typer.Option(help="--finetune: subsample the training split (stratified).")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="--finetune: torch CPU threads.")] = None,
    init: Annotated[
        str | None,
        typer.Option(
            help="--finetune: start from this fine-tuned artifact (name in --store or folder) "
            "instead of the pretrained MiniLM, e.g. SST-2 first, then tweets."
        ),
    ] = None,
    soup: Annotated[
        int,
        typer.Option(
            min=1,
            help="--finetune: fine-tune this many times (data order and dropout differ) and "
            "average the weights, a model soup: steadier on small data, same inference cost.",
        ),
    ] = 1,
) -> int:
    """Train a specialist head on labelled data and write its artifact and model card."""
    if fmt == "cuad":
        if finetune or class_offsets:
            flag = "--finetune" if finetune else "--class-offsets"
            raise ConfigurationError(f"{flag} applies to the text classifiers, not to cuad")
        from orchestrator.cli.clauses import train_cuad

        return train_cuad(
            name,
            data,
            specialist=specialist,
            store=store,
            target_precision=target_precision,
            seed=seed,
            as_json=as_json,
            command=_command_line(
                "specialists",
                "train",
                name,
                data=data,
                format=fmt,
                target_precision=target_precision,
                seed=seed,
            ),
        )
    if init and not finetune:
        raise ConfigurationError("--init starts a fine-tuning run: add --finetune")
    if seed is not None and not finetune:
        raise ConfigurationError(
            "--seed sets the cuad contract split or a --finetune run; a frozen head is "
            "deterministic, so drop --seed or add --finetune"
        )
    tuned = (
        {
            "init": init,
            "epochs": epochs,
            "learning_rate": lr,
            "max_length": max_length,
            "batch_size": batch_size,
            "max_train": max_train,
            "threads": threads,
            "soup": soup,
        }
        | ({"seed": seed} if seed is not None else {})
        if finetune
        else None
    )
    card = _train_one(
        name,
        data,
        fmt,
        specialist=specialist,
        variant=variant,
        store=store,
        cache_dir=cache_dir,
        target_precision=target_precision,
        calibration=calibration,
        text_column=text_column,
        label_column=label_column,
        show_progress=not as_json,
        command=_command_line(
            "specialists",
            "train",
            name,
            data=data,
            format=fmt,
            specialist=specialist,
            variant=variant,
            target_precision=target_precision,
            calibration=None if calibration == "temperature" else calibration,
            text_column=None if text_column == "text" else text_column,
            label_column=None if label_column == "label" else label_column,
            finetune=finetune,
            **(
                {
                    "epochs": epochs,
                    "lr": lr,
                    "max_length": max_length,
                    "batch_size": batch_size,
                    "max_train": max_train,
                    "init": init,
                    "soup": soup if soup > 1 else None,
                    "seed": seed,
                }
                if finetune
                else {}
            ),
            class_offsets=class_offsets,
        ),
        finetune=tuned,
        class_offsets=class_offsets,
    )
    if as_json:
        out.print_json(json.dumps(card))
    else:
        _print_card(card)
    return 0


def _evaluate(
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
    with _progress(show_progress) as progress:
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
            help="--format bfcl: extract, hybrid or generate (default: the specialist's)."
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
        from orchestrator.cli.clauses import evaluate_cuad

        evaluate_cuad(name, data, split, store=store, plots=plots, as_json=as_json)
        return 0
    if fmt == "bfcl":
        return _evaluate_bfcl(
            name, data, category, limit=limit, part=part or "all", as_json=as_json, filler=filler
        )
    result = _evaluate(
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


def build_pack(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Folder holding clinc150/, banking77/, sst2/, ...")
    ],
    store: StoreOpt = DEFAULT_STORE,
    cache_dir: CacheOpt = DEFAULT_CACHE_DIR,
    plots: Annotated[
        Path | None, typer.Option(help="Write each artifact's plots under PLOTS/<name>/.")
    ] = None,
    only: Annotated[list[str] | None, typer.Option(help="Build only these artifacts.")] = None,
    as_json: JsonOpt = False,
) -> int:
    """Train and evaluate the full pack (every artifact in PACK) from a data directory."""
    unknown = sorted(set(only or []) - set(PACK))
    if unknown:
        raise ConfigurationError(f"unknown pack artifact(s) {unknown}; known: {sorted(PACK)}")
    rows: list[dict[str, Any]] = []
    for name, (folder, fmt, variant) in PACK.items():
        if only and name not in only:
            continue
        path = data_dir / folder
        if not path.exists():
            raise ConfigurationError(f"{path}: missing; --data-dir must hold {folder}/")
        command = shlex.join(
            ["orchestrator", "specialists", "train", name, "--data", str(path), "--format", fmt]
            + (["--variant", variant] if variant else [])
        )
        card = _train_one(
            name,
            path,
            fmt,
            specialist=None,
            variant=variant,
            store=store,
            cache_dir=cache_dir,
            target_precision=None,
            calibration="temperature",
            text_column="text",
            label_column="label",
            show_progress=not as_json,
            command=command,
        )
        result = _evaluate(
            name,
            path,
            fmt,
            "test",
            store=store,
            cache_dir=cache_dir,
            plots=plots / name if plots else None,
            latency_samples=200,
            show_progress=not as_json,
        )
        update_model_card(card["path"], "test", result["metrics"])
        rows.append({"name": name, "train": card, "eval": result})
        if not as_json:
            out.print(f"built {name}: {card['path']}")
    if as_json:
        out.print_json(json.dumps(rows))
    return 0


def _evaluate_bfcl(
    name: str,
    data: Path,
    categories: list[str] | None,
    *,
    limit: int | None,
    part: str,
    as_json: bool,
    filler: str | None = None,
) -> int:
    from orchestrator.specialists.evaluation.bfcl import CATEGORIES, evaluate_bfcl

    unknown = sorted(set(categories or []) - set(CATEGORIES))
    if unknown:
        raise ConfigurationError(f"unknown BFCL category {unknown}; known: {', '.join(CATEGORIES)}")
    specialist = _function_call(name, "bfcl", filler)
    with _progress(not as_json) as progress:
        report = evaluate_bfcl(
            specialist,
            data,
            categories or list(CATEGORIES),
            part=part,
            limit=limit,
            progress=progress,
        )
    report["command"] = _command_line(
        "eval",
        name,
        data=data,
        format="bfcl",
        limit=limit,
        part=None if part == "all" else part,
        filler=filler,
    ) + "".join(f" --category {c}" for c in categories or [])
    report["filler"] = getattr(specialist, "filler", None)
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
    return 0


def _function_call(name: str, fmt: str, filler: str | None) -> Any:
    from orchestrator.specialists._registry import default_registry

    if name != "function_call":
        raise ConfigurationError(
            f"--format {fmt} evaluates the function_call specialist, not {name!r}"
        )
    fillers = ("auto", "extract", "hybrid", "generate")
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
    with _progress(not as_json) as progress:
        report = evaluate_assistant(specialist, part=part, path=data, progress=progress)
    report["command"] = _command_line(
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
    if "kept" in report:
        out.print(
            f"at threshold {report['threshold']:.2f}: kept {100 * report['kept_relevant']:.1f}% "
            f"of relevant requests, {100 * report['kept_accuracy']:.1f}% of kept right"
        )
    for plot in report.get("plots", []):
        out.print(f"plot: {plot}")
    return 0


def register(app: typer.Typer, specialists_app: typer.Typer) -> None:
    """Add the commands to the CLI's typer apps."""
    specialists_app.command("train")(train)
    specialists_app.command("build-pack")(build_pack)
    app.command("eval")(evaluate)
