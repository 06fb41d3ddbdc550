"""Training and evaluating the ``clauses`` specialist on CUAD.

Training: contracts are split by contract with a recorded seed (test contracts are never
seen); a share of the training contracts is held out for validation. Segments are labelled
positive for a category when they overlap a gold span by at least half of the shorter of the
two. The vocabulary is chosen on the fitting contracts, the one-vs-rest logistic head is
trained with Adam in numpy, and Platt scaling, span thresholds and presence thresholds are
fitted on the validation contracts.

Evaluation follows CUAD's official ``evaluate.py`` (TheAtticusProject/cuad): each
(contract, category) pair is a question; a prediction matches a gold answer when their word
Jaccard (after dropping ``.,;:``, lower-casing and ``/`` -> space) is at least 0.5, or, for
Parties, when the answer is a substring of the prediction; precision and recall are counted
at confidence thresholds 0.99, 0.98, ..., 0.01, 0.001, 0, precision is made monotone, and
AUPR is the area under that curve. Where this module departs from it, it says so in
:data:`DEVIATIONS`.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from orchestrator._errors import ConfigurationError
from orchestrator.specialists.clause_model import (
    LAYOUT_FEATURES,
    ClauseModel,
    Csr,
    layout_features,
    narrow,
    segment,
    segment_grams,
    sigmoid,
    tfidf,
)
from orchestrator.specialists.evaluation.cuad import Contract, CuadDataset, split_contracts
from orchestrator.specialists.evaluation.datasets import DataError
from orchestrator.specialists.evaluation.plotting import pyplot
from orchestrator.specialists.training.artifacts import write_clause_model
from orchestrator.specialists.training.calibration import (
    expected_calibration_error,
    threshold_for_precision,
)

__all__ = [
    "DEFAULT_SEED",
    "DEVIATIONS",
    "ClauseTrainResult",
    "cuad_metrics",
    "evaluate_clauses",
    "jaccard",
    "segment_labels",
    "train_clauses",
    "write_pr_plot",
]

DEFAULT_SEED = 20240611
#: Predictions kept per (contract, category) question, as the n-best size of the
#: reference implementation.
NBEST = 20
DEVIATIONS = (
    "the official CUAD test split is not available here: contracts are split with a seeded "
    "permutation (the seed is in the model card)",
    "gold answers come from master_clauses.csv; a discontinuous highlight (parts joined by "
    "<omitted>) is scored as one answer per part",
    "predictions are whole segments (sentences or lines), narrowed to the first date for "
    "Agreement Date and Effective Date and to the title for Document Name, with independent "
    "calibrated probabilities; the n-best list of a question is its 20 most probable segments",
)
StepProgress = Callable[[str, int], Callable[[int], None]]
Ints = npt.NDArray[np.int64]


def _no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


# -- labels -----------------------------------------------------------------------------------
def segment_labels(
    contract: Contract, spans: Sequence[tuple[int, int]], categories: Sequence[str]
) -> npt.NDArray[np.bool_]:
    """(segments, categories): overlap with a gold span of at least half the shorter one."""
    out = np.zeros((len(spans), len(categories)), dtype=bool)
    if not spans:
        return out
    starts = np.array([s for s, _ in spans])
    ends = np.array([e for _, e in spans])
    for j, category in enumerate(categories):
        for gs, ge in contract.spans.get(category, ()):
            overlap = np.minimum(ends, ge) - np.maximum(starts, gs)
            shorter = np.minimum(ends - starts, ge - gs)
            out[:, j] |= overlap >= 0.5 * np.maximum(shorter, 1)
    return out


@dataclass
class _Part:
    """Segments of a set of contracts, with features and labels."""

    contracts: list[Contract]
    spans: list[list[tuple[int, int]]]
    grams: list[set[str]]
    layout: npt.NDArray[np.float32]
    labels: npt.NDArray[np.bool_]
    doc: Ints  # contract index of each segment

    @property
    def size(self) -> int:
        return len(self.grams)


def _prepare(
    contracts: list[Contract],
    categories: Sequence[str],
    segmenter: dict[str, int],
    tick: Callable[[int], None],
    *,
    context: bool,
) -> _Part:
    spans: list[list[tuple[int, int]]] = []
    sets: list[set[str]] = []
    layouts: list[npt.NDArray[np.float32]] = []
    labels: list[npt.NDArray[np.bool_]] = []
    doc: list[int] = []
    for i, contract in enumerate(contracts):
        found = segment(contract.text, **segmenter)
        spans.append(found)
        sets.extend(segment_grams(contract.text, found, context=context))
        layouts.append(layout_features(contract.text, found))
        labels.append(segment_labels(contract, found, categories))
        doc.extend([i] * len(found))
        tick(1)
    width = len(categories)
    return _Part(
        contracts,
        spans,
        sets,
        np.concatenate(layouts) if layouts else np.zeros((0, len(LAYOUT_FEATURES)), np.float32),
        np.concatenate(labels) if labels else np.zeros((0, width), dtype=bool),
        np.asarray(doc, dtype=np.int64),
    )


# -- vocabulary, head, calibration ------------------------------------------------------------
def _vocabulary(
    part: _Part, *, per_category: int, min_df: int
) -> tuple[dict[str, int], npt.NDArray[np.float32]]:
    """The n-grams most indicative of each category (smoothed log-odds), and their IDF."""
    df: dict[str, int] = {}
    for found in part.grams:
        for g in found:
            df[g] = df.get(g, 0) + 1
    n = max(1, part.size)
    chosen: set[str] = set()
    for j in range(part.labels.shape[1]):
        positive = np.flatnonzero(part.labels[:, j])
        if len(positive) == 0:
            continue
        pos: dict[str, int] = {}
        for i in positive:
            for g in part.grams[i]:
                pos[g] = pos.get(g, 0) + 1
        n_pos, n_neg = len(positive), max(1, n - len(positive))
        floor = min(2, n_pos)
        scored = [
            (np.log((c + 0.5) / (n_pos + 1)) - np.log((df[g] - c + 0.5) / (n_neg + 1)), g)
            for g, c in pos.items()
            if c >= floor and df[g] >= min(min_df, c)
        ]
        scored.sort(reverse=True)
        chosen.update(g for _, g in scored[:per_category])
    vocab = {g: i for i, g in enumerate(sorted(chosen))}
    idf = np.array([np.log((1 + n) / (1 + df[g])) + 1.0 for g in sorted(chosen)], np.float32)
    return vocab, idf


def _fit_head(
    lexical: Csr,
    layout: npt.NDArray[np.float32],
    labels: npt.NDArray[np.bool_],
    *,
    epochs: int,
    l2: float,
    learning_rate: float,
    seed: int,
    tick: Callable[[int], None],
    batch: int = 256,
    min_steps: int = 400,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """One-vs-rest logistic regression (sigmoid per category) trained with Adam.

    The lexical features are sparse: each mini-batch works on the columns its segments use,
    and Adam updates only those rows of the weights (the "lazy" variant; L2 applies to the
    rows in the batch), which keeps a step cheap with tens of thousands of n-grams.
    """
    rng = np.random.default_rng(seed)
    n, c = labels.shape
    y = labels.astype(np.float32)
    positives = y.sum(axis=0)
    # Rare categories are up-weighted (square root of the imbalance, at most 30x); the
    # Platt scaling fitted afterwards on validation data undoes the shift in probabilities.
    pos_weight = np.clip(np.sqrt((n - positives) / np.maximum(positives, 1)), 1.0, 30.0)
    w_lex = np.zeros((lexical.columns, c), dtype=np.float32)
    w_lay = np.zeros((layout.shape[1], c), dtype=np.float32)
    b = np.log(np.clip(positives, 1, None) / n).astype(np.float32)
    moments = {
        k: (np.zeros_like(p), np.zeros_like(p))
        for k, p in (("lex", w_lex), ("lay", w_lay), ("b", b))
    }

    def adam(key: str, grad: npt.NDArray[np.float32], step: int, rows: Any = None) -> Any:
        m, v = moments[key]
        if rows is not None:
            m_r, v_r = 0.9 * m[rows] + 0.1 * grad, 0.999 * v[rows] + 0.001 * grad * grad
            m[rows], v[rows] = m_r, v_r
        else:
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            m_r, v_r = m, v
        m_hat = m_r / (1 - 0.9**step)
        v_hat = v_r / (1 - 0.999**step)
        return (learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(np.float32)

    step = 0
    # Small data gets more passes: at least `min_steps` updates in all.
    batches = max(1, -(-n // batch))
    total = max(epochs, -(-min_steps // batches))
    for epoch in range(total):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            rows = order[start : start + batch]
            row_ids, cols, vals = lexical.take(rows)
            used, inverse = np.unique(cols, return_inverse=True)
            x = np.zeros((len(rows), len(used)), dtype=np.float32)
            x[row_ids, inverse] = vals
            lay = layout[rows]
            p = sigmoid(x @ w_lex[used] + lay @ w_lay + b)
            yb = y[rows]
            weight = 1.0 + (pos_weight - 1.0) * yb
            g = ((p - yb) * weight / len(rows)).astype(np.float32)
            step += 1
            w_lex[used] -= adam("lex", x.T @ g + l2 * w_lex[used], step, used)
            w_lay -= adam("lay", lay.T @ g + l2 * w_lay, step)
            b -= adam("b", g.sum(axis=0), step)
        if epoch < epochs:
            tick(1)
    return np.vstack([w_lex, w_lay]), b


def platt(
    z: npt.NDArray[np.floating[Any]], y: npt.NDArray[np.bool_], *, ridge: float = 1.0
) -> tuple[float, float]:
    """(a, b) minimising the log-loss of sigmoid(a*z + b), with Platt's smoothed targets and
    a ridge pulling (a, b) towards (1, 0) so that separable data gives a finite answer."""
    if len(z) == 0 or y.all() or not y.any():
        return 1.0, float(np.log((y.sum() + 0.5) / (len(y) - y.sum() + 0.5)))
    n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
    t = np.where(y, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    z = z.astype(np.float64)
    a, b = 1.0, 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(a * z + b, -40, 40)))
        g = np.array([np.dot(p - t, z) + ridge * (a - 1.0), np.sum(p - t) + ridge * b])
        s = p * (1 - p)
        h = np.array([[np.dot(s, z * z), np.dot(s, z)], [np.dot(s, z), s.sum()]])
        delta = np.clip(np.linalg.solve(h + ridge * np.eye(2), g), -5.0, 5.0)
        a, b = a - delta[0], b - delta[1]
        if np.abs(delta).max() < 1e-7:
            break
    return float(a), float(b)


def _best_f1_threshold(prob: npt.NDArray[np.float32], truth: npt.NDArray[np.bool_]) -> float:
    if not truth.any():
        return 0.5
    best = (-1.0, 0.5)
    for t in np.unique(prob):
        pred = prob >= t
        tp = float((pred & truth).sum())
        f1 = 2 * tp / (pred.sum() + truth.sum()) if pred.sum() + truth.sum() else 0.0
        if f1 > best[0]:
            best = (f1, float(t))
    return best[1]


def _doc_max(logits: npt.NDArray[np.float32], doc: Ints, docs: int) -> npt.NDArray[np.float32]:
    out = np.full((docs, logits.shape[1]), -40.0, dtype=np.float32)
    np.maximum.at(out, doc, logits)
    return out


@dataclass
class ClauseTrainResult:
    model: ClauseModel
    card: dict[str, Any]
    path: Path


def train_clauses(
    dataset: CuadDataset,
    name: str,
    target: str | Path,
    *,
    seed: int = DEFAULT_SEED,
    test_fraction: float = 0.2,
    val_fraction: float = 0.15,
    target_precision: float = 0.8,
    per_category: int = 3000,
    min_df: int = 3,
    epochs: int = 20,
    l2: float = 1e-4,
    learning_rate: float = 0.01,
    context: bool = False,
    command: str = "",
    progress: StepProgress = _no_progress,
) -> ClauseTrainResult:
    """Train, calibrate and write the clause artifact to `target` (atomically)."""
    categories = dataset.categories
    train, test = split_contracts(dataset.contracts, test_fraction, seed=seed)
    fit, val = split_contracts(train, val_fraction, seed=seed + 1)
    segmenter = {"min_chars": 30, "max_chars": 1000}
    fit_part = _prepare(
        fit, categories, segmenter, progress("segment train", len(fit)), context=context
    )
    val_part = _prepare(
        val, categories, segmenter, progress("segment validation", len(val)), context=context
    )
    if not fit_part.labels.any():
        raise DataError(
            f"{dataset.source}: no highlighted clause was found in the training contracts; "
            "check that the clause texts in master_clauses.csv occur in the .txt files"
        )
    vocab, idf = _vocabulary(fit_part, per_category=per_category, min_df=min_df)
    fit_x = tfidf(fit_part.grams, vocab, idf)
    val_x = tfidf(val_part.grams, vocab, idf)
    mean = fit_part.layout.mean(axis=0)
    scale = fit_part.layout.std(axis=0) + 1e-6
    fit_layout = ((fit_part.layout - mean) / scale).astype(np.float32)
    val_layout = ((val_part.layout - mean) / scale).astype(np.float32)
    w, b = _fit_head(
        fit_x,
        fit_layout,
        fit_part.labels,
        epochs=epochs,
        l2=l2,
        learning_rate=learning_rate,
        seed=seed,
        tick=progress("fit head", epochs),
    )
    model = ClauseModel(
        categories=categories,
        vocab=vocab,
        idf=idf,
        layout_mean=mean.astype(np.float32),
        layout_scale=scale.astype(np.float32),
        weights=w,
        bias=b,
        segmenter=segmenter,
        context=context,
        name=name,
    )
    tick = progress("calibrate", len(categories))
    val_logits = model.logits(val_x, val_layout)
    doc_logits = _doc_max(val_logits, val_part.doc, len(val))
    doc_truth = np.array([[bool(c.answers.get(k)) for k in categories] for c in val])
    seg_ab = np.zeros((len(categories), 2), dtype=np.float32)
    doc_ab = np.zeros((len(categories), 2), dtype=np.float32)
    span_thr = np.ones(len(categories), dtype=np.float32)
    presence_thr = np.full(len(categories), 0.5, dtype=np.float32)
    reached = 0
    for j in range(len(categories)):
        seg_ab[j] = platt(val_logits[:, j], val_part.labels[:, j])
        doc_ab[j] = platt(doc_logits[:, j], doc_truth[:, j])
        prob = sigmoid(val_logits[:, j] * seg_ab[j, 0] + seg_ab[j, 1])
        if val_part.labels[:, j].any():
            thr = threshold_for_precision(
                prob, val_part.labels[:, j], target_precision, min_accepted=3
            )
            span_thr[j] = thr.value
            reached += int(thr.reached)
        doc_prob = sigmoid(doc_logits[:, j] * doc_ab[j, 0] + doc_ab[j, 1])
        presence_thr[j] = _best_f1_threshold(doc_prob, doc_truth[:, j])
        tick(1)
    model.platt, model.doc_platt = seg_ab, doc_ab
    model.span_threshold, model.presence_threshold = span_thr, presence_thr
    model.split = {
        "seed": seed,
        "test_fraction": test_fraction,
        "validation_fraction": val_fraction,
        "test": [c.name for c in test],
    }
    raw = sigmoid(val_logits)
    cal = model.calibrate(val_logits)
    ece_before = expected_calibration_error(raw.ravel(), val_part.labels.ravel())
    ece_after = expected_calibration_error(cal.ravel(), val_part.labels.ravel())
    val_presence = model.presence(np.zeros((0, len(categories)), np.float32))  # shape check
    del val_presence
    doc_prob = sigmoid(doc_logits * doc_ab[:, 0] + doc_ab[:, 1])
    presence_f1 = _f1(doc_prob >= presence_thr, doc_truth)
    card: dict[str, Any] = {
        "name": name,
        "specialist": "clauses",
        "model": (
            f"segments -> TF-IDF of {len(vocab)} word uni/bigrams + {len(LAYOUT_FEATURES)} "
            "layout features -> one-vs-rest logistic regression (numpy, Adam, "
            f"{epochs} epochs, l2={l2:g}) -> Platt scaling per category"
        ),
        "labels": list(categories),
        "data": {
            "source": dataset.source,
            "format": dataset.format,
            "parts": {
                "fit": {"contracts": len(fit), "segments": fit_part.size},
                "validation": {"contracts": len(val), "segments": val_part.size},
                "test (held out, not read)": {"contracts": len(test), "segments": 0},
            },
            "notes": [
                *dataset.notes,
                "segments are labelled positive for a category when they overlap a gold span "
                "by at least half of the shorter of the two",
                "the head is fitted on the fit contracts only; validation contracts calibrate "
                "it and choose the thresholds",
            ],
        },
        "split": {
            "seed": seed,
            "test_fraction": test_fraction,
            "test_contracts": len(test),
            "train_contracts": len(train),
            "validation_contracts": len(val),
        },
        "calibration": {
            "method": "platt",
            "ece_before": ece_before,
            "ece_after": ece_after,
            "fitted_on": "validation",
        },
        "thresholds": {"target_precision": target_precision, "reached": reached},
        "metrics": {
            "validation": {
                "segment_ece_after": ece_after,
                "presence_macro_f1": float(np.nanmean(presence_f1)) if len(presence_f1) else 0,
            }
        },
        "deviations_from_official_cuad_evaluation": list(DEVIATIONS),
        "command": command,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    path = write_clause_model(target, model, card)
    model.path, model.card = path, card
    return ClauseTrainResult(model, card, path)


def _f1(pred: npt.NDArray[np.bool_], truth: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """Per column F1; NaN where the column has neither predictions nor gold."""
    tp = (pred & truth).sum(axis=0).astype(np.float64)
    denom = pred.sum(axis=0) + truth.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)


# -- the CUAD metric ----------------------------------------------------------------------------
_STRIP = re.compile(r"[.,;:]")


def _words(text: str) -> frozenset[str]:
    return frozenset(_STRIP.sub("", text).lower().replace("/", " ").split())


def jaccard(gold: str, pred: str) -> float:
    """CUAD's word Jaccard: ``.,;:`` removed, lower-cased, ``/`` as a space."""
    a, b = _words(gold), _words(pred)
    union = a | b
    return len(a & b) / len(union) if union else 0.0


