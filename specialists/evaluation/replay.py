"""Replaying a dataset's training split as traffic: every escalation teaches the specialist.

A specialist trained on K examples per class serves the rest of the training split, in rounds,
as incoming requests. Answers under its calibrated threshold escalate to a teacher (the gold
label as a simulated teacher, optionally with label noise, or recorded teacher answers), and
after each round a candidate is distilled from the base examples plus the teacher labels and
put through the promotion gate. Every round's serving version is scored on the test split,
which nothing here trains, calibrates or decides on.

Calibration, thresholds and the gate use the validation split (carved from the training split,
stratified, when the dataset has none) and held-out teacher labels: a stable share of the new
labels is kept from the candidates and judges them until one is promoted; later candidates
train on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from orchestrator._ledger import PriceTable, estimated_frontier_tokens
from orchestrator.specialists.artifacts import Artifact, artifact_encoder
from orchestrator.specialists.backends.encoder import (
    OnnxSentenceEncoder,
    TextEncoder,
    bundled_encoder,
)
from orchestrator.specialists.evaluation.datasets import (
    DataError,
    Split,
    TextDataset,
    read_jsonl_objects,
    stratified_split,
)
from orchestrator.specialists.evaluation.plotting import pyplot
from orchestrator.specialists.training.artifacts import write_version
from orchestrator.specialists.training.distill import (
    DistillData,
    PromotionRule,
    accepted_ranking,
    classifier_artifact,
    distill_candidate,
    finetuned_candidate,
    held_out,
)
from orchestrator.specialists.training.embeddings import embed_texts, split_embedder
from orchestrator.specialists.training.out_of_scope import (
    DEFAULT_MAX_OOS_ACCEPTED,
    OutOfScopeSetting,
    card_section,
)
from orchestrator.specialists.training.train import (
    FittedClassifier,
    StepProgress,
    fit_classifier,
)
from orchestrator.specialists.versions import VersionStore

if TYPE_CHECKING:
    from orchestrator.specialists.training.finetune import FinetuneConfig

__all__ = [
    "GoldTeacher",
    "RecordedTeacher",
    "ReplayConfig",
    "ReplayReport",
    "RoundReport",
    "Teacher",
    "TeacherAnswer",
    "plot_replay",
    "run_replay",
]

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


# -- teachers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TeacherAnswer:
    label: str
    #: What the answer cost, when the teacher recorded it (else estimated like the ledger).
    input_tokens: int | None = None
    output_tokens: int | None = None


class Teacher(Protocol):
    """Whoever answers the escalated requests."""

    @property
    def description(self) -> str: ...

    def answer(self, text: str, gold: str) -> TeacherAnswer | None:
        """The teacher's label for `text` (``gold`` is only for simulated teachers), or
        ``None`` when it has no answer."""
        ...


class GoldTeacher:
    """A simulated teacher: the gold label, replaced by a random other label at rate
    ``noise``."""

    def __init__(self, labels: Sequence[str], *, noise: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= noise < 1.0:
            raise DataError(f"--teacher-noise {noise}: give a rate in [0, 1), e.g. 0.05")
        self.labels = list(labels)
        self.noise = noise
        self._rng = np.random.default_rng(seed)

    @property
    def description(self) -> str:
        noise = f", {self.noise:.0%} of labels replaced at random" if self.noise else ""
        return f"simulated teacher (gold labels{noise})"

    def answer(self, text: str, gold: str) -> TeacherAnswer:
        if self.noise and self._rng.random() < self.noise:
            others = [label for label in self.labels if label != gold]
            return TeacherAnswer(others[int(self._rng.integers(len(others)))])
        return TeacherAnswer(gold)


class RecordedTeacher:
    """Teacher answers recorded earlier: JSONL lines ``{"text": ..., "label": ...}``, with
    ``input_tokens`` and ``output_tokens`` when the call's usage was recorded."""

    def __init__(self, answers: dict[str, TeacherAnswer], source: str) -> None:
        self.answers = answers
        self.source = source

    @property
    def description(self) -> str:
        return f"recorded teacher answers ({len(self.answers)} in {self.source})"

    @classmethod
    def from_file(cls, path: str | Path) -> RecordedTeacher:
        file = Path(path)
        if not file.is_file():
            raise DataError(f"--teacher {file}: no such file; give 'gold' or a JSONL file")
        answers: dict[str, TeacherAnswer] = {}
        shape = 'each line is {"text": ..., "label": ...}'
        for lineno, row in read_jsonl_objects(file, shape):
            if not (isinstance(row.get("text"), str) and isinstance(row.get("label"), str)):
                raise DataError(f"{file}:{lineno}: expected string fields 'text' and 'label'")
            tokens = [row.get(k) for k in ("input_tokens", "output_tokens")]
            if any(t is not None and not isinstance(t, int) for t in tokens):
                raise DataError(f"{file}:{lineno}: input_tokens/output_tokens must be ints")
            answers[row["text"]] = TeacherAnswer(row["label"], tokens[0], tokens[1])
        if not answers:
            raise DataError(f"{file}: no teacher answers in the file")
        return cls(answers, str(file))

    def answer(self, text: str, gold: str) -> TeacherAnswer | None:
        return self.answers.get(text)


