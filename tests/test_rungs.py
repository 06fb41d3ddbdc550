"""Escalation rungs that can change an outcome: crops the encoder reads differently, a
confidence fitted on validation data, and the ladder resolving with them (on data the tests
write themselves)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orchestrator import GraphSpec, Orchestrator
from orchestrator.specialists import SpecialistRegistry
from orchestrator.specialists.artifacts import load_artifact
from orchestrator.specialists.backends.encoder import bundled_encoder
from orchestrator.specialists.evaluation.datasets import Split, TextDataset
from orchestrator.specialists.evaluation.rungs import evaluate_rungs
from orchestrator.specialists.rung_confidence import (
    SECOND_OPINION_FEATURES,
    VOTE_FEATURES,
    Answer,
    RungConfidence,
    input_variants,
    load_rung_confidences,
    vote_features,
)
from orchestrator.specialists.training.rung_confidence import fit_rung_confidence

from .test_training import _rows, trained  # noqa: F401 - the module-scoped trained artifact


def test_crops_change_what_the_encoder_reads_where_case_changes_did_not() -> None:
    text = "I was charged twice for my subscription, and nobody answers my emails"
    encoder = bundled_encoder()
    crops = input_variants(text, 5)
    assert len(crops) == 5 and text not in crops and len(set(crops)) == 5
    vectors = encoder.encode([text, text.lower(), text.capitalize(), *crops])
    cosine = vectors @ vectors[0] / np.linalg.norm(vectors, axis=1) / np.linalg.norm(vectors[0])
    assert cosine[1] > 0.999 and cosine[2] > 0.999  # the uncased model: the same sentence
    assert max(cosine[3:]) < 0.995  # every crop is a different input to it
    assert "nobody answers my emails" in crops  # a clause on its own
    assert input_variants("refund", 3) == []  # nothing to crop


def _validation_rows(n: int = 60) -> tuple[list[list[float]], list[bool]]:
    """Votes as a validation split would give them: answers whose crops agree are right,
    answers whose crops disagree are right half the time."""
    rows, correct = [], []
    for i in range(n):
        agree = i % 2 == 0
        spread = 0.4 + 0.3 * (i % 10) / 9  # how sure the agreeing crops were
        rows.append([0.45, 1.0, spread, 1.0] if agree else [0.45, 0.34, 0.3, 1.0])
        correct.append(agree or i % 4 == 1)
    return rows, correct


def _fitted_vote() -> RungConfidence:
    rows, correct = _validation_rows()
    return fit_rung_confidence("vote", VOTE_FEATURES, rows, correct, 0.95)


def test_a_fitted_vote_accepts_agreeing_crops_and_refuses_disagreeing_ones() -> None:
    fitted = _fitted_vote()
    assert fitted.reached and fitted.precision >= 0.95 and fitted.fitted_on == 60
    assert fitted.coverage == 0.5  # the agreeing half, no more
    assert fitted.accepts(fitted.score([0.45, 1.0, 0.4, 1.0]))
    assert not fitted.accepts(fitted.score([0.45, 0.34, 0.3, 1.0]))
    assert RungConfidence.from_json(fitted.to_json()) == fitted


def test_vote_features_pick_the_label_with_most_weight() -> None:
    original = Answer("other", 0.4, {"other": 0.4, "billing": 0.35})
    crops = [Answer("billing", 0.7), Answer("billing", 0.6), Answer("other", 0.5)]
    winner, features = vote_features(original, crops)
    assert winner == "billing"
    assert features == pytest.approx([0.4, 2 / 3, (0.7 + 0.6) / 3, 0.0])


LADDER = """\
version: 1
name: rungs
escalation: [{kind: vote, variants: 3}]
specialists:
  first:
    uses: scripted
    min_confidence: 0.6
    options:
      answers: {"charged": {label: billing, confidence: 0.5}}
      default: {label: other, confidence: 0.3}
      labels: [billing, other]
      rungs: RUNGS
nodes:
  work:
    kind: specialists
    subtasks: [{id: a, specialist: first}]
edges:
  - {from: START, to: work}
