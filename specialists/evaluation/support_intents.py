"""The built-in intent specialist on its own evaluation set, and on CLINC150.

The evaluation set (``data/support_intents_eval.yaml``) was written for this project apart
from the few-shot examples: messages for each built-in intent and off-topic messages. Each
message is in the ``tune`` or the ``test`` part by a fixed hash of its text, so the split
cannot follow the results; what is fitted (the temperature and the out-of-scope threshold)
sees ``tune`` only, and ``test`` is the figure to report.

Two scores matter: in-scope accuracy (an in-scope message is right when its label is right;
answering it out of scope is wrong) and out-of-scope recall (the share of off-topic messages
answered out of scope).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from orchestrator.specialists._base import TextInput
from orchestrator.specialists.evaluation.datasets import DataError, Split, load_dataset
from orchestrator.specialists.intent import BUILTIN_OUT_OF_SCOPE, IntentSpecialist
from orchestrator.specialists.training.calibration import expected_calibration_error

__all__ = [
    "CLINC_OFF_TOPIC_DOMAINS",
    "CLINC_TO_BUILTIN",
    "EVAL_SET",
    "OutOfScopeScores",
    "Part",
    "clinc_splits",
    "evaluate_intent",
    "load_eval_set",
    "part_of",
    "score_out_of_scope",
]

EVAL_SET = Path(__file__).parent / "data" / "support_intents_eval.yaml"
Part = Literal["tune", "test"]

#: CLINC150 intents whose messages, sent to a support desk, fit a built-in intent's
#: description (chosen from the intent names and training examples, before any scoring).
CLINC_TO_BUILTIN: Mapping[str, str] = {
    "order_status": "order_status",
    "account_blocked": "account_access",
    "pin_change": "account_access",
    "bill_balance": "billing",
    "bill_due": "billing",
    "pay_bill": "billing",
    "card_declined": "billing",
    "report_fraud": "billing",
}
#: CLINC150 domains with nothing a support desk handles (chit-chat; timers, weather, maths).
CLINC_OFF_TOPIC_DOMAINS = ("small_talk", "utility")


def part_of(text: str) -> Part:
    """The part a message belongs to: the lowest bit of the first byte of its SHA-256."""
    return "test" if hashlib.sha256(text.encode("utf-8")).digest()[0] & 1 else "tune"


def load_eval_set(part: Part | None = None, path: Path = EVAL_SET) -> Split:
    """The evaluation set (one part of it, or all), labels as in the file."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a mapping of label -> list of messages")
    texts: list[str] = []
    labels: list[str] = []
    for label, messages in raw.items():
        for text in messages:
            if part is None or part_of(text) == part:
                texts.append(text)
                labels.append(str(label))
    return Split(texts, labels)


@dataclass(frozen=True)
class OutOfScopeScores:
    """In-scope accuracy and out-of-scope recall, with the counts behind them."""

    in_scope_accuracy: float
    out_of_scope_recall: float
    out_of_scope_precision: float
    """Of the messages answered out of scope, the share that were off-topic."""
    in_scope: int
    out_of_scope: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def score_out_of_scope(
    gold: Sequence[str], predicted: Sequence[str], oos_label: str = BUILTIN_OUT_OF_SCOPE
) -> OutOfScopeScores:
    truth, pred = np.asarray(gold), np.asarray(predicted)
    inside = truth != oos_label
    answered_oos = pred == oos_label

    def share(hits: np.ndarray[Any, Any], of: np.ndarray[Any, Any]) -> float:
        return float(hits[of].mean()) if of.any() else float("nan")

    return OutOfScopeScores(
        in_scope_accuracy=share(pred == truth, inside),
        out_of_scope_recall=share(answered_oos, ~inside),
        out_of_scope_precision=share(~inside, answered_oos),
        in_scope=int(inside.sum()),
        out_of_scope=int((~inside).sum()),
    )


def evaluate_intent(specialist: IntentSpecialist, data: Split) -> dict[str, Any]:
    """Scores of `specialist` on `data` (out-of-scope messages labelled with the built-in
    out-of-scope name), the calibration of its confidence, and each miss."""
    predictions = specialist.predict_batch([TextInput(text=t) for t in data.texts])
    predicted = [p.output.label for p in predictions]
    confidence = np.asarray([p.confidence for p in predictions])
    correct = np.asarray(predicted) == np.asarray(data.labels)
    scores = score_out_of_scope(data.labels, predicted)
    return {
        **scores.as_dict(),
        "expected_calibration_error": expected_calibration_error(confidence, correct),
        "mean_confidence": float(confidence.mean()) if len(confidence) else float("nan"),
        "misses": [
            {"text": t, "label": g, "answer": p, "confidence": round(float(c), 3)}
            for t, g, p, c, ok in zip(
                data.texts, data.labels, predicted, confidence, correct, strict=True
            )
            if not ok
        ],
    }


def clinc_splits(folder: Path) -> dict[str, Split]:
    """From CLINC150's test split, labelled in the built-in intents' terms: ``oos_test``
    (its out-of-scope queries), ``mapped`` (the intents in :data:`CLINC_TO_BUILTIN`) and
    ``off_topic_domains`` (the intents of :data:`CLINC_OFF_TOPIC_DOMAINS`)."""
    test = load_dataset(folder, "clinc150").split("test")
    domains_file = folder / "domains.json"
    try:
        domains = json.loads(domains_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{domains_file}: unreadable ({exc}); it ships with CLINC150") from None
    off_topic = {intent for d in CLINC_OFF_TOPIC_DOMAINS for intent in domains[d]}

    def pick(labels: Mapping[str, str]) -> Split:
        rows = [(t, labels[g]) for t, g in zip(test.texts, test.labels, strict=True) if g in labels]
        return Split([t for t, _ in rows], [g for _, g in rows])

    return {
        "oos_test": pick({"oos": BUILTIN_OUT_OF_SCOPE}),
        "mapped": pick(CLINC_TO_BUILTIN),
        "off_topic_domains": pick(dict.fromkeys(off_topic, BUILTIN_OUT_OF_SCOPE)),
    }