# -- configuration and report ----------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ReplayConfig:
    shots: int = 10
    """Examples per class the first version is trained on."""
    rounds: int = 5
    """The rest of the training split arrives in this many equal rounds."""
    held_out_share: float = 0.2
    """Share of each round's teacher labels that its candidate never trains on (the gate's)."""
    target_precision: float = 0.97
    """Precision the thresholds aim for on the validation split."""
    lower_bound: float = 0.95
    """Thresholds need the lower bound of the validation precision at this confidence."""
    val_fraction: float = 0.1
    """Share of the training split set aside as validation when the data has no such split."""
    seed: int = 0
    rule: PromotionRule = field(default_factory=PromotionRule)
    frontier_model: str | None = None
    """Priced for escalations and the all-frontier counterfactual (default: the table's)."""
    timing_sample: int = 64
    """Requests per round timed through the encoder at batch 1 for the specialist's cost."""
    max_oos_accepted: float = DEFAULT_MAX_OOS_ACCEPTED
    """Data with an out-of-scope label: at most this share of the validation split's
    out-of-scope questions may be accepted with an intent (the out-of-scope detector's
    threshold, :mod:`~orchestrator.specialists.training.out_of_scope`)."""
    self_labels: bool = False
    """Candidates also train on the serving versions' accepted answers (self-training): the
    requests they answered, labelled as they answered them. The held-out teacher labels and
    the validation split still judge every candidate."""

    def __post_init__(self) -> None:
        if self.shots < 2:
            raise DataError(f"--shots {self.shots}: give at least 2 examples per class")
        if self.rounds < 1:
            raise DataError(f"--rounds {self.rounds}: give at least 1 round")
        if not 0.5 <= self.target_precision < 1.0:
            raise DataError(
                f"--target-precision {self.target_precision}: give a precision in [0.5, 1)"
            )
        if not 0.0 <= self.max_oos_accepted <= 1.0:
            raise DataError(
                f"--max-oos-accepted {self.max_oos_accepted}: give a share in [0, 1], e.g. 0.03"
            )
        if not 0.0 < self.held_out_share < 1.0:
            raise DataError(f"held-out share {self.held_out_share}: give a share in (0, 1)")


@dataclass
class RoundReport:
    round: int
    version: str
    requests: int
    escalated: int
    frontier_share: float
    #: Teacher labels gained this round (escalations the teacher answered with a known label).
    teacher_labels: int
    unanswered: int
    #: Accuracy of the version's accepted answers on this round's requests (vs gold).
    stream_accepted_accuracy: float | None
    #: On the test split: accuracy of the accepted answers, share accepted, accuracy overall.
    accepted_accuracy: float | None
    test_coverage: float
    test_accuracy: float
    #: Accepted answers to in-scope test queries only (data with an out-of-scope label).
    accepted_in_scope_accuracy: float | None
    #: Share of the out-of-scope test queries not accepted with an intent (None: no such label).
    out_of_scope_refused: float | None
    #: The distillation after this round: the candidate and the gate's verdict.
    distilled: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReplayReport:
    name: str
    dataset: str
    teacher: str
    config: dict[str, Any]
    splits: dict[str, int]
    rounds: list[RoundReport]
    #: The version after the last distillation, scored on the test split.
    final: dict[str, Any]
    #: A head trained on every gold label of the same examples, with the same threshold rule.
    all_gold: dict[str, Any]
    prices: dict[str, Any]
    notes: list[str]
    store: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dataset": self.dataset,
            "teacher": self.teacher,
            "config": self.config,
            "splits": self.splits,
            "rounds": [r.to_json() for r in self.rounds],
            "final": self.final,
            "all_gold": self.all_gold,
            "prices": self.prices,
            "notes": self.notes,
            "store": self.store,
        }


