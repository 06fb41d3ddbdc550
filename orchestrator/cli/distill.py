"""CLI commands of the distillation loop: ``eval-distill`` (the replay evaluation),
``distill`` (from the trace store), ``traces export``, and the artifact versions
(``specialists versions|promote|rollback``).

``register(app, specialists_app)`` adds them to the main typer app.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from orchestrator._errors import ConfigurationError
from orchestrator._ledger import PriceTable
from orchestrator._orchestrator import DEFAULT_STATE_DIR
from orchestrator._postgres import DATABASE_URL_ENV, database_url
from orchestrator.cli._output import err, out
from orchestrator.specialists.artifacts import DEFAULT_STORE
from orchestrator.specialists.training.embeddings import DEFAULT_CACHE_DIR
from orchestrator.specialists.versions import VersionStore

if TYPE_CHECKING:
    from orchestrator.specialists.training.finetune import FinetuneConfig

__all__ = [
    "distill",
    "eval_distill",
    "promote",
    "rollback",
    "traces_app",
    "traces_export",
    "versions",
]

_REPLAY_FORMATS = ("banking77", "clinc150", "csv", "jsonl")


def eval_distill(
    name: Annotated[str, typer.Argument(help="Name of the specialist the replay trains.")],
    data: Annotated[Path, typer.Option(help="The dataset folder or file.")],
    format: Annotated[
        str, typer.Option("--format", help="banking77, clinc150 (or csv, jsonl with splits).")
    ],
    teacher: Annotated[
        str,
        typer.Option(
            help="gold (the gold label, as a simulated teacher) or a JSONL file of recorded "
            "teacher answers {text, label}."
        ),
    ] = "gold",
    shots: Annotated[int, typer.Option(help="Training examples per class to start from.")] = 10,
    rounds: Annotated[int, typer.Option(help="Rounds the training split streams in.")] = 5,
    teacher_noise: Annotated[
        float, typer.Option(help="Gold teacher only: share of labels replaced at random.")
    ] = 0.0,
    store: Annotated[
        Path | None,
        typer.Option(help="Keep every version here as NAME@N (default: a temporary store)."),
    ] = None,
    target_precision: Annotated[
        float, typer.Option(help="Precision of accepted answers the thresholds aim for.")
    ] = 0.97,
    max_oos_accepted: Annotated[
        float | None,
        typer.Option(
            help="Data with an out-of-scope label: the one-sided 95% upper bound of the "
            "share of the validation split's out-of-scope questions accepted with an intent "
            "may be at most this (default 0.03)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the examples drawn and the order.")] = 0,
    prices: Annotated[
        Path | None, typer.Option(help="Price table (YAML) for the cost per 1,000 requests.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Frontier model priced (default: the table's).")
    ] = None,
    cache_dir: Annotated[
        Path, typer.Option("--cache-dir", help="Embedding cache directory.")
    ] = DEFAULT_CACHE_DIR,
    plot: Annotated[
        Path | None, typer.Option(help="Write frontier share and accuracy by round as a PNG.")
    ] = None,
    self_labels: Annotated[
        bool,
        typer.Option(
            "--self-labels",
            help="Candidates also train on the serving versions' accepted answers "
            "(self-training); held-out teacher labels still judge them.",
        ),
    ] = False,
    finetune: Annotated[
        bool,
        typer.Option(
            "--finetune",
            help="Every candidate fine-tunes the encoder too (the `train` extra; minutes per "
            "round); the first version stays a head over the bundled encoder.",
        ),
    ] = False,
    epochs: Annotated[int, typer.Option(help="--finetune: passes over the data.")] = 3,
    lr: Annotated[float, typer.Option(help="--finetune: encoder learning rate.")] = 8e-5,
    max_length: Annotated[int, typer.Option(help="--finetune: tokens per text.")] = 48,
    threads: Annotated[int | None, typer.Option(help="--finetune: torch CPU threads.")] = None,
    warm_start: Annotated[
        bool,
        typer.Option(
            "--warm-start",
            help="--finetune: a candidate goes on from the serving version's fine-tuned "
            "encoder instead of starting again from all-MiniLM-L6-v2.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> int:
    """Replay a dataset's training split as traffic: escalations get the teacher's label, a
    candidate is distilled after each round, and every round is scored on the test split."""
    from orchestrator.specialists.evaluation.datasets import load_dataset
    from orchestrator.specialists.evaluation.replay import (
        GoldTeacher,
        RecordedTeacher,
        ReplayConfig,
        Teacher,
        plot_replay,
        run_replay,
    )

    if format not in _REPLAY_FORMATS:
        raise ConfigurationError(
            f"--format {format!r}: the replay reads {', '.join(_REPLAY_FORMATS)}"
        )
    # Built first: it checks the numbers before any data loads.
    config = ReplayConfig(
        shots=shots,
        rounds=rounds,
        seed=seed,
        target_precision=target_precision,
        frontier_model=model,
        self_labels=self_labels,
    )
    if max_oos_accepted is not None:
        config = replace(config, max_oos_accepted=max_oos_accepted)
    if teacher != "gold" and teacher_noise:
        raise ConfigurationError("--teacher-noise applies to --teacher gold only")
    tuning = None
    if finetune:
        from orchestrator.specialists.training.finetune import FinetuneConfig, require_torch

        require_torch()  # before any data loads: the message names the extra
        if epochs < 1 or max_length < 8 or lr <= 0:
            raise ConfigurationError(
                f"--epochs {epochs}, --max-length {max_length}, --lr {lr}: give at least 1 "
                "epoch, at least 8 tokens and a positive learning rate"
            )
        tuning = FinetuneConfig(
            epochs=epochs, learning_rate=lr, max_length=max_length, threads=threads, seed=seed
        )
    elif (epochs, lr, max_length, threads, warm_start) != (3, 8e-5, 48, None, False):
        raise ConfigurationError(
            "--epochs, --lr, --max-length, --threads and --warm-start need --finetune"
        )
    recorded = RecordedTeacher.from_file(teacher) if teacher != "gold" else None
    dataset = load_dataset(data, format)
    for split in ("train", "test"):
        dataset.split(split)  # a clear error when the data lacks one
    chosen: Teacher = recorded or GoldTeacher(dataset.label_set(), noise=teacher_noise, seed=seed)
    table = PriceTable.load(prices)
    with tempfile.TemporaryDirectory(prefix="orchestrator-replay-") as scratch:
        where = store if store is not None else Path(scratch) / "store"
        with err.status(f"replaying {dataset.name} in {rounds} rounds…"):
            report = run_replay(
                dataset,
                name,
                teacher=chosen,
                config=config,
                store=where,
                prices=table,
                cache_dir=cache_dir,
                finetune=tuning,
                warm_start=warm_start,
            )
        if store is None:
            report.store = None
    if plot is not None:
        plot_replay(report, plot)
    if as_json:
        out.print_json(json.dumps(report.to_json()))
        return 0
    _print_replay(report.to_json(), plot)
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _print_replay(report: dict[str, Any], plot: Path | None) -> None:
    config = report["config"]
    how = [
        *(["fine-tuned candidates"] if config.get("finetune") else []),
        *(["warm starts"] if config.get("warm_start") else []),
        *(["self-labels"] if config.get("self_labels") else []),
    ]
    table = Table(
        title=f"Distillation replay: {report['name']} on {report['dataset']}; teacher: "
        f"{report['teacher']}" + (f" ({', '.join(how)})" if how else ""),
        title_justify="left",
    )
    for column in (
        "round",
        "version",
        "requests",
        "frontier",
        "accepted (test)",
        "test acc.",
        "$/1k",
        "all-frontier $/1k",
        "candidate",
    ):
        table.add_column(column, justify="right")
    for row in report["rounds"]:
        distilled = row["distilled"]
        table.add_row(
            str(row["round"]),
            row["version"],
            str(row["requests"]),
            _pct(row["frontier_share"]),
            _pct(row["accepted_accuracy"]),
            _pct(row["test_accuracy"]),
            f"{row['cost']['per_1000_requests_usd']:.3f}",
            f"{row['cost']['all_frontier_per_1000_requests_usd']:.3f}",
            f"{distilled['candidate']} " + ("promoted" if distilled["promoted"] else "refused"),
        )
    out.print(table)
    final, gold = report["final"], report["all_gold"]
    out.print(
        f"final {final['version']}: test accuracy {_pct(final['accuracy'])}, accepted "
        f"{_pct(final['accepted_accuracy'])} at {_pct(final['coverage'])} coverage; a head on "
        f"all {gold['trained_on']} gold labels over the bundled encoder: "
        f"{_pct(gold['accuracy'])}"
    )
    for row in report["rounds"]:
        if not row["distilled"]["promoted"]:
            out.print(f"round {row['round']}: {row['distilled']['reason']}")
    for note in report["notes"]:
        out.print(f"note: {note}")
    if plot is not None:
        out.print(f"plot: {plot}")


def versions(
    name: Annotated[str, typer.Argument(help="Artifact name in the store.")],
    store: Annotated[Path, typer.Option(help="Artifact store.")] = DEFAULT_STORE,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> int:
    """List an artifact's versions, which one is promoted, and each one's lineage."""
    kept = VersionStore(store)
    numbers = kept.versions(name)
    if not numbers:
        legacy = (store / name / "artifact.json").is_file()
        raise ConfigurationError(
            f"{name} has no versions in {store}"
            + (
                " (an unversioned artifact is there; `orchestrator distill` adds versions)"
                if legacy
                else "; train one with `orchestrator specialists train`"
            )
        )
    promoted = kept.promoted(name)
    rows = []
    for number in numbers:
        card = kept.card(name, number)
        lineage = card.get("lineage", {})
        gate = lineage.get("promotion", {})
        rows.append(
            {
                "version": number,
                "promoted": number == promoted,
                "created": card.get("created"),
                "parent": lineage.get("parent"),
                "teacher_labels": lineage.get("teacher_labels_trained"),
                "gate": gate.get("reason"),
            }
        )
    if as_json:
        out.print_json(json.dumps({"name": name, "promoted": promoted, "versions": rows}))
        return 0
    table = Table(title=f"{name} in {store}", title_justify="left")
    for column in ("version", "", "created", "parent", "teacher labels", "promotion gate"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            f"{name}@{row['version']}",
            "promoted" if row["promoted"] else "",
            row["created"] or "",
            row["parent"] or "",
            "" if row["teacher_labels"] is None else str(row["teacher_labels"]),
            row["gate"] or "",
        )
    out.print(table)
    return 0


def promote(
    ref: Annotated[str, typer.Argument(help="NAME@N: the version to serve as NAME.")],
    store: Annotated[Path, typer.Option(help="Artifact store.")] = DEFAULT_STORE,
) -> int:
    """Serve a version: bindings that name the artifact without a version follow it."""
    from orchestrator.specialists.versions import parse_version_ref

    parsed = parse_version_ref(ref)
    if parsed is None or parsed.version is None:
        raise ConfigurationError(f"{ref!r}: name the version to promote as NAME@N, e.g. intent@3")
    previous = VersionStore(store).promote(parsed.name, parsed.version, reason="by hand")
    was = f" (was @{previous})" if previous is not None else ""
    out.print(f"{parsed} is promoted{was}")
    return 0


def rollback(
    name: Annotated[str, typer.Argument(help="Artifact name in the store.")],
    store: Annotated[Path, typer.Option(help="Artifact store.")] = DEFAULT_STORE,
) -> int:
    """Serve the version promoted before the current one again."""
    kept = VersionStore(store)
    current = kept.promoted(name)
    target = kept.rollback(name, reason="by hand")
    out.print(f"{name}@{target} is promoted again (was @{current})")
    return 0


StateDirOpt = Annotated[
    Path, typer.Option(help="State directory holding the trace store (traces.sqlite).")
]
SinceOpt = Annotated[
    str | None,
    typer.Option(help="Only traces from this time on: ISO time or 30m, 12h, 7d back."),
]


TracesDatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        envvar=DATABASE_URL_ENV,
        show_envvar=False,
        show_default=False,
        help="Read the trace store of this PostgreSQL database (runs with --checkpointer "
        f"postgres keep their traces there) instead of the state directory's; default: the "
        f"{DATABASE_URL_ENV} variable, when set.",
    ),
]


def _trace_store(state_dir: Path, url: str | None, *, must_exist: bool) -> Any:
    """The trace store to read: the database's when a URL is given, else the state
    directory's SQLite file (which `must_exist` for reading only)."""
    if url:
        from orchestrator._traces_postgres import PostgresTraceStore

        # Checked as every other --database-url is, and its password masked from here on.
        return PostgresTraceStore(database_url(url))
    from orchestrator._traces import TRACES_FILE, open_trace_store

    if must_exist and not (state_dir / TRACES_FILE).is_file():
        raise ConfigurationError(
            f"no trace store in {state_dir} ({TRACES_FILE}); runs record traces there (or "
            "pass --database-url for runs kept in PostgreSQL)"
        )
    return open_trace_store(state_dir)