@dataclass
class Question:
    """One (contract, category): gold answers and scored predictions."""

    category: str
    answers: tuple[str, ...]
    predictions: list[tuple[str, float]]


#: Confidence thresholds of the reference script: 0.99 down to 0.01, then 0.001 and 0.
THRESHOLDS = np.array([*np.arange(0.99, 0, -0.01), 0.001, 0.0])


def _outcomes(question: Question) -> tuple[list[float], list[float]]:
    """(best matching prediction probability per answer, probability of every prediction
    that matches no answer). An answer is a true positive at threshold t when its best
    matching prediction has probability > t; an unmatched prediction is a false positive."""
    substring = question.category == "Parties"
    answer_best: list[float] = []
    matched = [False] * len(question.predictions)
    for answer in question.answers:
        best = -1.0
        for k, (text, prob) in enumerate(question.predictions):
            if jaccard(answer, text) >= 0.5 or (substring and answer in text):
                matched[k] = True
                best = max(best, prob)
        answer_best.append(best)
    unmatched = [p for (_, p), m in zip(question.predictions, matched, strict=True) if not m]
    return answer_best, unmatched


def _curve(
    answer_best: npt.NDArray[np.float64], fp_probs: npt.NDArray[np.float64]
) -> dict[str, Any]:
    tp = (answer_best[None, :] > THRESHOLDS[:, None]).sum(axis=1).astype(np.float64)
    fp = (fp_probs[None, :] > THRESHOLDS[:, None]).sum(axis=1).astype(np.float64)
    fn = len(answer_best) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), np.nan)
        recall = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), np.nan)
    precision = np.r_[1.0, precision]
    recall = np.r_[0.0, recall]
    # Monotone precision, as process_precisions: the best precision at this or any higher
    # recall (a NaN, no prediction at all, takes the value that follows it).
    best = precision[::-1].copy()
    for i in range(1, len(best)):
        if np.isnan(best[i]) or best[i - 1] > best[i]:
            best[i] = best[i - 1]
    processed = best[::-1]
    if np.isnan(recall).any() or np.isnan(processed).any():
        aupr = float("nan")
    else:
        aupr = float(np.sum(np.diff(recall) * (processed[1:] + processed[:-1]) / 2))

    def at(level: float) -> float:
        hit = np.flatnonzero(recall >= level)
        return float(processed[hit[0]]) if len(hit) else 0.0

    return {
        "aupr": aupr,
        "prec_at_80_recall": at(0.8),
        "prec_at_90_recall": at(0.9),
        "precision": processed.tolist(),
        "recall": recall.tolist(),
        "answers": len(answer_best),
    }