# -- the replay -------------------------------------------------------------------------------
def _no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


@dataclass
class _Scores:
    """One version on the test split."""

    accepted_accuracy: float | None
    coverage: float
    accuracy: float
    #: The accepted answers to in-scope queries only (eval-cascade's measure); None without
    #: an out-of-scope label.
    accepted_in_scope_accuracy: float | None = None
    #: Share of the out-of-scope queries not accepted (None without an out-of-scope label).
    out_of_scope_refused: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Served:
    """The serving version's embeddings of the stream's pool, validation and test split."""

    pool: Floats
    val: Floats
    test: Floats


def _score_test(artifact: Artifact, x: Floats, truth: Ints) -> _Scores:
    pred, _, accepts = accepted_ranking(artifact, x)
    correct = pred == truth
    oos = artifact.labels.index(artifact.oos_label) if artifact.oos_label else None
    # CLINC150's accuracy counts in-scope queries; an accepted out-of-scope query is an error.
    in_scope = truth != oos if oos is not None else np.ones(len(truth), dtype=bool)
    kept = accepts & in_scope
    return _Scores(
        accepted_accuracy=float(correct[accepts].mean()) if accepts.any() else None,
        coverage=float(accepts.mean()),
        accuracy=float(correct[in_scope].mean()),
        accepted_in_scope_accuracy=(
            float(correct[kept].mean()) if oos is not None and kept.any() else None
        ),
        out_of_scope_refused=(float((~accepts[~in_scope]).mean()) if (~in_scope).any() else None),
    )


def _pick_seed(labels: Sequence[str], shots: int, rng: np.random.Generator) -> list[int]:
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    short = sorted(label for label, idx in by_label.items() if len(idx) <= shots)
    if short:
        raise DataError(
            f"--shots {shots}: {len(short)} label(s) have no more than {shots} training "
            f"examples ({', '.join(short[:5])}); give fewer shots"
        )
    seed: list[int] = []
    for label in sorted(by_label):
        seed.extend(rng.choice(by_label[label], size=shots, replace=False).tolist())
    return sorted(seed)


@dataclass
class _TeacherLabels:
    """Teacher labels so far (stream positions and class indices): those candidates train on,
    and the held-out ones, which no promoted version has trained on yet. They judge every
    candidate until one is promoted; then they join the training labels."""

    share: float
    train_rows: list[int] = field(default_factory=list)
    train_ys: list[int] = field(default_factory=list)
    held_rows: list[int] = field(default_factory=list)
    held_ys: list[int] = field(default_factory=list)

    def add(self, rows: Sequence[int], ys: Sequence[int], *, key: str) -> None:
        for row, y in zip(rows, ys, strict=True):
            held = held_out(f"{key}:{row}", self.share)
            (self.held_rows if held else self.train_rows).append(row)
            (self.held_ys if held else self.train_ys).append(y)

    def release(self) -> None:
        self.train_rows += self.held_rows
        self.train_ys += self.held_ys
        self.held_rows, self.held_ys = [], []


@dataclass
class _OwnAnswers:
    """The serving versions' accepted answers so far (stream positions and the class each
    answered), for candidates that self-train."""

    rows: list[int] = field(default_factory=list)
    ys: list[int] = field(default_factory=list)

    def add(self, rows: Sequence[int], ys: Sequence[int] | Ints) -> None:
        self.rows += list(rows)
        self.ys += [int(y) for y in ys]


