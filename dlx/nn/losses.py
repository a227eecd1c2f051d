"""Losses on logits, mean-reduced over the batch, computed stably (no exp of a large number).

``forward(logits, y) -> float`` keeps what ``backward() -> dlogits`` needs.
"""

from __future__ import annotations

import numpy as np


def _smoothing(eps: float) -> float:
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {eps}")
    return eps


class BCEWithLogits:
    """Binary cross-entropy of sigmoid(z) against y in {0, 1}.

    loss = mean(max(z, 0) - z*y + log(1 + exp(-|z|)));  dloss/dz = (sigmoid(z) - y) / N.

    With label smoothing eps the target is t = (1 - eps) y + eps / 2: the sigmoid is a softmax
    over the two logits (0, z), so this is SoftmaxCrossEntropy's (and torch's
    CrossEntropyLoss(label_smoothing=eps)'s) smoothing over two classes.

    Args:
        label_smoothing: eps in [0, 1) (default 0).
    """

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = _smoothing(label_smoothing)

    def forward(self, logits: np.ndarray, y: np.ndarray) -> float:
        z = logits.reshape(len(logits))  # (N, 1) -> (N,)
        t = y.astype(z.dtype, copy=False)
        if self.label_smoothing:
            t = (1.0 - self.label_smoothing) * t + self.label_smoothing / 2
        e = np.exp(-np.abs(z))  # in (0, 1]: never overflows
        self._cache = (z, t, e, logits.shape)
        return float(np.mean(np.maximum(z, 0) - z * t + np.log1p(e)))

    def backward(self) -> np.ndarray:
        z, t, e, shape = self._cache
        # sigmoid(z) without overflow: 1/(1+e) for z >= 0, e/(1+e) for z < 0
        p = np.where(z >= 0, 1.0, e) / (1.0 + e)
        return ((p - t) / len(z)).astype(z.dtype, copy=False).reshape(shape)


class SoftmaxCrossEntropy:
    """Cross-entropy of softmax(z) against integer labels y, optionally label-smoothed.

    With smoothing eps (torch's ``label_smoothing``) the target distribution over C classes is
    q = (1 - eps) onehot(y) + eps / C, and

    loss = mean(-sum_c q_c log softmax(z)_c)
         = mean((1 - eps) (logsumexp(z) - z[y]) + eps/C sum_c (logsumexp(z) - z_c))
    dloss/dz = (softmax(z) - q) / N

    eps = 0 is plain cross-entropy; eps > 0 stops the loss rewarding ever larger logit gaps
    (its optimum gap is finite: log((1 - eps + eps/C) / (eps/C))).

    Args:
        label_smoothing: eps in [0, 1) (default 0).
    """

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = _smoothing(label_smoothing)

    def forward(self, logits: np.ndarray, y: np.ndarray) -> float:
        n = len(logits)
        shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), max 0: exp <= 1
        logsumexp = np.log(np.exp(shifted).sum(axis=1))  # (N,)
        self._cache = (shifted, logsumexp, y)
        nll = logsumexp - shifted[np.arange(n), y]  # (N,) -log p_y
        eps = self.label_smoothing
        if eps:
            uniform = logsumexp - shifted.mean(axis=1)  # (N,) -mean_c log p_c
            nll = (1.0 - eps) * nll + eps * uniform
        return float(np.mean(nll))

    def backward(self) -> np.ndarray:
        shifted, logsumexp, y = self._cache
        n, c = shifted.shape
        eps = self.label_smoothing
        probs = np.exp(shifted - logsumexp[:, None])
        probs[np.arange(n), y] -= 1.0 - eps
        if eps:
            probs -= eps / c
        probs /= n
        return probs


class Entropy:
    """The entropy of the prediction softmax(z), in nats, averaged over the batch (the labels
    are not used): H = -sum_c p_c log p_c = logsumexp(z) - sum_c p_c z_c, and

    dH/dz_j = -p_j (log p_j + H)   (per example; then the mean's 1/N)

    High for a hesitant prediction (log C at the uniform one), 0 for a certain one: what
    label smoothing and the confidence penalty (Pereyra et al. 2017, loss = CE - beta H) keep
    from collapsing.
    """

    def forward(self, logits: np.ndarray, y: np.ndarray | None = None) -> float:
        shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), max 0: exp <= 1
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, C)
        p = np.exp(logp)
        h = -(p * logp).sum(axis=1)  # (N,)
        self._cache = (p, logp, h)
        return float(np.mean(h))

    def backward(self) -> np.ndarray:
        p, logp, h = self._cache
        return -p * (logp + h[:, None]) / len(p)


class MSE:
    """Mean squared error: loss = mean((z - y)^2);  dloss/dz = 2 (z - y) / size."""

    def forward(self, pred: np.ndarray, y: np.ndarray) -> float:
        self._diff = pred - y.reshape(pred.shape).astype(pred.dtype, copy=False)
        return float(np.mean(self._diff**2))

    def backward(self) -> np.ndarray:
        return 2.0 * self._diff / self._diff.size


def predictions(logits: np.ndarray) -> np.ndarray:
    """Class predictions from logits: sign for one output column, argmax for several."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).astype(np.int64)
    return logits.argmax(axis=1)


IGNORE = -100  # a target position that does not count (e.g. the prompt of a sequence task)


class SequenceCrossEntropy:
    """Token-level softmax cross-entropy for logits (B, T, V) and targets (B, T), averaged over
    the positions whose target is not IGNORE."""

    def forward(self, logits: np.ndarray, y: np.ndarray) -> float:
        V = logits.shape[-1]
        flat, t = logits.reshape(-1, V), y.reshape(-1)
        keep = t != IGNORE
        shifted = flat - flat.max(axis=1, keepdims=True)
        logsumexp = np.log(np.exp(shifted).sum(axis=1))
        rows = np.flatnonzero(keep)
        self._cache = (shifted, logsumexp, t, rows, logits.shape)
        return float(np.mean(logsumexp[rows] - shifted[rows, t[rows]]))

    def backward(self) -> np.ndarray:
        shifted, logsumexp, t, rows, shape = self._cache
        grad = np.zeros_like(shifted)
        probs = np.exp(shifted[rows] - logsumexp[rows, None])
        probs[np.arange(len(rows)), t[rows]] -= 1
        grad[rows] = probs / len(rows)
        return grad.reshape(shape)


def sequence_accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Fraction of sequences whose every counted target token is predicted exactly."""
    keep = y != IGNORE
    right = (logits.argmax(axis=-1) == y) | ~keep
    return float(right.all(axis=1).mean())