def cuad_metrics(questions: Sequence[Question], categories: Sequence[str]) -> dict[str, Any]:
    """AUPR and precision at 80%/90% recall, overall (all questions pooled, as the reference
    script) and per category; a category without gold answers in the data gets ``None``."""
    by_cat: dict[str, tuple[list[float], list[float]]] = {c: ([], []) for c in categories}
    for q in questions:
        best, unmatched = _outcomes(q)
        by_cat[q.category][0].extend(best)
        by_cat[q.category][1].extend(unmatched)
    per: dict[str, dict[str, Any]] = {}
    for c in categories:
        best, unmatched = by_cat[c]
        if not best:
            per[c] = {
                "aupr": None,
                "prec_at_80_recall": None,
                "prec_at_90_recall": None,
                "answers": 0,
            }
            continue
        per[c] = _curve(np.asarray(best), np.asarray(unmatched))
    all_best = np.asarray([v for c in categories for v in by_cat[c][0]])
    all_fp = np.asarray([v for c in categories for v in by_cat[c][1]])
    overall = _curve(all_best, all_fp) if len(all_best) else {"aupr": 0.0}
    return {"overall": overall, "per_category": per}


# -- evaluation --------------------------------------------------------------------------------
def _questions(model: ClauseModel, contract: Contract, scored: Any) -> list[Question]:
    questions = []
    for j, category in enumerate(model.categories):
        probs = scored.probabilities[:, j] if len(scored.spans) else np.zeros(0)
        top = np.argsort(-probs, kind="stable")[:NBEST]
        predictions = []
        for k in top:
            start, end = narrow(category, contract.text, *scored.spans[k])
            predictions.append((contract.text[start:end], float(probs[k])))
        questions.append(Question(category, contract.answers.get(category, ()), predictions))
    return questions