class _Pricing:
    """What a request costs: the frontier model (escalations, and every request in the
    all-frontier counterfactual), the specialist's CPU time, and distillation CPU time."""

    def __init__(self, prices: PriceTable, model: str | None) -> None:
        self.table = prices
        self.model = model or prices.default_frontier
        price = prices.price(self.model)
        if price is None:
            raise DataError(
                f"no price for {self.model!r} in the price table {prices.source}; give a "
                "model it lists"
            )
        self.price = price

    def frontier(self, text: str, label: str, answer: TeacherAnswer | None = None) -> float:
        tokens_in, tokens_out = estimated_frontier_tokens({"text": text}, {"label": label})
        if answer is not None and answer.input_tokens is not None:
            tokens_in = answer.input_tokens
        if answer is not None and answer.output_tokens is not None:
            tokens_out = answer.output_tokens
        return (tokens_in * self.price.input + tokens_out * self.price.output) / 1_000_000

    def cpu(self, seconds: float) -> float:
        return self.table.local_cost(seconds * 1000)


def _time_requests(encoder: TextEncoder, artifact: Artifact, texts: list[str]) -> float:
    """CPU seconds per request through the encoder and the head at batch 1 (as served)."""
    encoder.encode(texts[:1])  # warm-up: the first call allocates onnxruntime buffers
    started = time.process_time()
    for text in texts:
        artifact.probabilities(encoder.encode([text]))
    return (time.process_time() - started) / max(1, len(texts))


