"""Optimizers with torch.optim's update rules and defaults (torch 2.x, single-tensor path).

Every optimizer takes a list of :class:`~dlx.nn.Parameter`, keeps its state per parameter
(created lazily at the first step, as torch does), reads ``p.grad`` and updates ``p.data`` in
place. ``lr`` is a plain attribute so a schedule can set it before each step.
"""

from __future__ import annotations

import math

import numpy as np

from dlx.nn.core import Parameter


class Optimizer:
    def __init__(self, params, lr: float):
        if not lr > 0 or not math.isfinite(lr):
            raise ValueError(f"lr must be a finite number > 0, got {lr}")
        self.params: list[Parameter] = list(params)
        self.lr = lr
        self.state: list[dict[str, np.ndarray]] = [{} for _ in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad.fill(0)

    def step(self) -> None:
        self.steps += 1
        for p, state in zip(self.params, self.state):
            self._update(p, state)

    def _update(self, p: Parameter, state: dict) -> None:
        raise NotImplementedError

    def state_bytes(self) -> int:
        """Bytes of optimizer state (buffers beyond the parameters and their grads)."""
        return sum(v.nbytes for s in self.state for v in s.values() if isinstance(v, np.ndarray))


def _check_weight_decay(weight_decay: float) -> None:
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum, as torch.optim.SGD.

    For each parameter p with gradient g, at step t::

        g <- g + weight_decay * p                       (L2 folded into the gradient)
        if momentum != 0:
            b <- g                                      at t = 1 (no dampening on the first step)
            b <- momentum * b + (1 - dampening) * g     for t > 1
            g <- g + momentum * b   if nesterov   else   b
        p <- p - lr * g

    Defaults: lr=1e-3, momentum=0, dampening=0, nesterov=False, weight_decay=0.
    State: the momentum buffer ``b`` (one parameter's worth) when momentum != 0.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not 0.0 <= dampening <= 1.0:
            raise ValueError(f"dampening must be in [0, 1], got {dampening}")
        if nesterov and (momentum == 0 or dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")
        _check_weight_decay(weight_decay)
        self.momentum, self.dampening = momentum, dampening
        self.nesterov, self.weight_decay = nesterov, weight_decay

    def _update(self, p: Parameter, state: dict) -> None:
        g = p.grad
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += (1.0 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= self.lr * g


def _check_betas(betas: tuple[float, float]) -> None:
    for i, b in enumerate(betas):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"betas[{i}] must be in [0, 1), got {b}")


class Adam(Optimizer):
    r"""Adam (Kingma & Ba 2015), optionally AMSGrad (Reddi et al. 2018), as torch.optim.Adam.

    For each parameter p with gradient g, at step t (from 1)::

        g <- g + weight_decay * p                       (L2, coupled: see AdamW for decoupled)
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        v_max <- max(v_max, v)   and use v_max for v    if amsgrad
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    Defaults: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False.
    State: m and v (two parameters' worth; three with amsgrad).
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, lr)
        _check_betas(betas)
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        _check_weight_decay(weight_decay)
        self.betas, self.eps = tuple(betas), eps
        self.weight_decay, self.amsgrad = weight_decay, amsgrad

    def _update(self, p: Parameter, state: dict) -> None:
        b1, b2 = self.betas
        g = p.grad
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        if not state:
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1.0 - b1) * (g - m)  # torch's lerp: m + (1 - b1)(g - m)
        v *= b2
        v += (1.0 - b2) * g * g
        if self.amsgrad:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        t = self.steps
        step_size = self.lr / (1.0 - b1**t)
        denom = np.sqrt(v) / math.sqrt(1.0 - b2**t) + self.eps
        p.data -= step_size * m / denom


# Config option name -> class. `momentum` is SGD with its own defaults (conf/optimizer/momentum.yaml).
OPTIMIZERS = {"sgd": SGD, "momentum": SGD, "adam": Adam}
