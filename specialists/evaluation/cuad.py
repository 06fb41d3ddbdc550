"""The CUAD contract-clause dataset: loader, category names, gold spans and a contract split.

``--format cuad`` reads the folder of the CUAD v1 release: ``master_clauses.csv`` (one row per
contract; for each category a Python-list literal of the clause texts the annotators
highlighted, parts of a discontinuous highlight joined by ``<omitted>``) and
``full_contract_txt/*.txt`` (the plain text of each contract). The CSV has clause texts, not
offsets, so each part is located in the contract by string search (exactly first, then with
any run of whitespace matching any other); parts that cannot be found are kept as answer
texts for evaluation and counted in the dataset's notes.

Problems raise :class:`~orchestrator.specialists.evaluation.datasets.DataError` naming the file,
the row or column, and how to fix it.
"""

from __future__ import annotations

import ast
import csv
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from orchestrator.specialists.clause_model import CUAD_CATEGORIES
from orchestrator.specialists.evaluation.datasets import DataError

__all__ = [
    "CUAD_CATEGORIES",
    "Contract",
    "CuadDataset",
    "load_cuad",
    "locate",
    "split_contracts",
]

_OMITTED = "<omitted>"
_CSV = "master_clauses.csv"
_TXT_DIR = "full_contract_txt"


@dataclass(frozen=True)
class Contract:
    """One contract: its text, and per category the gold answer texts and their offsets."""

    name: str
    text: str
    #: category -> the highlighted texts (discontinuous highlights split into their parts)
    answers: dict[str, tuple[str, ...]]
    #: category -> (start, end) of every answer text found in :attr:`text`
    spans: dict[str, tuple[tuple[int, int], ...]]
    #: answer texts that could not be located in the text
    unmatched: int = 0


@dataclass(frozen=True)
class CuadDataset:
    source: str
    categories: tuple[str, ...]
    contracts: list[Contract]
    notes: list[str] = field(default_factory=list)
    format: str = "cuad"


def _norm_name(name: str) -> str:
    """The release's filename rule: NFC, ``&`` and ``'`` to ``_``, no trailing `` .-``."""
    name = unicodedata.normalize("NFC", name)
    return name.replace("&", "_").replace("'", "_").rstrip(" .-")


def _stem(filename: str) -> str:
    stem, dot, ext = filename.rpartition(".")
    return stem if dot and ext and " " not in ext and len(ext) <= 4 else filename


def locate(text: str, part: str, taken: set[tuple[int, int]]) -> tuple[int, int] | None:
    """Offsets of `part` in `text`: the first exact occurrence not in `taken`, else the first
    match that treats every run of whitespace as any run of whitespace, else ``None``."""
    start = text.find(part)
    while start != -1:
        span = (start, start + len(part))
        if span not in taken:
            return span
        start = text.find(part, start + 1)
    words = part.split()
    if not words:
        return None
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
    for match in pattern.finditer(text):
        if match.span() not in taken:
            return match.span()
    return None


def _parse_cell(raw: str, file: Path, line: int, column: str) -> list[str]:
    try:
        value = ast.literal_eval(raw) if raw.strip() else []
    except (ValueError, SyntaxError):
        raise DataError(
            f"{file}:{line}: column {column!r} is not a Python list literal of clause texts "
            f"(got {raw[:60]!r}); write it as ['first clause', 'second clause'] or []"
        ) from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(
            f"{file}:{line}: column {column!r} must be a list of strings, got "
            f"{type(value).__name__}; write it as ['clause text'] or []"
        )
    return value