def run_replay(
    dataset: TextDataset,
    name: str,
    *,
    teacher: Teacher,
    config: ReplayConfig,
    store: str | Path,
    prices: PriceTable | None = None,
    cache_dir: str | Path | None = None,
    progress: StepProgress = _no_progress,
    finetune: FinetuneConfig | None = None,
    pretrained: str | Path | None = None,
    warm_start: bool = False,
) -> ReplayReport:
    """Run the replay; every version (the first, and each round's candidate) is written to
    `store` as ``NAME@N``, and the promoted ones are promoted there.

    With ``finetune`` every candidate fine-tunes the encoder too (the ``train`` extra), from
    ``pretrained`` (default all-MiniLM-L6-v2) on the base examples and the teacher labels; the
    first version stays a head over the bundled encoder. Once a fine-tuned version is
    promoted, the requests, the validation and the test split are read through its encoder.
    With ``warm_start`` a candidate goes on from the serving version's fine-tuned encoder
    (once there is one) instead of starting again from ``pretrained``."""
    if warm_start and finetune is None:
        raise DataError("a warm start needs fine-tuned candidates (--finetune)")
    if finetune is not None:
        from orchestrator.specialists.training.finetune import require_torch

        require_torch()  # before any data loads: the message names the extra
    pricing = _Pricing(prices or PriceTable.load(), config.frontier_model)
    versions = VersionStore(store)
    if versions.versions(name):
        raise DataError(f"{store} already holds versions of {name!r}; give another --store or name")
    train = dataset.split("train")
    test = dataset.split("test")
    rng = np.random.default_rng(config.seed)
    notes: list[str] = []
    labels = tuple(sorted(set(train.labels)))
    index = {label: i for i, label in enumerate(labels)}
    oos = dataset.oos_label if dataset.oos_label in index else None

    encoder = bundled_encoder()

    # Whole splits, so that the embedding cache serves every replay of the same data.
    embed = split_embedder(encoder, cache_dir=cache_dir, progress=progress)
    x_train, x_test = embed(train.texts, "training split"), embed(test.texts, "test")
    if "val" in dataset.splits:
        pool, val = train, dataset.split("val")
        x_pool, x_val = x_train, embed(val.texts, "validation")
    else:
        kept, carved = stratified_split(train.labels, config.val_fraction, seed=config.seed)
        pool, val = train.subset(kept), train.subset(carved)
        x_pool, x_val = x_train[kept], x_train[carved]
        notes.append(
            f"the data has no validation split: {len(val)} training examples "
            f"({config.val_fraction:.0%} per label) were set aside as validation before "
            "anything streamed"
        )
    unknown = sorted((set(val.labels) | set(test.labels)) - set(labels))
    if unknown:
        raise DataError(f"{dataset.source}: labels missing from the training split: {unknown[:5]}")
    seed = _pick_seed(pool.labels, config.shots, rng)
    seeded = set(seed)
    stream = [i for i in rng.permutation(len(pool)).tolist() if i not in seeded]
    rounds = [list(chunk) for chunk in np.array_split(np.asarray(stream), config.rounds)]
    y_pool = np.array([index[label] for label in pool.labels], dtype=np.int64)
    y_val = np.array([index[label] for label in val.labels], dtype=np.int64)
    y_test = np.array([index[label] for label in test.labels], dtype=np.int64)

    def fit(rows: Sequence[int], ys: Ints) -> FittedClassifier:
        return fit_classifier(
            x_pool[list(rows)],
            ys,
            x_val,
            y_val,
            len(labels),
            oos_index=index[oos] if oos is not None else None,
            target_precision=config.target_precision,
            lower_bound=config.lower_bound,
            out_of_scope=OutOfScopeSetting(max_accepted=config.max_oos_accepted),
        )

    def as_artifact(fitted: FittedClassifier, artifact_name: str) -> Artifact:
        return classifier_artifact(
            None,
            fitted,
            name=artifact_name,
            labels=labels,
            encoder_id=encoder.model_id,
            oos_label=oos,
        )

    progress_rounds = progress("rounds", config.rounds + 2)
    started = time.process_time()
    first = fit(seed, y_pool[seed])
    first_cpu = time.process_time() - started
    current = as_artifact(first, name)
    card = _first_card(dataset, name, current, first, len(seed), len(val), config)
    write_version(versions, current, card)
    versions.promote(name, 1, reason=f"the first version, trained on {config.shots} per class")
    progress_rounds(1)

    timer: TextEncoder = OnnxSentenceEncoder.bundled()  # fresh: no cached encodings
    taught = _TeacherLabels(config.held_out_share)
    reports: list[RoundReport] = []
    # What the serving version reads: the bundled encoder's embeddings until a fine-tuned
    # version is promoted, its own after that.
    served = _Served(x_pool, x_val, x_test)
    own = _OwnAnswers()
    for number, rows in enumerate(rounds, 1):
        pred, _, accepts = accepted_ranking(current, served.pool[rows])
        truth = y_pool[rows]
        if config.self_labels:
            own.add([r for r, ok in zip(rows, accepts, strict=True) if ok], pred[accepts])
        escalated = [r for r, ok in zip(rows, accepts, strict=True) if not ok]
        new_rows: list[int] = []
        new_ys: list[int] = []
        frontier_usd = 0.0
        unanswered = 0
        for r in escalated:
            text, gold = pool.texts[r], pool.labels[r]
            answer = teacher.answer(text, gold)
            frontier_usd += pricing.frontier(text, answer.label if answer else gold, answer)
            if answer is None or answer.label not in index:
                unanswered += 1
                continue
            new_rows.append(r)
            new_ys.append(index[answer.label])
        sample = [pool.texts[r] for r in rows[: config.timing_sample]]
        per_request = _time_requests(timer, current, sample)
        scores = _score_test(current, served.test, y_test)
        stream_acc = float((pred[accepts] == truth[accepts]).mean()) if accepts.any() else None
        report = RoundReport(
            round=number,
            version=current.ref,
            requests=len(rows),
            escalated=len(escalated),
            frontier_share=len(escalated) / len(rows),
            teacher_labels=len(new_rows),
            unanswered=unanswered,
            stream_accepted_accuracy=stream_acc,
            accepted_accuracy=scores.accepted_accuracy,
            test_coverage=scores.coverage,
            test_accuracy=scores.accuracy,
            accepted_in_scope_accuracy=scores.accepted_in_scope_accuracy,
            out_of_scope_refused=scores.out_of_scope_refused,
        )
        taught.add(new_rows, new_ys, key=f"{dataset.name}:train")
        command = f"orchestrator eval-distill {name} (round {number})"
        if finetune is None:
            outcome = distill_candidate(
                current,
                DistillData(
                    base_x=served.pool[seed],
                    base_y=y_pool[seed],
                    val_x=served.val,
                    val_y=y_val,
                    teacher_x=served.pool[taught.train_rows],
                    teacher_y=np.asarray(taught.train_ys, dtype=np.int64),
                    held_x=served.pool[taught.held_rows],
                    held_y=np.asarray(taught.held_ys, dtype=np.int64),
                    teacher_note={"source": teacher.description, "rounds": number},
                    own_x=served.pool[own.rows] if config.self_labels else None,
                    own_y=np.asarray(own.ys, dtype=np.int64) if config.self_labels else None,
                ),
                rule=config.rule,
                target_precision=config.target_precision,
                lower_bound=config.lower_bound,
                command=command,
            )
            version = write_version(versions, outcome.candidate, outcome.card)
            decision, candidate = outcome.decision, outcome.candidate
            cpu_seconds = outcome.cpu_seconds
        else:
            tuned = finetuned_candidate(
                current,
                Split(
                    [pool.texts[r] for r in [*seed, *taught.train_rows, *own.rows]],
                    [labels[y] for y in [*y_pool[seed].tolist(), *taught.train_ys, *own.ys]],
                ),
                val,
                Split(
                    [pool.texts[r] for r in taught.held_rows],
                    [labels[y] for y in taught.held_ys],
                ),
                current_held_x=served.pool[taught.held_rows],
                current_val_x=served.val,
                versions=versions,
                config=finetune,
                rule=config.rule,
                target_precision=config.target_precision,
                lower_bound=config.lower_bound,
                teacher={"source": teacher.description, "rounds": number},
                base_examples=len(seed),
                own_answers=len(own.rows),
                source=dataset.source,
                fmt=dataset.format,
                pretrained=pretrained,
                warm_start=warm_start,
                out_of_scope=OutOfScopeSetting(max_accepted=config.max_oos_accepted)
                if oos is not None
                else None,
                command=command,
            )
            version, decision, candidate = tuned.version, tuned.decision, tuned.candidate
            if candidate.labels != labels:  # the seed holds every label, so it cannot differ
                raise DataError(f"{candidate.ref}: labels differ from the replay's")
            cpu_seconds = tuned.cpu_seconds
        if decision.promote:
            versions.promote(name, version, reason=decision.reason)
            if candidate.encoder_id != current.encoder_id:
                # Everything later is read through the promoted version's own encoder.
                read = artifact_encoder(candidate)
                served = _Served(
                    embed_texts(read, pool.texts, cache_dir=None),
                    embed_texts(read, val.texts, cache_dir=None),
                    embed_texts(read, test.texts, cache_dir=None),
                )
                timer = artifact_encoder(candidate, fresh=True)
            current = candidate
            taught.release()
        report.distilled = {
            "candidate": f"{name}@{version}",
            "promoted": decision.promote,
            "reason": decision.reason,
            "gate": decision.numbers,
            "cpu_seconds": cpu_seconds,
            "own_answers": len(own.rows),
        }
        all_frontier = sum(pricing.frontier(pool.texts[r], pool.labels[r]) for r in rows)
        specialist_usd = pricing.cpu(per_request * len(rows))
        distill_usd = pricing.cpu(cpu_seconds)
        total = frontier_usd + specialist_usd + distill_usd
        report.cost = {
            "frontier_usd": frontier_usd,
            "specialist_usd": specialist_usd,
            "distill_usd": distill_usd,
            "per_1000_requests_usd": total / len(rows) * 1000,
            "all_frontier_per_1000_requests_usd": all_frontier / len(rows) * 1000,
            "specialist_cpu_ms_per_request": per_request * 1000,
        }
        reports.append(report)
        progress_rounds(1)

    final = {
        "version": current.ref,
        "validation_accuracy": _score_test(current, served.val, y_val).accuracy,
        **_score_test(current, served.test, y_test).to_json(),
    }
    gold_fit = fit(seed + stream, y_pool[seed + stream])
    reference = as_artifact(gold_fit, f"{name}-all-gold")
    all_gold = {
        "trained_on": len(seed) + len(stream),
        "validation_accuracy": _score_test(reference, x_val, y_val).accuracy,
        **_score_test(reference, x_test, y_test).to_json(),
    }
    progress_rounds(1)
    first_cost = pricing.cpu(first_cpu)
    return ReplayReport(
        name=name,
        dataset=dataset.name,
        teacher=teacher.description,
        config={
            **{k: v for k, v in asdict(config).items() if k != "rule"},
            "rule": config.rule.describe(),
            "finetune": finetune.describe() if finetune is not None else None,
            "warm_start": warm_start,
        },
        splits={
            "seed": len(seed),
            "stream": len(stream),
            "validation": len(val),
            "test": len(test),
            "teacher_labels": len(taught.train_rows) + len(taught.held_rows),
        },
        rounds=reports,
        final=final,
        all_gold=all_gold,
        prices={
            "frontier_model": pricing.model,
            "input_per_million": pricing.price.input,
            "output_per_million": pricing.price.output,
            "cpu_core_hour": pricing.table.local.cpu_core_hour,
            "table": pricing.table.source,
            "first_version_usd": first_cost,
            "basis": "escalations and the all-frontier counterfactual are priced per request "
            "at the ledger's estimate (the request and instructions in, the label out) unless "
            "the teacher recorded its usage; the specialist at its measured CPU time per "
            "request at batch 1; distillation at its CPU time",
        },
        notes=notes,
        store=str(store),
    )


