"""Fitting the built-in intent's temperature and out-of-scope threshold, on ``tune`` only.

The few-shot head is fitted on the label file's examples when the specialist loads. Two
numbers make its output mean something, and both come from the tune part of the evaluation
set (:mod:`orchestrator.specialists.evaluation.support_intents`), never from its test part:

- the temperature that minimises the negative log-likelihood of the tune messages' labels
  (off-topic ones labelled out of scope), so that a confidence of 0.8 is right about 80% of
  the time;
- the out-of-scope threshold on that calibrated probability, from a coarse grid, that gives
  the best worse-of-two score (in-scope accuracy, out-of-scope recall), ties to the better
  mean.

Both are written beside the label file, with the head and the file's hash; a test refits
them and fails when the label file changed without a refit.
"""

from __future__ import annotations

import numpy as np

from orchestrator.specialists._fewshot import FewShotHead, load_label_specs
from orchestrator.specialists.backends.encoder import TextEncoder, bundled_encoder
from orchestrator.specialists.evaluation.support_intents import (
    EVAL_SET,
    load_eval_set,
    score_out_of_scope,
)
from orchestrator.specialists.intent import (
    BUILTIN_FIT,
    BUILTIN_HEAD,
    BUILTIN_INTENTS,
    BUILTIN_OUT_OF_SCOPE,
    OutOfScopeFit,
    fit_intent_head,
    labels_digest,
)
from orchestrator.specialists.training.calibration import fit_calibrator

__all__ = ["THRESHOLD_GRID", "fit_builtin_intent", "write_builtin_fit"]

#: Coarse on purpose: a few hundred tune messages cannot place a threshold finer than this.
THRESHOLD_GRID = tuple(round(t, 2) for t in np.arange(0.20, 0.951, 0.05))


def fit_builtin_intent(encoder: TextEncoder | None = None) -> tuple[FewShotHead, OutOfScopeFit]:
    """The head fitted on the label file's examples, and its temperature and threshold
    fitted on the tune part."""
    encoder = encoder or bundled_encoder()
    head = fit_intent_head(encoder, load_label_specs(BUILTIN_INTENTS))
    tune = load_eval_set("tune")
    labels = list(head.labels)
    unknown = sorted(set(tune.labels) - set(labels))
    if unknown:
        raise ValueError(f"{EVAL_SET}: labels {unknown} are not in {BUILTIN_INTENTS.name}")
    logits = head.logits_of(encoder.encode(tune.texts))
    targets = np.asarray([labels.index(g) for g in tune.labels], dtype=np.int64)
    temperature = round(fit_calibrator(logits, targets, "temperature").temperature, 4)
    head.temperature = temperature
    probabilities = head.probabilities_of(encoder.encode(tune.texts))
    oos = labels.index(BUILTIN_OUT_OF_SCOPE)
    in_scope = np.delete(np.arange(len(labels)), oos)
    best_intent = np.asarray(labels)[in_scope][probabilities[:, in_scope].argmax(axis=1)]

    def outcome(threshold: float) -> tuple[float, float]:
        answers = np.where(probabilities[:, oos] >= threshold, BUILTIN_OUT_OF_SCOPE, best_intent)
        s = score_out_of_scope(tune.labels, list(answers))
        pair = (s.in_scope_accuracy, s.out_of_scope_recall)
        return min(pair), sum(pair) / 2

    threshold = max(THRESHOLD_GRID, key=outcome)
    answers = np.where(probabilities[:, oos] >= threshold, BUILTIN_OUT_OF_SCOPE, best_intent)
    scores = score_out_of_scope(tune.labels, list(answers))
    return head, OutOfScopeFit(
        labels_sha256=labels_digest(),
        encoder=encoder.model_id,
        temperature=temperature,
        out_of_scope_threshold=threshold,
        fitted_on=f"the tune part of {EVAL_SET.name} ({len(tune)} messages)",
        tune_scores={
            "in_scope_accuracy": round(scores.in_scope_accuracy, 4),
            "out_of_scope_recall": round(scores.out_of_scope_recall, 4),
        },
    )


def write_builtin_fit(head: FewShotHead, fit: OutOfScopeFit) -> None:
    head.save(BUILTIN_HEAD)
    BUILTIN_FIT.write_text(fit.model_dump_json(indent=2) + "\n", encoding="utf-8")
