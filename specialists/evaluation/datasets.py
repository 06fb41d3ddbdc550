"""Labelled text datasets for training and evaluating the text specialists.

Each loader returns a :class:`TextDataset`: named splits of (text, label) pairs with string
labels. Problems in the data raise :class:`DataError` (a :class:`ConfigurationError`) naming
the file, the line or column, and how to fix it, before anything is trained or written.

Formats: ``clinc150`` (``data_full.json``), ``banking77`` (``train.csv``/``test.csv``),
``sst2`` (GLUE TSV), ``tweeteval`` (``*_text.txt``/``*_labels.txt``), and the generic
``csv`` and ``jsonl`` (a file, or a directory holding ``train``/``val``/``test`` files).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from orchestrator._errors import ConfigurationError

__all__ = [
    "FORMATS",
    "DataError",
    "DataFormat",
    "Split",
    "TextDataset",
    "check_trainable",
    "load_dataset",
    "read_jsonl_objects",
    "stratified_split",
]

DataFormat = Literal["clinc150", "banking77", "sst2", "tweeteval", "csv", "jsonl"]
FORMATS: tuple[str, ...] = ("clinc150", "banking77", "sst2", "tweeteval", "csv", "jsonl")
# Split names as they appear in the wild, mapped to ours.
_SPLIT_ALIASES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}


class DataError(ConfigurationError):
    """The training or evaluation data is unusable; the message says where and how to fix it."""


@dataclass(frozen=True)
class Split:
    """One split: parallel lists of texts and string labels."""

    texts: list[str]
    labels: list[str]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise DataError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: Iterable[int]) -> Split:
        idx = list(index)
        return Split([self.texts[i] for i in idx], [self.labels[i] for i in idx])


@dataclass(frozen=True)
class TextDataset:
    """Named splits of one dataset, and where it came from."""

    name: str
    format: str
    source: str
    splits: dict[str, Split]
    #: The label meaning "none of these" (CLINC150's ``oos``), if the data has one.
    oos_label: str | None = None
    notes: list[str] = field(default_factory=list)

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise DataError(
                f"{self.source}: no {name!r} split; this dataset has "
                f"{', '.join(sorted(self.splits))}"
            )
        return self.splits[name]

    def label_set(self) -> list[str]:
        """All labels of the training split, sorted."""
        return sorted(set(self.split("train").labels))


def _need_file(path: Path, fmt: str, hint: str) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: file not found for --format {fmt}; {hint}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; give a file with labelled examples")
    return path


def _check_split(split: Split, where: str) -> Split:
    if len(split) == 0:
        raise DataError(f"{where}: no examples found; give a file with labelled examples")
    for i, (text, label) in enumerate(zip(split.texts, split.labels, strict=True)):
        if not text.strip():
            raise DataError(f"{where}: example {i + 1} has an empty text; remove it")
        if not label.strip():
            raise DataError(f"{where}: example {i + 1} has an empty label; label it or remove it")
    return split


def _load_clinc150(path: Path) -> TextDataset:
    file = path / "data_full.json" if path.is_dir() else path
    _need_file(file, "clinc150", "point --data at the clinc150 folder or its data_full.json")
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{file}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); "
            "--format clinc150 expects data_full.json from clinc/oos-eval"
        ) from None
    if not isinstance(raw, dict) or "train" not in raw:
        raise DataError(
            f"{file}: expected a JSON object with keys train, val, test (and oos_*); "
            "is this the right --format?"
        )
    splits: dict[str, Split] = {}
    for name in ("train", "val", "test"):
        rows = [*raw.get(name, []), *raw.get(f"oos_{name}", [])]
        if not rows:
            continue
        texts: list[str] = []
        labels: list[str] = []
        for i, row in enumerate(rows):
            if not (
                isinstance(row, list) and len(row) == 2 and all(isinstance(v, str) for v in row)
            ):
                raise DataError(f"{file}: {name}[{i}] is not a [text, label] pair of strings")
            texts.append(row[0])
            labels.append(row[1])
        splits[name] = _check_split(Split(texts, labels), f"{file} ({name})")
    return TextDataset("clinc150", "clinc150", str(file), splits, oos_label="oos")


def _read_csv(file: Path, text_column: str, label_column: str, *, delimiter: str = ",") -> Split:
    with file.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        header = reader.fieldnames or []
        for column, flag in ((text_column, "--text-column"), (label_column, "--label-column")):
            if column not in header:
                raise DataError(
                    f"{file}:1: no column {column!r} in the header "
                    f"(columns: {', '.join(header) or 'none'}); pass {flag} to name it"
                )
        texts: list[str] = []
        labels: list[str] = []
        for row in reader:
            text, label = row.get(text_column), row.get(label_column)
            if text is None or label is None:
                raise DataError(
                    f"{file}:{reader.line_num}: the row has fewer columns than the header"
                )
            texts.append(text)
            labels.append(label.strip())
    return _check_split(Split(texts, labels), str(file))


def _load_banking77(path: Path, text_column: str, label_column: str) -> TextDataset:
    folder = path if path.is_dir() else path.parent
    hint = "point --data at the banking77 folder holding train.csv and test.csv"
    label_column = "category" if label_column == "label" else label_column
    splits = {
        "train": _read_csv(
            _need_file(folder / "train.csv", "banking77", hint), text_column, label_column
        )
    }
    if (folder / "test.csv").is_file():
        splits["test"] = _read_csv(folder / "test.csv", text_column, label_column)
    return TextDataset("banking77", "banking77", str(folder), splits)


def _load_sst2(path: Path) -> TextDataset:
    folder = path if path.is_dir() else path.parent
    hint = "point --data at the GLUE SST-2 folder holding train.tsv and dev.tsv"
    names = {0: "negative", 1: "positive"}
    splits: dict[str, Split] = {}
    for split, filename in (
        ("train", "train.tsv"),
        ("val", "dev.tsv"),
        ("test", "test-labeled.tsv"),
    ):
        file = folder / filename
        if split != "train" and not file.is_file():
            continue
        raw = _read_csv(_need_file(file, "sst2", hint), "sentence", "label", delimiter="\t")
        labels: list[str] = []
        for i, value in enumerate(raw.labels):
            if value not in ("0", "1"):
                raise DataError(f"{file}:{i + 2}: label {value!r} is not 0 or 1")
            labels.append(names[int(value)])
        splits[split] = Split([t.strip() for t in raw.texts], labels)
    return TextDataset("sst2", "sst2", str(folder), splits)


def _read_lines(file: Path) -> list[str]:
    # Tweets may contain stray carriage returns; only '\n' separates examples.
    return file.read_text(encoding="utf-8").split("\n")[:-1] if file.stat().st_size else []


def _load_tweeteval(path: Path) -> TextDataset:
    folder = path if path.is_dir() else path.parent
    hint = "point --data at the tweeteval sentiment folder (val_text.txt, val_labels.txt, ...)"
    mapping_file = _need_file(folder / "mapping.txt", "tweeteval", hint)
    mapping: dict[str, str] = {}
    for lineno, line in enumerate(mapping_file.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataError(f"{mapping_file}:{lineno}: expected 'ID<TAB>label'")
        mapping[parts[0].strip()] = parts[1].strip()
    splits: dict[str, Split] = {}
    # The public snapshot has no train file; the 2,000 validation tweets are the training
    # data (as in the floor the issue quotes), so they are exposed as "train".
    for split, stem in (("train", "train"), ("train", "val"), ("test", "test")):
        text_file, label_file = folder / f"{stem}_text.txt", folder / f"{stem}_labels.txt"
        if split in splits or not text_file.is_file():
            continue
        texts = _read_lines(_need_file(text_file, "tweeteval", hint))
        raw_labels = _read_lines(_need_file(label_file, "tweeteval", hint))
        if len(texts) != len(raw_labels):
            raise DataError(
                f"{text_file} has {len(texts)} lines but {label_file} has {len(raw_labels)}; "
                "the two files must stay line-aligned"
            )
        labels: list[str] = []
        for lineno, value in enumerate(raw_labels, 1):
            if value.strip() not in mapping:
                raise DataError(
                    f"{label_file}:{lineno}: label {value!r} is not in {mapping_file.name} "
                    f"({', '.join(mapping)})"
                )
            labels.append(mapping[value.strip()])
        splits[split] = _check_split(Split(texts, labels), str(text_file))
    if "train" not in splits:
        raise DataError(f"{folder}: neither train_text.txt nor val_text.txt found; {hint}")
    return TextDataset("tweeteval_sentiment", "tweeteval", str(folder), splits)


def read_jsonl_objects(file: Path, expected: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file; ``expected`` says what a
    line should hold, for the error."""
    with file.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{file}:{lineno}:{exc.colno}: not a JSON object ({exc.msg}); {expected}"
                ) from None
            if not isinstance(row, dict):
                raise DataError(
                    f"{file}:{lineno}: expected a JSON object, got {type(row).__name__}"
                )
            yield lineno, row