def _first_card(
    dataset: TextDataset,
    name: str,
    artifact: Artifact,
    fitted: Any,
    seed: int,
    val: int,
    config: ReplayConfig,
) -> dict[str, Any]:
    threshold = fitted.threshold
    return {
        "name": name,
        "specialist": artifact.specialist,
        "variant": None,
        "encoder": artifact.encoder_id,
        "head": fitted.config.describe(),
        "head_selection": fitted.tried,
        "labels": list(artifact.labels),
        "oos_label": artifact.oos_label,
        "data": {
            "source": dataset.source,
            "format": dataset.format,
            "splits": {"train": seed, "val": val},
            "notes": [f"{config.shots} training examples per label (seed {config.seed})"],
        },
        "calibration": {
            **fitted.calibrator.to_json(),
            "iso_x": 0,
            "iso_y": 0,
            "ece_before": fitted.val_metrics["ece_before"],
            "ece_after": fitted.val_metrics["ece_after"],
            "fitted_on": "validation",
        },
        "threshold": {
            "value": artifact.threshold,
            "target_precision": threshold.target_precision,
            "precision": threshold.precision,
            "coverage": threshold.coverage,
            "reached": threshold.reached,
        },
        "out_of_scope": card_section(artifact.out_of_scope),
        "metrics": {"validation": fitted.val_metrics},
        "command": f"orchestrator eval-distill {name} --shots {config.shots}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
    }


