"""The model behind the ``clauses`` specialist: segments, features, per-category scores.

A contract is cut into segments (lines, then sentences; very short pieces merged into the
next one, very long ones cut at whitespace), each with its character offsets. Each segment
gets lexical features (TF-IDF of the word unigrams and bigrams chosen at training time as the
most indicative of some category) and a few layout features (position in the document,
length, share of capitals, whether it holds a date). A linear one-vs-rest head scores every
segment for every category; per-category Platt scaling turns the scores into calibrated
probabilities, and the highest segment score of a document, calibrated again at document
level, says whether the category is present at all. Everything is numpy: the default install
runs it.

Artifact layout (``<store>/<name>/``): ``artifact.json`` (categories, vocabulary,
calibration, thresholds, the contract split), ``weights.npz`` (head, IDF, standardisation),
``model_card.json`` and ``model_card.md``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from orchestrator._errors import ConfigurationError
from orchestrator.specialists.artifacts import resolve_artifact

__all__ = [
    "CLAUSE_ARTIFACT_FORMAT",
    "CUAD_CATEGORIES",
    "ClauseModel",
    "Csr",
    "grams",
    "layout_features",
    "load_clause_model",
    "segment",
    "segment_grams",
]

#: The 41 CUAD categories, in the order of the release's ``master_clauses.csv``.
CUAD_CATEGORIES: tuple[str, ...] = (
    "Document Name",
    "Parties",
    "Agreement Date",
    "Effective Date",
    "Expiration Date",
    "Renewal Term",
    "Notice Period to Terminate Renewal",
    "Governing Law",
    "Most Favored Nation",
    "Competitive Restriction Exception",
    "Non-Compete",
    "Exclusivity",
    "No-Solicit of Customers",
    "No-Solicit of Employees",
    "Non-Disparagement",
    "Termination for Convenience",
    "Rofr/Rofo/Rofn",
    "Change of Control",
    "Anti-Assignment",
    "Revenue/Profit Sharing",
    "Price Restrictions",
    "Minimum Commitment",
    "Volume Restriction",
    "IP Ownership Assignment",
    "Joint IP Ownership",
    "License Grant",
    "Non-Transferable License",
    "Affiliate License-Licensor",
    "Affiliate License-Licensee",
    "Unlimited/All-You-Can-Eat-License",
    "Irrevocable or Perpetual License",
    "Source Code Escrow",
    "Post-Termination Services",
    "Audit Rights",
    "Uncapped Liability",
    "Cap on Liability",
    "Liquidated Damages",
    "Warranty Duration",
    "Insurance",
    "Covenant Not to Sue",
    "Third Party Beneficiary",
)

CLAUSE_ARTIFACT_FORMAT = 1
Floats = npt.NDArray[np.float32]

_LINE = re.compile(r"[^\n]+")
# A sentence ends at . ; ! or ? after two letters (so not after "1." or "2.1."), followed
# by whitespace and an upper-case letter, a digit, an opening bracket or a quote.
_SENTENCE_END = re.compile(r"(?<=[A-Za-z)\"'][A-Za-z)\"'][.;!?])\s+(?=[\"'(\[A-Z0-9])")
_WORD = re.compile(r"[a-z]+|\d+")
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
#: Dates as contracts write them: "June 21, 1999", "1st day of March, 2003", "3/1/2003".
DATE = re.compile(
    rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\s*,?\s*\d{{4}}"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:day\s+of\s+)?{_MONTH},?\s+\d{{4}}"
    r"|\b\d{1,2}/\d{1,2}/\d{2,4}\b",
    re.IGNORECASE,
)
#: Categories whose gold answers are a date inside a sentence: their spans are narrowed to it.
DATE_CATEGORIES = frozenset({"Agreement Date", "Effective Date"})
_KINDS = (
    "Agreement|Contract|License|Licence|Amendment|Addendum|Lease|Plan|Memorandum|Arrangement|"
    "Terms|Order|Deed|Guaranty|Guarantee|Note|Certificate|Undertaking|Charter|Statement of Work"
)
#: A contract's name as its title gives it: capitalised words ending in a kind of document,
#: in capitals ("JOINT CONTENT LICENSE AGREEMENT") or in title case ("Collaboration
#: Agreement", without a leading "This" or "The").
DOCUMENT_NAME = (
    re.compile(rf"(?:\b[A-Z][A-Z0-9&'.,/()-]*\s+){{0,8}}(?:{_KINDS.upper()})\b"),
    re.compile(rf"(?:\b(?!This\b|The\b)[A-Z][\w&'.()-]*\s+){{0,6}}(?:{_KINDS})\b"),
)
LAYOUT_FEATURES = ("position", "early", "log_length", "has_date", "capitals", "short")


def segment(text: str, *, min_chars: int = 30, max_chars: int = 1000) -> list[tuple[int, int]]:
    """(start, end) offsets of the segments of `text`, in order, stripped of whitespace."""
    pieces: list[tuple[int, int]] = []
    for line in _LINE.finditer(text):
        base = start = line.start()
        for cut in _SENTENCE_END.finditer(line.group()):
            pieces.extend(_strip_and_cut(text, start, base + cut.start(), max_chars))
            start = base + cut.end()
        pieces.extend(_strip_and_cut(text, start, line.end(), max_chars))
    merged: list[tuple[int, int]] = []
    carry: int | None = None
    for start, end in pieces:
        if carry is not None:
            start = carry
            carry = None
        if end - start < min_chars and end - start < max_chars:
            carry = start
            continue
        merged.append((start, end))
    if carry is not None:
        if merged and pieces[-1][1] - merged[-1][0] <= max_chars:
            merged[-1] = (merged[-1][0], pieces[-1][1])
        else:
            merged.append((carry, pieces[-1][1]))
    return merged


def _strip_and_cut(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start >= end:
        return []
    out: list[tuple[int, int]] = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + max_chars // 2, start + max_chars)
        cut = cut if cut > start else start + max_chars
        out.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        out.append((start, end))
    return out


def grams(text: str) -> set[str]:
    """Lower-cased word unigrams and bigrams; every number is the word ``0``."""
    words = ["0" if w[0].isdigit() else w for w in _WORD.findall(text.lower())]
    out = set(words)
    out.update(f"{a} {b}" for a, b in itertools.pairwise(words))
    return out


def segment_grams(
    text: str, spans: Sequence[tuple[int, int]], *, context: bool = False
) -> list[set[str]]:
    """The :func:`grams` of each segment; with `context`, also those of the segment before
    it, marked with a leading ``<`` (a heading, or the start of a clause that runs over several
    sentences)."""
    own = [grams(text[a:b]) for a, b in spans]
    if not context:
        return own
    out = [set(own[0])] if own else []
    for before, mine in itertools.pairwise(own):
        out.append(mine | {f"<{g}" for g in before})
    return out


def layout_features(text: str, spans: Sequence[tuple[int, int]]) -> Floats:
    """One row of :data:`LAYOUT_FEATURES` per segment."""
    n = max(1, len(text))
    out = np.zeros((len(spans), len(LAYOUT_FEATURES)), dtype=np.float32)
    for i, (start, end) in enumerate(spans):
        piece = text[start:end]
        letters = sum(c.isalpha() for c in piece)
        upper = sum(c.isupper() for c in piece)
        out[i] = (
            start / n,
            1.0 if start < 3000 else 0.0,
            np.log1p(end - start) / 8.0,
            1.0 if DATE.search(piece) else 0.0,
            upper / letters if letters else 0.0,
            1.0 if end - start < 100 else 0.0,
        )
    return out


@dataclass
class Csr:
    """A sparse matrix in compressed-row form (numpy only)."""

    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int32]
    values: Floats
    columns: int

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    def take(
        self, rows: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], Floats]:
        """The entries of `rows` as (position of the row in `rows`, column, value)."""
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        row_ids = np.repeat(np.arange(len(rows)), lengths)
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        flat = np.repeat(starts, lengths) + offsets
        return row_ids, self.indices[flat], self.values[flat]

    def dot(self, weights: Floats) -> Floats:
        """This matrix times dense `weights` (columns x k)."""
        out = np.zeros((self.rows, weights.shape[1]), dtype=np.float32)
        filled = self.indptr[:-1] < self.indptr[1:]
        if filled.any():
            products = weights[self.indices] * self.values[:, None]
            out[filled] = np.add.reduceat(products, self.indptr[:-1][filled], axis=0)
        return out


def tfidf(gram_sets: Sequence[set[str]], vocab: dict[str, int], idf: Floats) -> Csr:
    """L2-normalised binary TF-IDF rows over `vocab`."""
    indptr = np.zeros(len(gram_sets) + 1, dtype=np.int64)
    indices: list[int] = []
    for i, found in enumerate(gram_sets):
        cols = sorted(vocab[g] for g in found if g in vocab)
        indices.extend(cols)
        indptr[i + 1] = len(indices)
    idx = np.asarray(indices, dtype=np.int32)
    values = idf[idx].astype(np.float32)
    for i in range(len(gram_sets)):
        a, b = indptr[i], indptr[i + 1]
        if b > a:
            values[a:b] /= np.linalg.norm(values[a:b])
    return Csr(indptr, idx, values, len(vocab))


def sigmoid(z: npt.NDArray[np.floating[Any]]) -> Floats:
    out: Floats = (1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))).astype(np.float32)
    return out


@dataclass
class Scored:
    """A contract's segments with their calibrated probabilities."""

    spans: list[tuple[int, int]]
    #: (segments, categories) calibrated probability that the segment is a clause of the category
    probabilities: Floats
    #: (categories,) calibrated probability that the category is present in the document
    presence: Floats