"""


def _run(registry: SpecialistRegistry, text: str, rungs: dict[str, Any], ladder: str = LADDER):
    graph = ladder.replace("RUNGS", str(rungs).replace("'", '"').replace("True", "true"))
    graph = graph.replace("False", "false")
    spec = GraphSpec.from_text(graph, registry=registry)
    return Orchestrator(spec, registry=registry, checkpointer="none", frontier=False).run(text)


def test_the_vote_resolves_what_its_fitted_confidence_accepts(
    registry: SpecialistRegistry,
) -> None:
    fitted = _fitted_vote()
    # Every crop keeps "charged": billing again each time, as unsure as before.
    result = _run(registry, "I was charged twice for one order", {"vote": fitted.to_json()})
    (escalation,) = result.escalations
    assert escalation.outcome == "resolved" and escalation.resolved_by == "vote"
    field = result.fields["a.label"]
    assert field.value == "billing" and field.provenance.verified
    assert field.provenance.source == "vote"
    step = escalation.steps[0]
    assert step.passed and step.confidence == pytest.approx(fitted.score([0.5, 1.0, 0.5, 1.0]))
    assert "3 of 3 crops said 'billing'" in step.detail
    assert result.status == "ok"


def test_the_vote_without_a_fitted_confidence_resolves_nothing_and_says_why(
    registry: SpecialistRegistry,
) -> None:
    result = _run(registry, "I was charged twice for one order", {})
    (escalation,) = result.escalations
    assert escalation.outcome == "unresolved"
    assert "no confidence fitted for `vote`" in escalation.steps[0].detail
    assert not result.fields["a.label"].provenance.verified


SECOND = LADDER.replace(
    "escalation: [{kind: vote, variants: 3}]",
    "escalation: [{kind: specialist, specialist: second}]",
).replace(
    "nodes:",
    "  second:\n    uses: scripted\n    min_confidence: 0.99\n    options:\n"
    '      answers: {"charged": {label: billing, confidence: 0.8}}\n'
    "      labels: [billing, other]\nnodes:",
)


def test_a_second_opinion_that_agrees_resolves_with_its_fitted_confidence(
    registry: SpecialistRegistry,
) -> None:
    # Validation: when the second model agrees with the first, the answer was right.
    rows = [[0.5, 0.8, 1.0, 0.8]] * 20 + [[0.5, 0.8, 0.0, 0.1]] * 20
    correct = [True] * 20 + [i % 2 == 0 for i in range(20)]
    fitted = fit_rung_confidence("specialist", SECOND_OPINION_FEATURES, rows, correct, 0.95)
    assert fitted.reached
    rungs = {"specialist:scripted-v1": fitted.to_json()}
    result = _run(registry, "I was charged twice", rungs, SECOND)
    (escalation,) = result.escalations
    assert escalation.resolved_by == "specialist:second"
    step = escalation.steps[0]
    assert step.passed and step.confidence == pytest.approx(fitted.score(rows[0]))
    assert "fitted confidence" in step.detail
    assert result.fields["a.label"].value == "billing"
    assert result.fields["a.label"].provenance.verified


def test_evaluate_rungs_fits_on_validation_and_scores_the_test_split(
    trained: Path,  # noqa: F811
) -> None:
    artifact = load_artifact("demo", trained / "store")
    rows = _rows()
    test = Split(
        ["will it snow in lisbon", "flights to havana please", "sing me a song", "what is a moon"],
        ["weather", "flights", "music", "oos"],
    )
    dataset = TextDataset(
        "demo",
        "jsonl",
        "tests",
        {"train": Split([r["text"] for r in rows], [r["label"] for r in rows]), "test": test},
        oos_label="oos",
    )
    found = evaluate_rungs(artifact, dataset, second=artifact, cache_dir=None, variants=3)
    by_rung = {r.rung: r for r in found}
    assert set(by_rung) == {"vote", "specialist:demo", "frontier"}
    frontier = by_rung["frontier"]
    assert not frontier.measured and "not measured" in frontier.note
    for row in (by_rung["vote"], by_rung["specialist:demo"]):
        assert row.measured and row.escalations == frontier.escalations
        assert row.target_precision == artifact.card["threshold"]["target_precision"]
        assert row.qualifies is bool(
            row.resolved_share is not None
            and row.resolved_share >= 0.2
            and (row.resolved_accuracy or 0) >= row.target_precision
        )
    saved = load_rung_confidences(artifact.path)
    assert set(saved) == {"vote", "specialist:demo"}
    assert saved["vote"].features == VOTE_FEATURES