def plot_replay(report: ReplayReport, path: Path) -> Path:
    """Frontier share and accuracy (accepted answers and overall, on the test split) by
    round."""
    plt = pyplot()
    rounds = [r.round for r in report.rounds]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    series = (
        ("frontier share of requests", "o", [r.frontier_share for r in report.rounds]),
        ("accepted answers accurate (test)", "s", [r.accepted_accuracy for r in report.rounds]),
        ("specialist accuracy (test)", "^", [r.test_accuracy for r in report.rounds]),
    )
    for label, marker, values in series:
        shown = [float("nan") if v is None else v * 100 for v in values]
        ax.plot(rounds, shown, marker=marker, label=label)
    ax.axhline(
        report.all_gold["accuracy"] * 100,
        color="grey",
        linestyle="--",
        linewidth=0.8,
        label="head on all gold labels (test)",
    )
    ax.set_xlabel("round")
    ax.set_xticks(rounds)
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    how = [
        *(["fine-tuned candidates"] if report.config.get("finetune") else []),
        *(["warm starts"] if report.config.get("warm_start") else []),
        *(["self-labels"] if report.config.get("self_labels") else []),
    ]
    title = f"Distillation replay: {report.dataset}, {report.teacher}"
    ax.set_title(title + (f" ({', '.join(how)})" if how else ""), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