def distill(
    name: Annotated[str, typer.Argument(help="Artifact name in the store.")],
    store: Annotated[Path, typer.Option(help="Artifact store.")] = DEFAULT_STORE,
    state_dir: StateDirOpt = DEFAULT_STATE_DIR,
    database_url: TracesDatabaseOpt = None,
    min_labels: Annotated[
        int, typer.Option(help="Distil only with at least this many teacher labels.")
    ] = 50,
    since: SinceOpt = None,
    data: Annotated[
        Path | None, typer.Option(help="Base training data (default: as the model card says).")
    ] = None,
    format: Annotated[str | None, typer.Option("--format", help="Format of --data.")] = None,
    finetune: Annotated[
        bool,
        typer.Option(help="Fine-tune the encoder too (the `train` extra; minutes to an hour)."),
    ] = False,
    self_labels: Annotated[
        bool,
        typer.Option(
            "--self-labels",
            help="Train on the specialist's own accepted answers in the traces too "
            "(self-training); held-out teacher labels still judge the candidate.",
        ),
    ] = False,
    warm_start: Annotated[
        bool,
        typer.Option(
            "--warm-start",
            help="--finetune: go on from the current version's fine-tuned encoder instead "
            "of starting again from all-MiniLM-L6-v2.",
        ),
    ] = False,
    cache_dir: Annotated[
        Path, typer.Option("--cache-dir", help="Embedding cache directory.")
    ] = DEFAULT_CACHE_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    lock: Annotated[
        Path | None,
        typer.Option(hidden=True, help="A lock file to remove when done (the background learner)."),
    ] = None,
) -> int:
    """Train a candidate from the base data plus the teacher labels in the trace store,
    compare it with the current version, and promote it only if it is better."""
    try:
        # The user's mistakes first, before a trace store is opened (or created).
        if min_labels < 1:
            raise ConfigurationError(f"--min-labels {min_labels}: give at least 1")
        if (data is None) != (format is None):
            raise ConfigurationError("give --data and --format together")
        from orchestrator._traces import parse_since

        start = parse_since(since) if since else None
        if warm_start and not finetune:
            raise ConfigurationError("--warm-start needs --finetune")
        settings = None
        if finetune:
            from orchestrator.specialists.training.finetune import FinetuneConfig, require_torch

            require_torch()  # before any data loads: the message names the extra
            settings = FinetuneConfig()
        traces = _trace_store(state_dir, database_url, must_exist=False)
        try:
            return _distill(
                name,
                store,
                traces,
                min_labels,
                start,
                data,
                format,
                settings,
                cache_dir,
                as_json,
                self_labels=self_labels,
                warm_start=warm_start,
            )
        finally:
            traces.close()
    finally:
        if lock is not None:
            lock.unlink(missing_ok=True)


