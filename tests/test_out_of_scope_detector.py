"""The out-of-scope detector of trained intent artifacts, on features the tests draw
themselves: three in-scope clusters, out-of-scope examples in two other regions, and a cluster
far from everything that the head alone answers confidently."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from orchestrator.specialists._base import TextInput
from orchestrator.specialists.artifacts import Artifact, load_artifact
from orchestrator.specialists.evaluation.datasets import DataError
from orchestrator.specialists.evaluation.replay import ReplayConfig
from orchestrator.specialists.intent import IntentSpecialist
from orchestrator.specialists.out_of_scope import OUT_OF_SCOPE_FILE
from orchestrator.specialists.training.artifacts import write_artifact
from orchestrator.specialists.training.distill import (
    DistillData,
    PromotionRule,
    classifier_artifact,
    distill_candidate,
)
from orchestrator.specialists.training.out_of_scope import (
    OutOfScopeSetting,
    auroc,
    card_section,
    setting_of,
    whitening,
)
from orchestrator.specialists.training.train import FittedClassifier, fit_classifier

LABELS = ("alarm", "music", "oos", "weather")
OOS = LABELS.index("oos")
DIM = 16
Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


def _draw(n_in: int, n_oos: int, seed: int) -> tuple[Floats, Ints]:
    """`n_in` points per in-scope intent (one axis each) and `n_oos` out-of-scope points split
    between two other axes."""
    rng = np.random.default_rng(seed)
    centres = {0: 0, 1: 1, 3: 2}  # class -> axis
    y = np.concatenate([np.repeat([0, 1, 3], n_in), np.full(n_oos, OOS)])
    x = rng.normal(size=(len(y), DIM)).astype(np.float32)
    for cls, axis in centres.items():
        x[y == cls, axis] += 5.0
    oos_rows = np.flatnonzero(y == OOS)
    x[oos_rows[::2], 3] += 5.0
    x[oos_rows[1::2], 4] += 5.0
    return x, y.astype(np.int64)


def _far(n: int, seed: int) -> Floats:
    """Far beyond 'alarm' and off every axis seen in training: a linear head answers 'alarm'
    with near certainty."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    x[:, 0] += 12.0
    x[:, 7] += 9.0
    return x


@pytest.fixture(scope="module")
def fitted() -> FittedClassifier:
    x, y = _draw(40, 12, seed=1)
    # 80 out-of-scope questions: with none accepted, the 90% upper bound is 2.0% (40 would
    # leave the 3% cap out of reach: 3.9% with none accepted).
    x_val, y_val = _draw(60, 80, seed=2)
    return fit_classifier(
        x, y, x_val, y_val, len(LABELS), oos_index=OOS, target_precision=0.95, lower_bound=0.9
    )


def _artifact(fitted: FittedClassifier) -> Artifact:
    return classifier_artifact(
        None, fitted, name="demo", labels=LABELS, encoder_id="test-axes", oos_label="oos"
    )


def _card(artifact: Artifact, fitted: FittedClassifier) -> dict[str, Any]:
    return {
        "name": artifact.name,
        "specialist": "intent",
        "encoder": artifact.encoder_id,
        "head": fitted.config.describe(),
        "labels": list(LABELS),
        "oos_label": "oos",
        "data": {"source": "drawn by the test", "format": "features", "splits": {}},
        "calibration": {**fitted.calibrator.to_json(), "ece_before": 0.0, "ece_after": 0.0},
        "threshold": dataclasses.asdict(fitted.threshold),
        "out_of_scope": card_section(artifact.out_of_scope),
        "command": "test",
        "created": "2026-12-07T00:00:00+00:00",
    }


def _write(fitted: FittedClassifier, folder: Path) -> Path:
    artifact = _artifact(fitted)
    return write_artifact(folder, artifact, _card(artifact, fitted))


def test_a_cluster_far_from_the_intents_is_refused_though_the_head_is_sure(
    fitted: FittedClassifier,
) -> None:
    artifact = _artifact(fitted)
    assert artifact.out_of_scope is not None
    far = _far(50, seed=3)
    head_only = dataclasses.replace(artifact, out_of_scope=None)
    pred, _, accepted_by_head = head_only.accepted(far)
    assert (pred == LABELS.index("alarm")).all() and accepted_by_head.all()
    assert not artifact.accepted(far)[2].any()
    # In-scope questions are still answered.
    x_test, y_test = _draw(50, 0, seed=4)
    pred, _, accepts = artifact.accepted(x_test)
    assert accepts.mean() >= 0.85 and (pred[accepts] == y_test[accepts]).mean() > 0.97


