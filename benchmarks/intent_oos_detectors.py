"""Out-of-scope detectors for trained intent heads, compared on CLINC150's validation split.

Which signal tells CLINC150's out-of-scope questions from the in-scope ones best, over the
frozen MiniLM embeddings: the Mahalanobis distance to the nearest in-scope class mean (shared
covariance, several shrinkages), the cosine distance to the nearest in-scope training
examples (kNN), the head's out-of-scope probability, one minus its best in-scope probability,
and sums of standardised signals. Two training sets: the replay's first version (10 examples
per class, the replay's seed) and the whole training split. Only the training and validation
splits are read; the test split is never loaded.

Columns: AUROC (in-scope vs out-of-scope), out-of-scope recall when 95% and 90% of the
in-scope questions pass the detector, and for the default detector the thresholds the
artifact's rule chooses (the confidence and out-of-scope thresholds together).

    python benchmarks/intent_oos_detectors.py [--data DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from _common import DATA_DIR, machine, print_table

from orchestrator.specialists.backends.encoder import bundled_encoder
from orchestrator.specialists.evaluation.datasets import load_dataset
from orchestrator.specialists.evaluation.replay import _pick_seed
from orchestrator.specialists.heads import Floats
from orchestrator.specialists.out_of_scope import Signal
from orchestrator.specialists.training.embeddings import split_embedder
from orchestrator.specialists.training.out_of_scope import (
    OutOfScopeSetting,
    auroc,
    fit_detector,
)
from orchestrator.specialists.training.train import fit_classifier

SHRINKAGES = (0.1, 0.3, 0.5, 0.7, 0.9)
KNN = 5
SUMS: tuple[tuple[Signal, ...], ...] = (
    ("oos_probability", "max_probability"),
    ("mahalanobis", "oos_probability"),
    ("mahalanobis", "max_probability"),
    ("mahalanobis", "oos_probability", "max_probability"),
)


def _recall_at(s_in: Floats, s_out: Floats, keep: float) -> float:
    return float((s_out > np.quantile(s_in, keep)).mean())


def _knn_distance(bank: Floats, x: Floats, k: int) -> Floats:
    sims = x @ bank.T
    top = -np.sort(-sims, axis=1)[:, :k]
    out: Floats = (1.0 - top.mean(axis=1)).astype(np.float32)
    return out


def _regime(
    x_fit: Floats, y_fit: np.ndarray, x_val: Floats, y_val: np.ndarray, classes: int, oos: int
) -> dict[str, Any]:
    fitted = fit_classifier(
        x_fit, y_fit, x_val, y_val, classes, oos_index=oos, target_precision=0.97, lower_bound=0.95
    )
    p = fitted.calibrator.probabilities(fitted.head.logits(x_val))
    inside = y_val != oos
    rows: dict[str, Floats] = {}
    for shrinkage in SHRINKAGES:
        setting = OutOfScopeSetting(signals=("mahalanobis",), shrinkage=shrinkage)
        detector = fit_detector(x_fit, y_fit, oos, x_val, p, inside, setting)
        rows[f"mahalanobis (shrinkage {shrinkage:g})"] = detector.scores(x_val, p)
    rows[f"kNN cosine distance (k={KNN})"] = _knn_distance(x_fit[y_fit != oos], x_val, KNN)
    for signals in (("oos_probability",), ("max_probability",), *SUMS):
        for shrinkage in (0.3, 0.5, 0.7) if "mahalanobis" in signals else (0.0,):
            setting = OutOfScopeSetting(signals=signals, shrinkage=shrinkage)
            detector = fit_detector(x_fit, y_fit, oos, x_val, p, inside, setting)
            name = " + ".join(signals) + (f" (shrinkage {shrinkage:g})" if shrinkage else "")
            rows[name] = detector.scores(x_val, p)
    table = {
        name: {
            "auroc": auroc(s[inside], s[~inside]),
            "recall_keeping_95": _recall_at(s[inside], s[~inside], 0.95),
            "recall_keeping_90": _recall_at(s[inside], s[~inside], 0.90),
        }
        for name, s in rows.items()
    }
    chosen = fitted.out_of_scope
    assert chosen is not None and chosen.fit is not None
    return {
        "fit_examples": len(y_fit),
        "validation_accuracy": fitted.val_metrics["accuracy"],
        "detectors": table,
        "default": {
            "signals": list(chosen.signals),
            "confidence_threshold": fitted.threshold.value,
            "out_of_scope_threshold": chosen.threshold,
            **chosen.fit["validation"],
        },
    }


def run(data: Path) -> dict[str, Any]:
    dataset = load_dataset(data, "clinc150")
    train, val = dataset.split("train"), dataset.split("val")
    embed = split_embedder(
        bundled_encoder(), cache_dir=".orchestrator/cache", progress=lambda d, t: lambda n: None
    )
    x_train, x_val = embed(train.texts, "training split"), embed(val.texts, "validation")
    labels = tuple(sorted(set(train.labels)))
    index = {label: i for i, label in enumerate(labels)}
    y_train = np.array([index[label] for label in train.labels], dtype=np.int64)
    y_val = np.array([index[label] for label in val.labels], dtype=np.int64)
    # The replay's first version: 10 per class drawn with its seed.
    seed = np.asarray(_pick_seed(train.labels, 10, np.random.default_rng(0)))
    regimes = {"10 per class": seed, "all training": np.arange(len(y_train))}
    return {
        "machine": machine(),
        "validation": {"questions": len(y_val), "out_of_scope": int((y_val == index["oos"]).sum())},
        "regimes": {
            name: _regime(x_train[rows], y_train[rows], x_val, y_val, len(labels), index["oos"])
            for name, rows in regimes.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR / "clinc150")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = run(args.data)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name, regime in report["regimes"].items():
        rows = [
            [
                det,
                f"{m['auroc']:.4f}",
                f"{m['recall_keeping_95']:.2f}",
                f"{m['recall_keeping_90']:.2f}",
            ]
            for det, m in regime["detectors"].items()
        ]
        title = (
            f"{name}: {regime['fit_examples']} examples, validation accuracy "
            f"{regime['validation_accuracy']:.4f}"
        )
        print_table(title, ["detector", "AUROC", "recall @95% kept", "recall @90% kept"], rows)
        print("default detector, thresholds by the artifact's rule:", json.dumps(regime["default"]))


if __name__ == "__main__":
    main()