@dataclass
class ClauseModel:
    """Vocabulary, head and calibration of a trained clause extractor."""

    categories: tuple[str, ...]
    vocab: dict[str, int]
    idf: Floats
    layout_mean: Floats
    layout_scale: Floats
    weights: Floats  # (len(vocab) + len(LAYOUT_FEATURES), categories)
    bias: Floats  # (categories,)
    #: per category (a, b): p = sigmoid(a * logit + b), for segments and for documents
    platt: Floats = field(default_factory=lambda: np.zeros((0, 2), dtype=np.float32))
    doc_platt: Floats = field(default_factory=lambda: np.zeros((0, 2), dtype=np.float32))
    span_threshold: Floats = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    presence_threshold: Floats = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    segmenter: dict[str, int] = field(default_factory=lambda: {"min_chars": 30, "max_chars": 1000})
    #: whether a segment's features include the n-grams of the segment before it (off by
    #: default: it did not help on CUAD)
    context: bool = False
    split: dict[str, Any] = field(default_factory=dict)
    name: str = "clauses"
    card: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def segments(self, text: str) -> list[tuple[int, int]]:
        return segment(text, **self.segmenter)

    def featurize(self, text: str, spans: Sequence[tuple[int, int]]) -> tuple[Csr, Floats]:
        lexical = tfidf(segment_grams(text, spans, context=self.context), self.vocab, self.idf)
        layout = (layout_features(text, spans) - self.layout_mean) / self.layout_scale
        return lexical, layout.astype(np.float32)

    def logits(self, lexical: Csr, layout: Floats) -> Floats:
        """Raw scores, (segments, categories)."""
        v = len(self.vocab)
        out: Floats = lexical.dot(self.weights[:v]) + layout @ self.weights[v:] + self.bias
        return out

    def calibrate(self, logits: Floats) -> Floats:
        return sigmoid(logits * self.platt[:, 0] + self.platt[:, 1])

    def presence(self, logits: Floats) -> Floats:
        top = logits.max(axis=0) if len(logits) else np.full(len(self.categories), -40.0)
        return sigmoid(top * self.doc_platt[:, 0] + self.doc_platt[:, 1])

    def score(self, text: str) -> Scored:
        spans = self.segments(text)
        if not spans:
            empty = np.zeros((0, len(self.categories)), dtype=np.float32)
            return Scored([], empty, self.presence(empty))
        logits = self.logits(*self.featurize(text, spans))
        return Scored(spans, self.calibrate(logits), self.presence(logits))

    def manifest(self) -> dict[str, Any]:
        vocab = sorted(self.vocab, key=self.vocab.__getitem__)
        return {
            "format": CLAUSE_ARTIFACT_FORMAT,
            "name": self.name,
            "specialist": "clauses",
            "labels": list(self.categories),
            "features": {
                "lexical": len(vocab),
                "layout": list(LAYOUT_FEATURES),
                "context": self.context,
            },
            "segmenter": self.segmenter,
            "vocabulary": vocab,
            "calibration": {
                "method": "platt",
                "segment": self.platt.tolist(),
                "document": self.doc_platt.tolist(),
            },
            "span_threshold": self.span_threshold.tolist(),
            "presence_threshold": self.presence_threshold.tolist(),
            "split": self.split,
        }