def _read_jsonl(file: Path, text_key: str, label_key: str) -> Split:
    texts: list[str] = []
    labels: list[str] = []
    for lineno, row in read_jsonl_objects(file, "--format jsonl expects one object per line"):
        for key, flag in ((text_key, "--text-column"), (label_key, "--label-column")):
            if key not in row:
                raise DataError(
                    f"{file}:{lineno}: no key {key!r} (keys: {', '.join(row) or 'none'}); "
                    f"pass {flag} to name it"
                )
        texts.append(str(row[text_key]))
        labels.append(str(row[label_key]).strip())
    return _check_split(Split(texts, labels), str(file))


def _load_generic(path: Path, fmt: str, text_column: str, label_column: str) -> TextDataset:
    def read(file: Path) -> Split:
        _need_file(file, fmt, f"give a .{fmt} file or a folder with train.{fmt}")
        if fmt == "csv":
            delimiter = "\t" if file.suffix == ".tsv" else ","
            return _read_csv(file, text_column, label_column, delimiter=delimiter)
        return _read_jsonl(file, text_column, label_column)

    if path.is_dir():
        splits: dict[str, Split] = {}
        for file in sorted(path.iterdir()):
            split = _SPLIT_ALIASES.get(file.stem.lower())
            if split and file.suffix.lower() in (f".{fmt}", ".tsv" if fmt == "csv" else ".jsonl"):
                splits[split] = read(file)
        if "train" not in splits:
            raise DataError(
                f"{path}: no train.{fmt} in the folder (found splits: {sorted(splits)})"
            )
        return TextDataset(path.name, fmt, str(path), splits, oos_label=_oos_of(splits))
    if not path.exists():
        raise DataError(f"{path}: file not found")
    splits = {"train": read(path)}
    return TextDataset(path.stem, fmt, str(path), splits, oos_label=_oos_of(splits))