def _distill(
    name: str,
    store: Path,
    traces: Any,
    min_labels: int,
    start: float | None,
    data: Path | None,
    format: str | None,
    settings: FinetuneConfig | None,
    cache_dir: Path,
    as_json: bool,
    *,
    self_labels: bool = False,
    warm_start: bool = False,
) -> int:
    from orchestrator.specialists.training.from_traces import distill_from_traces

    with err.status(f"distilling {name}…"):
        report = distill_from_traces(
            name,
            traces,
            store=store,
            min_labels=min_labels,
            since=start,
            data=data,
            fmt=format,
            finetune=settings,
            cache_dir=cache_dir,
            command=" ".join(["orchestrator", "distill", name]),
            self_labels=self_labels,
            warm_start=warm_start,
        )
    if as_json:
        out.print_json(json.dumps(report.to_json()))
        return 0
    if not report.distilled:
        out.print(f"{report.current} stays: {report.reason}")
    elif report.promoted:
        out.print(f"{report.candidate} is promoted (was {report.current}): {report.reason}")
    else:
        out.print(
            f"{report.candidate} is kept but not promoted; {report.current} stays: {report.reason}"
        )
    for reason, count in report.skipped.items():
        out.print(f"left out: {count} trace(s) with {reason}")
    return 0


def traces_export(
    name: Annotated[str, typer.Argument(help="A binding's or an artifact's name.")],
    out_file: Annotated[Path, typer.Option("--out", help="The JSONL file to write.")],
    state_dir: StateDirOpt = DEFAULT_STATE_DIR,
    database_url: TracesDatabaseOpt = None,
    since: SinceOpt = None,
    taught_only: Annotated[
        bool, typer.Option(help="Only traces whose final answer came from a teacher.")
    ] = False,
) -> int:
    """Write a specialist's traces as JSON lines (one subtask each)."""
    from orchestrator._traces import export_traces, parse_since

    start = parse_since(since) if since else None
    traces = _trace_store(state_dir, database_url, must_exist=True)
    try:
        count = export_traces(traces, name, out_file, since=start, taught_only=taught_only)
    finally:
        traces.close()
    out.print(f"{count} trace(s) of {name} -> {out_file}")
    return 0


traces_app = typer.Typer(
    help="The trace store: what each subtask asked and got.",
    no_args_is_help=True,
    add_completion=False,
)
traces_app.command("export")(traces_export)