def test_the_thresholds_keep_the_cap_on_out_of_scope_questions_on_validation(
    fitted: FittedClassifier,
) -> None:
    assert fitted.out_of_scope is not None and fitted.out_of_scope.fit is not None
    fit = fitted.out_of_scope.fit
    assert fit["met"] is True and fit["max_accepted"] == 0.03
    # The cap holds the upper bound, not the share seen: here nothing gets through.
    assert fit["validation"]["out_of_scope_accepted_upper_bound"] <= 0.03
    assert fit["validation"]["out_of_scope_accepted"] == 0.0
    assert fit["validation"]["out_of_scope"] == 80 and fit["validation"]["auroc"] > 0.9
    x_val, y_val = _draw(60, 80, seed=2)
    _, _, accepts = _artifact(fitted).accepted(x_val)
    assert not (accepts & (y_val == OOS)).any()
    assert fitted.threshold.reached


def test_a_cap_too_few_questions_can_show_is_kept_as_nearly_as_it_can_be() -> None:
    from orchestrator.specialists.training.out_of_scope import oos_upper_bound

    assert oos_upper_bound(0.0, 40, 0.9) > 0.03 > oos_upper_bound(0.0, 80, 0.9)
    assert oos_upper_bound(0.05, 40, None) == 0.05
    x, y = _draw(40, 12, seed=1)
    x_val, y_val = _draw(60, 40, seed=2)
    got = fit_classifier(
        x, y, x_val, y_val, len(LABELS), oos_index=OOS, target_precision=0.95, lower_bound=0.9
    )
    assert got.out_of_scope is not None and got.out_of_scope.fit is not None
    fit = got.out_of_scope.fit
    # Out of reach with 40: not met, said so, and the fewest possible are accepted.
    assert fit["met"] is False
    assert fit["validation"]["out_of_scope_accepted"] == 0.0
    assert got.threshold.reached


def test_a_strict_cap_accepts_no_out_of_scope_question_and_answers_less() -> None:
    x, y = _draw(40, 12, seed=1)
    x_val, y_val = _draw(60, 40, seed=2)

    def validation(share: float) -> dict[str, Any]:
        setting = OutOfScopeSetting(max_accepted=share, signals=("oos_probability",))
        got = fit_classifier(
            x, y, x_val, y_val, len(LABELS), oos_index=OOS, target_precision=0.6,
            out_of_scope=setting,
        )  # fmt: skip
        assert got.out_of_scope is not None and got.out_of_scope.fit is not None
        result: dict[str, Any] = got.out_of_scope.fit["validation"]
        return result

    strict, off = validation(0.0), validation(1.0)
    assert strict["out_of_scope_accepted"] == 0.0
    assert off["coverage"] >= strict["coverage"]


def test_data_without_an_out_of_scope_label_gets_no_detector() -> None:
    x, y = _draw(40, 0, seed=1)
    x_val, y_val = _draw(60, 0, seed=2)
    remap = np.searchsorted([0, 1, 3], y).astype(np.int64)
    got = fit_classifier(x, remap, x_val, np.searchsorted([0, 1, 3], y_val), 3)
    assert got.out_of_scope is None


def test_fitting_writing_and_loading_round_trip(fitted: FittedClassifier, tmp_path: Path) -> None:
    artifact = _artifact(fitted)
    folder = _write(fitted, tmp_path / "demo")
    assert (folder / OUT_OF_SCOPE_FILE).is_file()
    signals = " + ".join(OutOfScopeSetting().signals)
    assert f"Out-of-scope detector:** {signals} (standardised)" in (
        folder / "model_card.md"
    ).read_text()
    manifest = json.loads((folder / "artifact.json").read_text())
    assert manifest["out_of_scope"]["signals"] == list(OutOfScopeSetting().signals)
    assert "Infinity" not in (folder / "artifact.json").read_text()
    loaded = load_artifact(folder)
    assert loaded.out_of_scope is not None and artifact.out_of_scope is not None
    x = np.concatenate([_draw(10, 10, seed=5)[0], _far(10, seed=6)])
    p = artifact.probabilities(x)
    np.testing.assert_allclose(
        loaded.out_of_scope.scores(x, p), artifact.out_of_scope.scores(x, p), rtol=1e-5
    )
    assert (loaded.accepted(x)[2] == artifact.accepted(x)[2]).all()
    assert setting_of(loaded.out_of_scope) == setting_of(artifact.out_of_scope)


