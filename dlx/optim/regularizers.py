"""Penalties on the weights (``Parameter.decay``: never biases) added to the data loss.

``penalty(params)`` is the value added to the loss (logged as ``batch/penalty``);
``add_grad(params)`` adds its (sub)gradient to ``p.grad`` after backward; ``after_step(params,
lr)`` applies a proximal step after the optimizer's update (L1's soft threshold).
"""

from __future__ import annotations

import numpy as np

from dlx.nn.core import Parameter

METHODS = ("subgradient", "proximal")


def _weights(params: list[Parameter]):
    return (p for p in params if p.decay)


def _sum(params, fn) -> float:
    return float(sum(fn(p.data.astype(np.float64, copy=False)) for p in _weights(params)))


def soft_threshold(w: np.ndarray, threshold: float) -> None:
    """In place: w <- sign(w) * max(|w| - threshold, 0), the proximal operator of threshold*|w|."""
    np.copyto(w, np.sign(w) * np.maximum(np.abs(w) - threshold, 0))


class NoPenalty:
    """No regularization."""

    active = False

    def penalty(self, params: list[Parameter]) -> float:
        return 0.0

    def add_grad(self, params: list[Parameter]) -> None:
        pass

    def after_step(self, params: list[Parameter], lr: float) -> None:
        pass


class ElasticNet(NoPenalty):
    r"""Elastic net (Zou & Hastie 2005) on the weights:

        penalty = lam * (l1_ratio * sum|w| + (1 - l1_ratio) / 2 * sum w^2)
        grad   += lam * (l1_ratio * sign(w) + (1 - l1_ratio) * w)

    ``method='proximal'`` takes the L1 part out of the gradient and applies it after each
    update as the soft threshold w <- sign(w) max(|w| - lr * lam * l1_ratio, 0), which puts
    weights exactly at zero (the subgradient only makes them oscillate around it).
    l1_ratio=1 is the lasso (L1), l1_ratio=0 ridge (L2, the same as SGD's weight_decay=lam).
    """

    active = True

    def __init__(self, lam: float = 1e-3, l1_ratio: float = 0.5, method: str = "subgradient"):
        if not lam >= 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        if not 0.0 <= l1_ratio <= 1.0:
            raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        self.lam, self.l1_ratio, self.method = lam, l1_ratio, method

    def penalty(self, params: list[Parameter]) -> float:
        l1 = _sum(params, lambda w: np.abs(w).sum()) if self.l1_ratio else 0.0
        l2 = _sum(params, lambda w: np.dot(w.ravel(), w.ravel())) if self.l1_ratio < 1 else 0.0
        return self.lam * (self.l1_ratio * l1 + (1.0 - self.l1_ratio) / 2.0 * l2)

    def add_grad(self, params: list[Parameter]) -> None:
        l1 = self.lam * self.l1_ratio if self.method == "subgradient" else 0.0
        l2 = self.lam * (1.0 - self.l1_ratio)
        for p in _weights(params):
            if l2:
                p.grad += l2 * p.data
            if l1:
                p.grad += l1 * np.sign(p.data)

    def after_step(self, params: list[Parameter], lr: float) -> None:
        if self.method == "proximal" and self.l1_ratio:
            for p in _weights(params):
                soft_threshold(p.data, lr * self.lam * self.l1_ratio)


def l1(lam: float = 1e-3, method: str = "subgradient") -> ElasticNet:
    """L1 (lasso): penalty = lam * sum|w|."""
    return ElasticNet(lam, 1.0, method)


def l2(lam: float = 1e-3) -> ElasticNet:
    """L2 (ridge): penalty = lam / 2 * sum w^2, grad += lam * w."""
    return ElasticNet(lam, 0.0)


REGULARIZERS = {"none": NoPenalty, "l1": l1, "l2": l2, "elastic_net": ElasticNet}
