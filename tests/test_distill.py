"""Distillation: candidates from base data plus teacher labels, and the promotion gate, on
features the tests draw themselves (three well-separated classes and one that overlaps)."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import numpy.typing as npt
import pytest

from orchestrator.specialists.artifacts import Artifact
from orchestrator.specialists.training.calibration import (
    threshold_for_precision,
    wilson_lower_bound,
)
from orchestrator.specialists.training.distill import (
    NEVER_ACCEPT,
    DistillData,
    PromotionRule,
    distill_candidate,
    held_out,
    promotion_gate,
    selective_accuracy,
    served_threshold,
)
from orchestrator.specialists.training.train import fit_classifier

LABELS = ("billing", "cancel", "refund", "shipping")
Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


def _draw(n: int, seed: int) -> tuple[Floats, Ints]:
    """`n` points per class in 16 dimensions; 'refund' sits between 'billing' and 'cancel'."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((4, 16), dtype=np.float32)
    centres[0, 0], centres[1, 1], centres[3, 3] = 4.0, 4.0, 4.0
    centres[2, 0], centres[2, 1], centres[2, 2] = 2.0, 2.0, 1.5
    y = np.repeat(np.arange(4), n)
    x = centres[y] + rng.normal(size=(len(y), 16)).astype(np.float32)
    return x.astype(np.float32), y.astype(np.int64)


def _version(x: Floats, y: Ints, x_val: Floats, y_val: Ints) -> Artifact:
    fitted = fit_classifier(x, y, x_val, y_val, len(LABELS), target_precision=0.9, lower_bound=0.9)
    return Artifact(
        name="demo",
        specialist="intent",
        labels=LABELS,
        head=fitted.head,
        calibrator=fitted.calibrator,
        threshold=served_threshold(fitted.threshold),
        encoder_id="test",
        card={"version": 1},
    )


@pytest.fixture(scope="module")
def splits() -> dict[str, tuple[Floats, Ints]]:
    return {
        "base": _draw(3, seed=1),
        "val": _draw(60, seed=2),
        "teacher": _draw(80, seed=3),
        "held": _draw(30, seed=4),
    }


def _refund_as_cancel(y: Ints) -> Ints:
    """A teacher that calls every refund request a cancellation."""
    return np.where(y == LABELS.index("refund"), LABELS.index("cancel"), y).astype(np.int64)


def _data(splits: dict[str, tuple[Floats, Ints]], *, mislabel: bool = False) -> DistillData:
    (bx, by), (vx, vy), (tx, ty), (hx, hy) = (splits[k] for k in ("base", "val", "teacher", "held"))
    if mislabel:
        ty, hy = _refund_as_cancel(ty), _refund_as_cancel(hy)
    return DistillData(bx, by, vx, vy, tx, ty, hx, hy)


def test_a_better_candidate_is_promoted_with_its_numbers_in_the_card(
    splits: dict[str, tuple[Floats, Ints]],
) -> None:
    current = _version(*splits["base"], *splits["val"])
    outcome = distill_candidate(current, _data(splits), rule=PromotionRule(), target_precision=0.9)
    decision = outcome.decision
    assert decision.promote, decision.reason
    held = decision.numbers["held_out_accuracy"]
    assert held["candidate"] > held["current"]
    lineage = outcome.card["lineage"]
    assert lineage["parent"] == "demo@1"
    assert lineage["teacher_labels_trained"] == 320 and lineage["teacher_labels_held_out"] == 120
    assert lineage["promotion"]["promote"] is True and "rule" in lineage["promotion"]


def test_a_worse_candidate_is_refused_and_says_why(
    splits: dict[str, tuple[Floats, Ints]],
) -> None:
    # The candidate agrees with the mislabelling teacher's own held-out labels, but the base
    # validation split shows what it learnt.
    current = _version(*splits["teacher"], *splits["val"])
    outcome = distill_candidate(
        current, _data(splits, mislabel=True), rule=PromotionRule(), target_precision=0.9
    )
    decision = outcome.decision
    assert not decision.promote
    assert decision.reason.startswith("worse on the base validation split"), decision.reason
    held = decision.numbers["held_out_accuracy"]
    assert held["candidate"] > held["current"]  # better by the teacher's own labels
    assert outcome.card["lineage"]["promotion"]["promote"] is False