def _oos_of(splits: dict[str, Split]) -> str | None:
    # CLINC150's convention: examples labelled "oos" teach the "none of these" answer.
    return "oos" if "oos" in splits["train"].labels else None


def load_dataset(
    path: str | Path,
    fmt: str,
    *,
    text_column: str = "text",
    label_column: str = "label",
) -> TextDataset:
    """Load a dataset in one of :data:`FORMATS`; raises :class:`DataError` on bad data."""
    path = Path(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown --format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    try:
        if fmt == "clinc150":
            return _load_clinc150(path)
        if fmt == "banking77":
            return _load_banking77(path, text_column, label_column)
        if fmt == "sst2":
            return _load_sst2(path)
        if fmt == "tweeteval":
            return _load_tweeteval(path)
        return _load_generic(path, fmt, text_column, label_column)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text ({exc.reason}); is this the right --format?"
        ) from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc}); is this the right --format?") from None


def check_trainable(split: Split, where: str, *, min_per_label: int = 2) -> Counter[str]:
    """Refuse labels too rare to train and calibrate on; returns the label counts."""
    counts = Counter(split.labels)
    if len(counts) < 2:
        raise DataError(
            f"{where}: only one label ({next(iter(counts), 'none')}); "
            "a classifier needs two or more"
        )
    rare = sorted(label for label, n in counts.items() if n < min_per_label)
    if rare:
        shown = ", ".join(f"{label!r} ({counts[label]} example)" for label in rare[:5])
        raise DataError(
            f"{where}: {len(rare)} label(s) with fewer than {min_per_label} examples: {shown}; "
            "add examples or remove the label"
        )
    return counts


def stratified_split(
    labels: Sequence[str], fraction: float, *, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Indices (kept, held out): about `fraction` of each label held out, at least one kept."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    kept: list[int] = []
    held: list[int] = []
    for label in sorted(by_label):
        idx = rng.permutation(by_label[label]).tolist()
        n_held = min(len(idx) - 1, max(1, round(len(idx) * fraction)))
        held.extend(idx[:n_held])
        kept.extend(idx[n_held:])
    return sorted(kept), sorted(held)