def evaluate_clauses(
    model: ClauseModel,
    dataset: CuadDataset,
    split: str = "test",
    *,
    progress: StepProgress = _no_progress,
) -> dict[str, Any]:
    """CUAD metrics of `model` on the contracts of `split` (``test``: the contracts held out
    at training time; ``train``: the others; ``all``)."""
    missing = sorted(set(model.categories) - set(dataset.categories))
    if missing:
        raise DataError(
            f"{dataset.source}: the model knows categories the data lacks: {missing[:3]}"
        )
    held = set(model.split.get("test", []))
    if split == "test":
        chosen = [c for c in dataset.contracts if c.name in held]
        if not chosen:
            raise DataError(
                f"{dataset.source}: none of the {len(held)} test contracts recorded in the "
                "model are in this data; was the model trained on it? (use --split all to "
                "score every contract)"
            )
    elif split == "train":
        chosen = [c for c in dataset.contracts if c.name not in held]
    elif split == "all":
        chosen = list(dataset.contracts)
    else:
        raise ConfigurationError(
            f"unknown split {split!r} for --format cuad; use test, train or all"
        )
    if not chosen:
        raise DataError(f"{dataset.source}: no contracts in split {split!r}")
    tick = progress(f"extract clauses ({split})", len(chosen))
    questions: list[Question] = []
    presence: list[npt.NDArray[np.float32]] = []
    latencies: list[float] = []
    for contract in chosen:
        start = time.perf_counter()
        scored = model.score(contract.text)
        latencies.append((time.perf_counter() - start) * 1000)
        presence.append(scored.presence)
        questions.extend(_questions(model, contract, scored))
        tick(1)
    metrics = cuad_metrics(questions, model.categories)
    truth = np.array([[bool(c.answers.get(k)) for k in model.categories] for c in chosen])
    predicted = np.asarray(presence) >= model.presence_threshold
    f1 = _f1(predicted, truth)
    per = metrics["per_category"]
    for j, category in enumerate(model.categories):
        per[category]["presence_f1"] = None if np.isnan(f1[j]) else float(f1[j])
        per[category]["contracts_with_clause"] = int(truth[:, j].sum())
    overall = metrics["overall"]
    values = [v for v in per.values() if v["aupr"] is not None]
    summary = {
        "contracts": len(chosen),
        "questions": len(questions),
        "gold_answers": int(overall.get("answers", 0)),
        "aupr": overall["aupr"],
        "prec_at_80_recall": overall.get("prec_at_80_recall", 0.0),
        "prec_at_90_recall": overall.get("prec_at_90_recall", 0.0),
        "macro_aupr": float(np.mean([v["aupr"] for v in values])) if values else 0.0,
        "macro_prec_at_80_recall": (
            float(np.mean([v["prec_at_80_recall"] for v in values])) if values else 0.0
        ),
        "presence_macro_f1": float(np.nanmean(f1)) if not np.isnan(f1).all() else 0.0,
        "presence_micro_f1": float(
            2 * (predicted & truth).sum() / max(1, predicted.sum() + truth.sum())
        ),
        "latency_per_contract_ms_p50": statistics.median(latencies),
        "latency_per_contract_ms_max": max(latencies),
        "mean_contract_chars": float(np.mean([len(c.text) for c in chosen])),
    }
    return {
        "metrics": summary,
        "per_category": {
            c: {k: v for k, v in row.items() if k not in ("precision", "recall")}
            for c, row in per.items()
        },
        "curves": {
            "overall": {
                "precision": overall.get("precision", []),
                "recall": overall.get("recall", []),
            },
            **{
                c: {"precision": row["precision"], "recall": row["recall"]}
                for c, row in per.items()
                if "precision" in row
            },
        },
        "deviations": list(DEVIATIONS),
    }


def write_pr_plot(report: dict[str, Any], folder: str | Path, title: str) -> list[Path]:
    """``pr_curve.png``: the pooled precision-recall curve and the five categories with the
    highest AUPR, with the 80% recall line."""
    plt = pyplot()

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    curves = report["curves"]
    per = report["per_category"]
    ranked = sorted(
        (c for c in per if per[c].get("aupr") is not None), key=lambda c: -per[c]["aupr"]
    )[:5]
    fig, ax = plt.subplots(figsize=(6.5, 4.8), dpi=100)
    overall = curves["overall"]
    ax.plot(
        overall["recall"],
        overall["precision"],
        lw=2.5,
        color="black",
        label=f"all categories (AUPR {report['metrics']['aupr']:.3f})",
    )
    for c in ranked:
        ax.plot(
            curves[c]["recall"], curves[c]["precision"], lw=1.2, label=f"{c} ({per[c]['aupr']:.3f})"
        )
    ax.axvline(0.8, color="grey", ls="--", lw=1, label="80% recall")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision (monotone, as CUAD's evaluate.py)")
    ax.set_title(f"{title}: precision-recall")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    out = folder / "pr_curve.png"
    fig.savefig(out)
    plt.close(fig)
    return [out]
