"""``orchestrator specialists train`` and ``specialists build-pack``: train specialist heads
(and, with ``--finetune``, the encoder) and write their artifacts and model cards."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from orchestrator._errors import ConfigurationError
from orchestrator.cli._options import CacheOpt, DataOpt, FormatOpt, JsonOpt, StoreOpt
from orchestrator.cli._output import command_line, out, progress_bars
from orchestrator.cli.clauses import train_cuad
from orchestrator.cli.evaluation import score_artifact
from orchestrator.specialists.artifacts import DEFAULT_STORE
from orchestrator.specialists.calibration import Method
from orchestrator.specialists.evaluation.datasets import load_dataset
from orchestrator.specialists.training.artifacts import offsets_text, update_model_card
from orchestrator.specialists.training.embeddings import DEFAULT_CACHE_DIR
from orchestrator.specialists.training.train import SPECIALIST_OF_FORMAT, train_artifact

__all__ = ["PACK", "build_pack", "train"]

#: The full pack: artifact name -> (data folder under the data directory, format, variant).
PACK: dict[str, tuple[str, str, str | None]] = {
    "intent-clinc150": ("clinc150", "clinc150", None),
    "intent-banking77": ("banking77", "banking77", None),
    "sentiment-sst2": ("sst2", "sst2", "binary"),
    "sentiment-tweeteval": ("tweeteval_sentiment", "tweeteval", "three_class"),
}
_TARGET_PRECISION = {"intent": 0.97, "sentiment": 0.95}


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
        with progress_bars(show_progress) as progress:
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
    with progress_bars(show_progress) as progress:
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
        return train_cuad(
            name,
            data,
            specialist=specialist,
            store=store,
            target_precision=target_precision,
            seed=seed,
            as_json=as_json,
            command=command_line(
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
        command=command_line(
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
        result = score_artifact(
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
