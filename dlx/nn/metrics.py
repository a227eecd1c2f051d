"""What a split is scored by, per task, accumulated over the chunks an evaluation passes through.

A data set's task (:attr:`dlx.data.spec.DataSpec.task`) chooses the names (:func:`names`) and the
accumulator (:func:`scorer`): accuracy for classification and sequences; RMSE, MAE and R^2 for
regression. Regression targets are trained standardized, t = (y - mean) / scale per target, so
the errors are multiplied back by ``scale``: RMSE and MAE are reported in the targets' own
units (dollars for house prices), while R^2 is the same in either.
"""

from __future__ import annotations

import math

import numpy as np

NAMES = {"classification": ("acc",), "sequence": ("acc",), "regression": ("rmse", "mae", "r2"),
         "language_model": ("acc", "bpc", "ppl")}
# which way is better: what early stopping, `monitor` and records' best values follow
LOWER_IS_BETTER = {"loss": True, "acc": False, "rmse": True, "mae": True, "r2": False,
                   "bpc": True, "ppl": True}


def names(task: str) -> tuple[str, ...]:
    """The metrics an evaluation returns after the loss, in order, e.g. ('rmse', 'mae', 'r2')."""
    return NAMES[task]


class Accuracy:
    """Fraction right over all chunks (:func:`dlx.nn.accuracy`: classes, or whole sequences)."""

    def __init__(self):
        self.correct, self.n = 0, 0

    def add(self, logits: np.ndarray, y: np.ndarray) -> None:
        from dlx.nn import accuracy

        # a chunk's fraction times its size: the sum the classification runs have always made
        self.correct += accuracy(logits, y) * len(y)
        self.n += len(y)

    def result(self) -> tuple[float, ...]:
        return (self.correct / self.n,)


class RegressionScores:
    """RMSE, MAE (in original units) and R^2 of predictions of standardized targets.

    With residuals r_ij = pred_ij - t_ij in standardized units and s_j the scale of target j
    (N examples, K targets)::

        RMSE = sqrt( sum_ij (s_j r_ij)^2 / (N K) )      MAE = sum_ij |s_j r_ij| / (N K)
        R^2  = mean_j [ 1 - sum_i r_ij^2 / sum_i (t_ij - mean_i t_ij)^2 ]

    R^2 is per target, then averaged (scikit-learn's ``uniform_average``); its denominator is
    the split's own spread around its own mean, so predicting the split's mean scores 0 and a
    perfect fit 1. Sums are float64; sum t and sum t^2 give the spread in one pass (t is
    standardized, so the subtraction loses nothing).

    Args:
        scale: (K,) the targets' standard deviations on the training split (1 = no scaling).
    """

    def __init__(self, scale):
        self.scale = np.asarray(scale, dtype=np.float64).reshape(-1)  # (K,)
        k = len(self.scale)
        self.sq, self.abs = np.zeros(k), np.zeros(k)  # sum_i r^2, sum_i |r| per target
        self.t, self.t2, self.n = np.zeros(k), np.zeros(k), 0

    def add(self, pred: np.ndarray, y: np.ndarray) -> None:
        k = len(self.scale)
        r = pred.reshape(len(pred), k).astype(np.float64) - y.reshape(len(y), k)  # (B, K)
        t = y.reshape(len(y), k).astype(np.float64)
        self.sq += np.square(r).sum(axis=0)
        self.abs += np.abs(r).sum(axis=0)
        self.t += t.sum(axis=0)
        self.t2 += np.square(t).sum(axis=0)
        self.n += len(r)

    def result(self) -> tuple[float, float, float]:
        n, k = self.n, len(self.scale)
        rmse = math.sqrt(float(np.sum(self.scale**2 * self.sq)) / (n * k))
        mae = float(np.sum(self.scale * self.abs)) / (n * k)
        spread = self.t2 - self.t**2 / n  # sum_i (t_i - mean t)^2 per target
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = float(np.mean(1.0 - self.sq / spread))  # -inf/nan for a constant split
        return rmse, mae, r2


class TokenScores:
    """A language model's scores over all scored positions (targets not IGNORE) of all chunks:
    ``acc`` the fraction of next tokens predicted right (argmax), ``bpc`` the mean negative
    log-likelihood in bits (bits per character for a character model: nats / ln 2), ``ppl``
    the perplexity exp(mean NLL in nats). Sums are float64, so the result does not depend on
    the chunking."""

    def __init__(self):
        self.right, self.nll, self.n = 0, 0.0, 0

    def add(self, logits: np.ndarray, y: np.ndarray) -> None:
        from dlx.nn.losses import IGNORE

        z = np.asarray(logits, dtype=np.float64).reshape(-1, logits.shape[-1])  # (B*T, V)
        t = np.asarray(y).reshape(-1)
        rows = np.flatnonzero(t != IGNORE)
        z, t = z[rows], t[rows]
        top = z.max(axis=1, keepdims=True)
        logsumexp = np.log(np.exp(z - top).sum(axis=1)) + top[:, 0]
        self.nll += float((logsumexp - z[np.arange(len(t)), t]).sum())
        self.right += int((z.argmax(axis=1) == t).sum())
        self.n += len(t)

    def result(self) -> tuple[float, float, float]:
        mean = self.nll / self.n
        return self.right / self.n, mean / math.log(2), math.exp(mean)


def scorer(task: str, target_scale=None):
    """A fresh accumulator for ``task``: ``add(outputs, y)`` per chunk, then ``result()`` (a
    tuple in the order of :func:`names`)."""
    if task == "regression":
        return RegressionScores(1.0 if target_scale is None else target_scale)
    return TokenScores() if task == "language_model" else Accuracy()