def load_cuad(path: str | Path, *, limit: int | None = None) -> CuadDataset:
    """Read a CUAD folder (or its ``master_clauses.csv``); `limit` keeps the first N contracts
    in file order (for quick experiments)."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    file = folder / _CSV
    hint = f"point --data at the CUAD folder holding {_CSV} and {_TXT_DIR}/"
    if not folder.exists():
        raise DataError(f"{folder}: no such folder; {hint}")
    if not file.is_file():
        raise DataError(f"{file}: file not found for --format cuad; {hint}")
    txt_dir = folder / _TXT_DIR
    if not txt_dir.is_dir():
        raise DataError(f"{txt_dir}: folder not found for --format cuad; {hint}")
    texts = {_norm_name(p.stem): p for p in sorted(txt_dir.glob("*.txt"))}
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    contracts: list[Contract] = []
    unmatched = 0
    try:
        with file.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames
            if not header:
                raise DataError(
                    f"{file}: the file is empty; expected a header and one row per contract"
                )
            if "Filename" not in header:
                raise DataError(
                    f"{file}:1: no 'Filename' column (columns: {', '.join(header[:5])}, ...); "
                    "is this CUAD's master_clauses.csv?"
                )
            categories: list[str] = []
            for column in header:
                if column == "Filename" or column.endswith("-Answer"):
                    continue
                if column not in CUAD_CATEGORIES:
                    raise DataError(
                        f"{file}:1: unknown category column {column!r}; --format cuad expects "
                        f"CUAD's categories ({', '.join(CUAD_CATEGORIES[:3])}, ...) and their "
                        "'-Answer' columns; rename or remove the column"
                    )
                categories.append(column)
            if not categories:
                raise DataError(f"{file}:1: no category columns in the header; {hint}")
            seen: dict[str, int] = {}
            for row in reader:
                line = reader.line_num
                if limit is not None and len(contracts) >= limit:
                    break
                filename = (row.get("Filename") or "").strip()
                if not filename:
                    raise DataError(f"{file}:{line}: empty 'Filename'; name the contract's file")
                key = _norm_name(_stem(filename))
                txt = texts.get(key)
                if txt is None:
                    raise DataError(
                        f"{file}:{line}: Filename {filename!r} matches no text file in "
                        f"{txt_dir} (looked for {key + '.txt'!r} after normalising both names); "
                        "add the contract's .txt or remove the row"
                    )
                if key in seen:
                    raise DataError(
                        f"{file}:{line}: Filename {filename!r} maps to the same text file as "
                        f"line {seen[key]}; remove the duplicate row"
                    )
                seen[key] = line
                text = txt.read_text(encoding="utf-8")
                answers: dict[str, tuple[str, ...]] = {}
                spans: dict[str, tuple[tuple[int, int], ...]] = {}
                for category in categories:
                    cell = row.get(category)
                    if cell is None:
                        raise DataError(f"{file}:{line}: the row has fewer columns than the header")
                    parts = [
                        p.strip()
                        for clause in _parse_cell(cell, file, line, category)
                        for p in clause.split(_OMITTED)
                        if p.strip()
                    ]
                    taken: set[tuple[int, int]] = set()
                    for part in parts:
                        span = locate(text, part, taken)
                        if span is None:
                            unmatched += 1
                        else:
                            taken.add(span)
                    answers[category] = tuple(parts)
                    spans[category] = tuple(sorted(taken))
                contracts.append(
                    Contract(
                        txt.stem,
                        text,
                        answers,
                        spans,
                        sum(len(a) for a in answers.values()) - sum(len(s) for s in spans.values()),
                    )
                )
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{file}: not UTF-8 text ({exc.reason}); is this the right --format?"
        ) from None
    except csv.Error as exc:
        raise DataError(f"{file}: malformed CSV ({exc}); is this the right --format?") from None
    if not contracts:
        raise DataError(f"{file}: no contracts (the CSV has a header but no rows)")
    notes = []
    total = sum(len(a) for c in contracts for a in c.answers.values())
    if unmatched:
        notes.append(
            f"{unmatched} of {total} highlighted texts could not be located in their contract; "
            "they count as answers in evaluation but give no training labels"
        )
    return CuadDataset(str(folder), tuple(categories), contracts, notes)


def split_contracts(
    contracts: Sequence[Contract], test_fraction: float, *, seed: int
) -> tuple[list[Contract], list[Contract]]:
    """(train, test) by contract: a seeded permutation of the contracts sorted by name."""
    ordered = sorted(contracts, key=lambda c: c.name)
    if len(ordered) < 2:
        raise DataError(f"{len(ordered)} contract(s): a train/test split needs two or more")
    order = np.random.default_rng(seed).permutation(len(ordered))
    n_test = min(len(ordered) - 1, max(1, round(len(ordered) * test_fraction)))
    test = sorted((ordered[i] for i in order[:n_test]), key=lambda c: c.name)
    train = sorted((ordered[i] for i in order[n_test:]), key=lambda c: c.name)
    return train, test
