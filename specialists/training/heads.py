"""Fitting classification heads over frozen sentence embeddings, in numpy.

A head is trained with Adam on mini-batches, optional class-balanced weights (for macro
metrics on skewed data), dropout and L2, with early stopping on a validation score. numpy
keeps the default install free of torch and scikit-learn; at these sizes (10^4 examples,
384 features) an epoch takes well under a second on two cores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from orchestrator.specialists.heads import Floats, Head, HeadConfig, Ints, softmax

__all__ = ["accuracy", "fit_head", "macro_recall", "with_seed"]

Score = Callable[[Ints, Ints], float]


def accuracy(y: Ints, pred: Ints) -> float:
    return float((y == pred).mean()) if len(y) else 0.0


def macro_recall(y: Ints, pred: Ints) -> float:
    recalls = [float((pred[y == c] == c).mean()) for c in np.unique(y)]
    return float(np.mean(recalls)) if recalls else 0.0


def fit_head(
    x: Floats,
    y: Ints,
    classes: int,
    config: HeadConfig,
    *,
    x_val: Floats | None = None,
    y_val: Ints | None = None,
    score: Score = accuracy,
    epochs: int | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[Head, int, float]:
    """Train a head; returns it, the best epoch (1-based) and its validation score.

    With validation data the parameters of the best epoch are kept (early stopping). Without
    it the head trains for ``epochs`` (default ``config.epochs``) and the score is NaN.
    """
    rng = np.random.default_rng(config.seed)
    n, d = x.shape
    mean = x.mean(axis=0).astype(np.float32)
    scale = (x.std(axis=0) + 1e-6).astype(np.float32)
    xs = ((x - mean) / scale).astype(np.float32)
    params: dict[str, Floats] = {}
    if config.hidden:
        params["w_hidden"] = (rng.standard_normal((d, config.hidden)) * np.sqrt(2.0 / d)).astype(
            np.float32
        )
        params["b_hidden"] = np.zeros(config.hidden, dtype=np.float32)
        fan_in = config.hidden
    else:
        fan_in = d
    params["w_out"] = (rng.standard_normal((fan_in, classes)) * 0.01).astype(np.float32)
    params["b_out"] = np.zeros(classes, dtype=np.float32)
    counts = np.bincount(y, minlength=classes).astype(np.float32)
    weights = (
        (n / (classes * np.maximum(counts, 1.0)))[y].astype(np.float32)
        if config.balanced
        else np.ones(n, dtype=np.float32)
    )
    onehot = np.eye(classes, dtype=np.float32)
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    beta1, beta2, step = 0.9, 0.999, 0
    fixed = {"mean": mean, "scale": scale}
    best: tuple[float, int, dict[str, Floats]] = (-np.inf, 0, {})
    total = epochs or config.epochs
    for epoch in range(1, total + 1):
        order = rng.permutation(n)
        for start in range(0, n, config.batch_size):
            batch = order[start : start + config.batch_size]
            xb, wb = xs[batch], weights[batch]
            wb = wb / wb.sum()
            grads: dict[str, Floats] = {}
            if config.hidden:
                pre = xb @ params["w_hidden"] + params["b_hidden"]
                h = np.maximum(pre, 0.0)
                if config.dropout:
                    keep = (rng.random(h.shape) >= config.dropout) / (1.0 - config.dropout)
                    h = h * keep.astype(np.float32)
                else:
                    keep = None
                g = (softmax(h @ params["w_out"] + params["b_out"]) - onehot[y[batch]]) * wb[
                    :, None
                ]
                grads["w_out"] = h.T @ g + config.l2 * params["w_out"]
                grads["b_out"] = g.sum(axis=0)
                dh = (g @ params["w_out"].T) * (pre > 0)
                if keep is not None:
                    dh = dh * keep
                grads["w_hidden"] = xb.T @ dh + config.l2 * params["w_hidden"]
                grads["b_hidden"] = dh.sum(axis=0)
            else:
                g = (softmax(xb @ params["w_out"] + params["b_out"]) - onehot[y[batch]]) * wb[
                    :, None
                ]
                grads["w_out"] = xb.T @ g + config.l2 * params["w_out"]
                grads["b_out"] = g.sum(axis=0)
            step += 1
            for key, grad in grads.items():
                m, v = moments[key]
                m *= beta1
                m += (1 - beta1) * grad
                v *= beta2
                v += (1 - beta2) * grad * grad
                m_hat = m / (1 - beta1**step)
                v_hat = v / (1 - beta2**step)
                params[key] -= (config.learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(
                    np.float32
                )
        if x_val is None or y_val is None:
            continue
        head = Head({**params, **fixed}, config)
        value = score(y_val, head.logits(x_val).argmax(axis=1))
        if on_epoch:
            on_epoch(epoch, value)
        if value > best[0]:
            best = (value, epoch, {k: v.copy() for k, v in params.items()})
        elif epoch - best[1] >= config.patience:
            break
    if x_val is None or y_val is None:
        return Head({**params, **fixed}, config), total, float("nan")
    return Head({**best[2], **fixed}, config), best[1], best[0]


def with_seed(config: HeadConfig, seed: int) -> HeadConfig:
    return replace(config, seed=seed)