def narrow(category: str, text: str, start: int, end: int) -> tuple[int, int]:
    """The part of a segment that answers `category`: the first date for the date
    categories, the first document title for Document Name, the whole segment otherwise."""
    patterns: tuple[re.Pattern[str], ...] = (DATE,) if category in DATE_CATEGORIES else ()
    if category == "Document Name":
        patterns = DOCUMENT_NAME
    for pattern in patterns:
        found = pattern.search(text, start, end)
        if found is not None:
            return found.span()
    return start, end


def load_clause_model(name_or_path: str | Path, store: str | Path | None = None) -> ClauseModel:
    path = resolve_artifact(name_or_path, store)
    try:
        raw = json.loads((path / "artifact.json").read_text(encoding="utf-8"))
        if raw.get("specialist") != "clauses":
            raise ConfigurationError(
                f"{path}: artifact of the {raw.get('specialist')!r} specialist, not 'clauses'; "
                "train one with `orchestrator specialists train clauses --format cuad --data DIR`"
            )
        if raw.get("format") != CLAUSE_ARTIFACT_FORMAT:
            raise ConfigurationError(
                f"{path}: clause artifact format {raw.get('format')!r}, this version reads "
                f"{CLAUSE_ARTIFACT_FORMAT}; train it again"
            )
        with np.load(path / "weights.npz") as arrays:
            w = {k: arrays[k] for k in arrays.files}
        card_file = path / "model_card.json"
        card = json.loads(card_file.read_text(encoding="utf-8")) if card_file.is_file() else {}
        return ClauseModel(
            categories=tuple(raw["labels"]),
            vocab={g: i for i, g in enumerate(raw["vocabulary"])},
            idf=w["idf"],
            layout_mean=w["layout_mean"],
            layout_scale=w["layout_scale"],
            weights=w["weights"],
            bias=w["bias"],
            platt=np.asarray(raw["calibration"]["segment"], dtype=np.float32),
            doc_platt=np.asarray(raw["calibration"]["document"], dtype=np.float32),
            span_threshold=np.asarray(raw["span_threshold"], dtype=np.float32),
            presence_threshold=np.asarray(raw["presence_threshold"], dtype=np.float32),
            segmenter={k: int(v) for k, v in raw["segmenter"].items()},
            context=bool(raw["features"]["context"]),
            split=raw.get("split", {}),
            name=raw["name"],
            card=card,
            path=path,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigurationError(f"{path}: unreadable artifact ({exc}); train it again") from None