def test_an_artifact_written_before_detectors_loads_without_one(
    fitted: FittedClassifier, tmp_path: Path
) -> None:
    folder = _write(fitted, tmp_path / "old")
    manifest = json.loads((folder / "artifact.json").read_text())
    del manifest["out_of_scope"]
    (folder / "artifact.json").write_text(json.dumps(manifest))
    (folder / OUT_OF_SCOPE_FILE).unlink()
    old = load_artifact(folder)
    assert old.out_of_scope is None
    # Without the detector the far cluster gets through, as it did before.
    assert old.accepted(_far(5, seed=7))[2].all()
    assert setting_of(old.out_of_scope) == OutOfScopeSetting()


def test_a_distilled_candidate_keeps_its_parents_setting(fitted: FittedClassifier) -> None:
    setting = OutOfScopeSetting(
        max_accepted=0.1, shrinkage=0.7, signals=("mahalanobis", "oos_probability")
    )
    x, y = _draw(5, 4, seed=1)
    x_val, y_val = _draw(60, 40, seed=2)
    first = fit_classifier(
        x, y, x_val, y_val, len(LABELS), oos_index=OOS, target_precision=0.9,
        out_of_scope=setting,
    )  # fmt: skip
    current = _artifact(first)
    current.card = {"version": 1}
    tx, ty = _draw(30, 8, seed=8)
    hx, hy = _draw(10, 4, seed=9)
    outcome = distill_candidate(
        current,
        DistillData(x, y, x_val, y_val, tx, ty, hx, hy),
        rule=PromotionRule(min_held_out=5),
        target_precision=0.9,
    )
    assert outcome.candidate.out_of_scope is not None
    assert setting_of(outcome.candidate.out_of_scope) == setting
    assert outcome.card["out_of_scope"]["max_accepted"] == 0.1
    assert outcome.card["out_of_scope"]["validation"]["out_of_scope"] == 40


class _TableEncoder:
    """Maps each known text to a fixed feature row."""

    model_id = "test-axes"
    dim = DIM

    def __init__(self, rows: dict[str, Floats]) -> None:
        self.rows = rows

    def encode(self, texts: Sequence[str]) -> Floats:
        return np.stack([self.rows[t] for t in texts]).astype(np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]


def test_the_served_intent_specialist_refuses_the_far_cluster(
    fitted: FittedClassifier, tmp_path: Path
) -> None:
    folder = _write(fitted, tmp_path / "demo")
    x_in, y_in = _draw(1, 0, seed=10)
    rows = {"wake me at seven": x_in[0], "what is the capital of peru": _far(1, seed=11)[0]}
    spec = IntentSpecialist(
        {"artifact": str(folder), "micro_batch_wait_ms": 0}, encoder=_TableEncoder(rows)
    )
    known, far = spec.predict_batch([TextInput(text=t) for t in rows])
    assert y_in[0] == LABELS.index("alarm")
    assert known.output.label == "alarm" and known.output.accepted  # type: ignore[attr-defined]
    assert far.output.label == "out_of_scope"  # type: ignore[attr-defined]
    assert not far.output.accepted  # type: ignore[attr-defined]
    # The head alone was sure of 'alarm': refusing leaves it little confidence to pass on.
    assert far.confidence < 0.05


def test_auroc_and_whitening() -> None:
    assert auroc(np.array([0.1, 0.2], np.float32), np.array([0.3, 0.4], np.float32)) == 1.0
    assert auroc(np.array([0.5, 0.5], np.float32), np.array([0.5], np.float32)) == 0.5
    x, y = _draw(200, 0, seed=12)
    transform, means = whitening(x, y, shrinkage=0.0)
    z = (x[y == 0] @ transform) - means[0]
    # Unit noise: whitening leaves distances about as they were.
    assert 0.8 < float((z * z).sum(axis=1).mean()) / DIM < 1.2


def test_the_replay_refuses_a_share_outside_zero_to_one() -> None:
    with pytest.raises(DataError, match=r"--max-oos-accepted 1\.5"):
        ReplayConfig(max_oos_accepted=1.5)