def test_the_gate_refuses_a_candidate_that_answers_less(
    splits: dict[str, tuple[Floats, Ints]],
) -> None:
    # More accurate on the held-out labels than the current version, but so strict a
    # threshold that it answers less of the validation split: it would escalate more.
    current = _version(*_draw(80, seed=5), *splits["val"])
    better = _version(*_draw(300, seed=6), *splits["val"])
    vx, vy = splits["val"]
    answered = float(current.accepted(vx)[2].mean())
    scores = better.accepted(vx)[1]
    strict = dataclasses.replace(better, threshold=float(np.quantile(scores, 1 - answered / 2)))
    hx, hy = splits["held"]
    gate = functools.partial(
        promotion_gate,
        held_x=hx,
        held_y=[LABELS[i] for i in hy],
        val_x=vx,
        val_y=[LABELS[i] for i in vy],
    )
    decision = gate(current, strict, rule=PromotionRule())
    assert not decision.promote
    assert decision.reason.startswith("answers less of the base validation split"), decision.reason
    share = decision.numbers["validation_answered"]
    assert share["candidate"] < share["current"] == pytest.approx(answered)
    held = decision.numbers["held_out_accuracy_all"]
    assert held["candidate"] > held["current"]
    # The same candidate at its own threshold answers at least as much, and is promoted;
    # a rule that tolerates the drop promotes the strict one too.
    assert gate(current, better, rule=PromotionRule()).promote
    assert gate(current, strict, rule=PromotionRule(max_answered_drop=1.0)).promote


def test_the_gate_refuses_a_candidate_no_better_on_held_out_labels(
    splits: dict[str, tuple[Floats, Ints]],
) -> None:
    current = _version(*splits["teacher"], *splits["val"])
    weaker = _version(*splits["base"], *splits["val"])
    hx, hy = splits["held"]
    vx, vy = splits["val"]
    decision = promotion_gate(
        current,
        weaker,
        held_x=hx,
        held_y=[LABELS[i] for i in hy],
        val_x=vx,
        val_y=[LABELS[i] for i in vy],
        rule=PromotionRule(),
    )
    assert not decision.promote
    assert decision.reason.startswith("not better on the held-out teacher labels")
    too_few = promotion_gate(
        weaker,
        current,
        held_x=hx[:5],
        held_y=[LABELS[i] for i in hy[:5]],
        val_x=vx,
        val_y=[LABELS[i] for i in vy],
        rule=PromotionRule(),
    )
    assert not too_few.promote and "only 5 held-out teacher labels" in too_few.reason


def test_held_out_membership_is_stable_and_near_its_share() -> None:
    keys = [f"trace-{i}" for i in range(4000)]
    chosen = [held_out(k, 0.2) for k in keys]
    assert chosen == [held_out(k, 0.2) for k in keys]
    assert 0.17 < sum(chosen) / len(keys) < 0.23


def test_selective_accuracy_ranks_by_score() -> None:
    score = np.array([0.9, 0.8, 0.7, 0.6], dtype=np.float32)
    correct = np.array([True, False, True, True])
    assert selective_accuracy(score, correct, 0.25) == 1.0
    assert selective_accuracy(score, correct, 0.5) == 0.5
    assert selective_accuracy(score, correct, 0.0) is None


def test_a_lower_bound_threshold_asks_for_more_than_the_measured_precision() -> None:
    rng = np.random.default_rng(0)
    conf = rng.random(2000)
    correct = rng.random(2000) < 0.6 + 0.4 * conf  # precision rises with confidence
    plain = threshold_for_precision(conf, correct, 0.9)
    bounded = threshold_for_precision(conf, correct, 0.9, lower_bound=0.95)
    assert bounded.value > plain.value and bounded.coverage < plain.coverage
    assert bounded.reached and bounded.precision >= 0.9
    bound = wilson_lower_bound(np.array([0.9]), np.array([100.0]), 0.95)[0]
    assert 0.83 < bound < 0.9


def test_a_version_that_cannot_reach_its_target_accepts_nothing() -> None:
    conf = np.linspace(0, 1, 50)
    never = threshold_for_precision(conf, np.zeros(50, dtype=bool), 0.9)
    assert not never.reached and served_threshold(never) == NEVER_ACCEPT > 1.0
