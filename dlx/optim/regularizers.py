"""Penalties on the weights (``Parameter.decay``: never biases) added to the data loss.

``penalty(params)`` is the value added to the loss (logged as ``batch/penalty``);
``add_grad(params)`` adds its (sub)gradient to ``p.grad`` after backward;
``after_step(opt)`` applies the proximal step of the L1 part after the optimizer's update.

Conventions. The objective is  mean data loss over the training set + penalty(weights), with

    penalty = lam * (l1_ratio * sum|w| + (1 - l1_ratio) / 2 * sum w^2).

* The course writes J = (1/m) sum_i L_i + (lambda / 2m) sum ||W||^2 (L2) or
  + (lambda / m) sum |W| (L1), m the number of training examples. Our data loss is already the
  mean, so ``regularizer=l2 regularizer.lam=lambda/m`` and ``regularizer=l1
  regularizer.lam=lambda/m`` are those two costs (the course's 1/2 is in our L2 penalty).
* L2 here is not torch's ``weight_decay``: both add lam * w to a weight's gradient (for SGD
  the same update), but torch's weight_decay acts on every parameter it is given, biases and
  norm gains included, and ours never on biases. AdamW's decay is yet another thing: it shrinks
  p outside the Adam step (see :class:`dlx.optim.optimizers.AdamW`), which no penalty in the
  loss reproduces.
* ``method='proximal'`` keeps the L1 part out of the gradient (so out of momentum and of the
  second-moment estimates) and, after the optimizer's update, soft-thresholds each weight by
  lam * l1_ratio * D, where D is the optimizer's diagonal step size of that update
  (:meth:`dlx.optim.optimizers.Optimizer.step_scale`): lr for SGD, lr / (1 - momentum) for heavy
  ball and Nesterov, lr / (sqrt(v_hat) + eps) per coordinate for Adam, and so on. That is the
  proximal step in the metric the optimizer preconditions with, and its fixed points satisfy
  0 in g + lam * l1_ratio * d|w| + lam * (1 - l1_ratio) * w: the elastic net's optimality
  condition, at the mix it says. Thresholding by lr alone (plain SGD's prox) after a momentum
  step solves the lasso at lam * (1 - momentum), and after an Adam step gives no exact zeros.
"""

from __future__ import annotations

import numpy as np

from dlx.nn.core import Parameter
from dlx.optim.optimizers import Optimizer

METHODS = ("subgradient", "proximal")


def _weights(params: list[Parameter]):
    return (p for p in params if p.decay)


def _sum(params, fn) -> float:
    return float(sum(fn(p.data.astype(np.float64, copy=False)) for p in _weights(params)))


def soft_threshold(w: np.ndarray, threshold: float) -> None:
    """In place: w <- sign(w) * max(|w| - threshold, 0), the proximal operator of threshold*|w|
    (``threshold`` a number or an array shaped like w: one per coordinate)."""
    np.copyto(w, np.sign(w) * np.maximum(np.abs(w) - threshold, 0))


class NoPenalty:
    """No regularization."""

    active = False
    proximal = False

    def penalty(self, params: list[Parameter]) -> float:
        return 0.0

    def add_grad(self, params: list[Parameter]) -> None:
        pass

    def after_step(self, opt: Optimizer) -> None:
        pass


class ElasticNet(NoPenalty):
    r"""Elastic net (Zou & Hastie 2005) on the weights:

        penalty = lam * (l1_ratio * sum|w| + (1 - l1_ratio) / 2 * sum w^2)
        grad   += lam * (l1_ratio * sign(w) + (1 - l1_ratio) * w)

    ``method='proximal'`` takes the L1 part out of the gradient and applies it after each
    update as the soft threshold w <- sign(w) max(|w| - D * lam * l1_ratio, 0), D the
    optimizer's diagonal step size (lr for plain SGD), which puts weights exactly at zero and
    has the elastic net's minimizers as fixed points under every optimizer (module docstring);
    ``method='subgradient'`` adds lam * l1_ratio * sign(w) to the gradient, which only makes
    weights oscillate around zero. l1_ratio=1 is the lasso (L1), l1_ratio=0 ridge (L2).

    Args:
        lam: penalty strength (>= 0); the course's lambda / m, see the module docstring.
        l1_ratio: the L1 share of the penalty, in [0, 1].
        method: ``subgradient`` or ``proximal`` (only the L1 part differs).
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

    @property
    def proximal(self) -> bool:
        """Whether the L1 part is applied by :meth:`after_step` (not in the gradient)."""
        return self.method == "proximal" and self.l1_ratio > 0 and self.lam > 0

    def after_step(self, opt: Optimizer) -> None:
        """Soft-threshold each weight of ``opt.params`` by lam * l1_ratio * D, D the diagonal
        step size of the update just made (``opt.step_scale``)."""
        if self.proximal:
            for i, p in enumerate(opt.params):
                if p.decay:
                    soft_threshold(p.data, self.lam * self.l1_ratio * opt.step_scale(i))


def l1(lam: float = 1e-3, method: str = "subgradient") -> ElasticNet:
    """L1 (lasso): penalty = lam * sum|w|."""
    return ElasticNet(lam, 1.0, method)


def l2(lam: float = 1e-3) -> ElasticNet:
    """L2 (ridge): penalty = lam / 2 * sum w^2, grad += lam * w (weights only, unlike torch's
    weight_decay, which also decays biases)."""
    return ElasticNet(lam, 0.0)


REGULARIZERS = {"none": NoPenalty, "l1": l1, "l2": l2, "elastic_net": ElasticNet}
