"""The training bench's numpy fitters, checked against scikit-learn and SciPy.

Heads, calibrators and thresholds are fitted in numpy so that distillation and online
learning run on the default install, which carries neither library. Where a library computes
the same thing, the two must agree; where it fits the same model (a linear softmax head), ours
must be as good on held-out data.
"""

from __future__ import annotations

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="needs the train extra (scikit-learn)")
scipy_optimize = pytest.importorskip("scipy.optimize", reason="scipy arrives with scikit-learn")

from scipy.stats import binomtest  # noqa: E402
from sklearn.isotonic import IsotonicRegression  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, balanced_accuracy_score  # noqa: E402

from orchestrator.specialists.calibration import Calibrator  # noqa: E402
from orchestrator.specialists.heads import HeadConfig, softmax  # noqa: E402
from orchestrator.specialists.training.calibration import (  # noqa: E402
    _balanced_nll,
    _nll,
    fit_calibrator,
    fit_class_bias,
    wilson_lower_bound,
)
from orchestrator.specialists.training.heads import accuracy, fit_head, macro_recall  # noqa: E402


def _logits(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident logits of a classifier that is right about 70% of the time."""
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k)).astype(np.float32)
    right = rng.random(n) < 0.7
    logits[np.arange(n), np.where(right, y, rng.integers(0, k, n))] += 3.0
    return (logits * 2.5).astype(np.float32), y.astype(np.int64)


@pytest.mark.parametrize("seed", range(5))
def test_accuracy_and_macro_recall_are_scikit_learns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, 300)
    pred = np.where(rng.random(300) < 0.6, y, rng.integers(0, 7, 300))
    assert accuracy(y, pred) == pytest.approx(accuracy_score(y, pred))
    assert macro_recall(y, pred) == pytest.approx(balanced_accuracy_score(y, pred))


@pytest.mark.parametrize("seed", range(3))
def test_the_isotonic_map_is_scikit_learns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits, y = _logits(rng, 2000, 5)
    calibrator = fit_calibrator(logits, y, "isotonic")
    tempered = Calibrator("temperature", calibrator.temperature).probabilities(logits)
    top = tempered.max(axis=1).astype(np.float64)
    correct = (tempered.argmax(axis=1) == y).astype(np.float64)
    reference = IsotonicRegression(out_of_bounds="clip").fit(top, correct).predict(top)
    calibrated = calibrator.probabilities(logits)
    # The predicted label stays on top (near chance, just above the runner-up) ...
    assert (calibrated.argmax(axis=1) == tempered.argmax(axis=1)).all()
    ours = calibrated.max(axis=1)
    second = np.sort(tempered, axis=1)[:, -2]
    floor = second / (1.0 - top + second) * (1 + 1e-5)
    # ... and elsewhere its probability is scikit-learn's isotonic value (clipped to at least
    # 1e-4; float32 probabilities round at 1e-6).
    free = np.clip(reference, 1e-4, 1.0) > floor + 1e-6
    assert free.mean() > 0.9
    assert np.allclose(ours[free], np.clip(reference, 1e-4, 1.0)[free], atol=2e-6)
    assert np.allclose(ours[~free], floor[~free], atol=2e-6)
    assert np.allclose(calibrated.sum(axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_the_temperature_minimises_the_nll_as_scipy_finds_it(seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits, y = _logits(rng, 1500, 6)
    ours = fit_calibrator(logits, y, "temperature").temperature
    found = scipy_optimize.minimize_scalar(
        lambda log_t: _nll(logits, y, float(np.exp(log_t))),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
        options={"xatol": 1e-6},
    )
    # The grid's last step is 1% of the temperature; the loss is flat at its minimum.
    assert ours == pytest.approx(float(np.exp(found.x)), rel=0.01)
    assert _nll(logits, y, ours) <= found.fun + 1e-4


def test_class_offsets_reach_the_minimum_that_lbfgs_finds() -> None:
    rng = np.random.default_rng(0)
    logits, y = _logits(rng, 1200, 4)
    logits[:, 0] += 1.5  # a class the head favours, which the offsets must pull back
    ours = np.asarray(fit_class_bias(logits, y))
    found = scipy_optimize.minimize(
        lambda b: _balanced_nll(logits, y, b), np.zeros(4), method="L-BFGS-B"
    )
    assert _balanced_nll(logits, y, ours) <= found.fun + 1e-4


@pytest.mark.parametrize(("k", "n"), [(0, 10), (9, 10), (95, 100), (480, 500), (300, 300)])
def test_the_wilson_bound_is_scipys(k: int, n: int) -> None:
    ours = wilson_lower_bound(np.array([k / n]), np.array([float(n)]), 0.95)[0]
    # One-sided at 95% is the lower end of the two-sided 90% interval.
    reference = binomtest(k, n).proportion_ci(confidence_level=0.90, method="wilson").low
    assert ours == pytest.approx(reference, abs=1e-9)


def test_a_linear_head_is_as_good_as_logistic_regression_on_held_out_data() -> None:
    rng = np.random.default_rng(0)
    k, d = 8, 32
    centres = rng.normal(0, 1.0, (k, d))
    y = rng.integers(0, k, 2400)
    x = (centres[y] + rng.normal(0, 1.6, (2400, d))).astype(np.float32)
    x_train, y_train, x_test, y_test = x[:1600], y[:1600], x[1600:], y[1600:]
    head, _, _ = fit_head(
        x_train, y_train, k, HeadConfig(epochs=60), x_val=x_train[:400], y_val=y_train[:400]
    )
    ours = accuracy(y_test, head.logits(x_test).argmax(axis=1))
    reference = LogisticRegression(max_iter=2000).fit(x_train, y_train)
    theirs = accuracy_score(y_test, reference.predict(x_test))
    assert ours >= theirs - 0.02, (ours, theirs)
    # And its probabilities are a softmax of its logits, as scikit-learn's are of its scores.
    p = softmax(head.logits(x_test[:5]))
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
