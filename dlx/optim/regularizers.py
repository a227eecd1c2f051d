"""Penalties on the weights (``Parameter.decay``; never biases) added to the data loss.

``penalty(params) -> float`` is the value added to the loss (logged as ``batch/penalty``);
``add_grad(params)`` adds its gradient to ``p.grad`` after backward.
"""

from __future__ import annotations

from dlx.nn.core import Parameter


class NoPenalty:
    """No regularization."""

    active = False

    def penalty(self, params: list[Parameter]) -> float:
        return 0.0

    def add_grad(self, params: list[Parameter]) -> None:
        pass


class L2:
    """penalty = (lam / 2) * sum(w^2);  grad += lam * w.  (SGD's weight_decay=lam is the same.)"""

    active = True

    def __init__(self, lam: float = 1e-3):
        if not lam >= 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.lam = lam

    def penalty(self, params: list[Parameter]) -> float:
        return 0.5 * self.lam * sum(float((p.data.astype(float) ** 2).sum()) for p in params if p.decay)

    def add_grad(self, params: list[Parameter]) -> None:
        for p in params:
            if p.decay:
                p.grad += self.lam * p.data


REGULARIZERS = {"none": NoPenalty, "l2": L2}
