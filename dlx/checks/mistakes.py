"""Known mistakes in optimizers, each a switch on the reference update rule (the catalogue
`dlx check` matches a failing optimizer against).

Every entry is an optimizer written to the learner's contract (``update(self, p, g, state)``)
that makes exactly one mistake, or takes one accepted variant, on top of torch.optim's rule.
When the learner's steps equal an entry's on the fixed inputs, the entry names what they did.
Severity ``bug``: the maths differs from the algorithm; ``variant``: still the algorithm, a
choice torch did not make (it passes, with a note). tests/test_check.py applies every entry to
the reference and checks that it is diagnosed as itself, and that none fires on the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from dlx.optim import Optimizer


@dataclass(frozen=True)
class Mistake:
    key: str
    concept: str          # the reference it is a mistake of: sgd, momentum, nesterov, adam, ...
    severity: str         # "bug" or "variant"
    title: str            # what the learner probably did
    revisit: str          # the step of the derivation to look at again
    make: Callable        # (params, **reference options) -> the mistaken optimizer


# --- Adam ---------------------------------------------------------------------------------------

class _Adam(Optimizer):
    """Adam with switches: no bias correction, the step count off by one, eps under the root."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 correct=True, t_offset=0, eps_inside=False, swapped=False, **_):
        super().__init__(params, lr, weight_decay)
        (self.b1, self.b2), self.eps = betas, eps
        self.correct, self.t_offset, self.eps_inside = correct, t_offset, eps_inside
        self.swapped = swapped

    def update(self, p, g, state):
        if not state:
            state["m"], state["v"] = np.zeros_like(p), np.zeros_like(p)
        m, v, t = state["m"], state["v"], self.t + self.t_offset
        keep1, keep2 = (1 - self.b1, 1 - self.b2) if self.swapped else (self.b1, self.b2)
        m[...] = keep1 * m + (1 - keep1) * g
        v[...] = keep2 * v + (1 - keep2) * g * g
        with np.errstate(divide="ignore", invalid="ignore"):
            m_hat = m / (1 - self.b1 ** t) if self.correct else m
            v_hat = v / (1 - self.b2 ** t) if self.correct else v
            denom = np.sqrt(v_hat + self.eps) if self.eps_inside else np.sqrt(v_hat) + self.eps
            p -= self.lr * m_hat / denom


class _AdamW(_Adam):
    """AdamW (torch's: p <- p (1 - lr wd) before the Adam step) with switches: the decay as L2
    in the gradient (Adam's), without the learning rate, or after the step."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 coupled=False, no_lr=False, after=False, **_):
        super().__init__(params, lr, betas, eps, weight_decay if coupled else 0.0)
        self.wd, self.coupled, self.no_lr, self.after = weight_decay, coupled, no_lr, after

    def update(self, p, g, state):
        shrink = 1 - (self.wd if self.no_lr else self.lr * self.wd)
        if not (self.coupled or self.after):
            p *= shrink
        super().update(p, g, state)
        if self.after and not self.coupled:
            p *= shrink


# --- SGD with momentum --------------------------------------------------------------------------

class _Momentum(Optimizer):
    """Heavy ball (torch's b <- mu b + g, p <- p - lr b) with switches."""

    def __init__(self, params, lr=1e-3, momentum=0.0, weight_decay=0.0, nesterov=False,
                 lr_inside=False, ema=False, **_):
        super().__init__(params, lr, weight_decay)
        self.mu, self.nesterov, self.lr_inside, self.ema = momentum, nesterov, lr_inside, ema

    def update(self, p, g, state):
        step = self.lr * g if self.lr_inside else g
        if "b" not in state:  # torch: b_1 = g (no decay of a zero buffer on the first step)
            state["b"] = (1 - self.mu) * g if self.ema else step.copy()
        else:
            b = state["b"]
            b[...] = self.mu * b + ((1 - self.mu) * g if self.ema else step)
        b = state["b"]
        if self.lr_inside:
            p -= b
        else:
            p -= self.lr * (g + self.mu * b if self.nesterov else b)


# --- RMSProp and AdaGrad ------------------------------------------------------------------------

class _RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, eps_inside=False,
                 swapped=False, **_):
        super().__init__(params, lr, weight_decay)
        self.alpha, self.eps, self.eps_inside = (1 - alpha) if swapped else alpha, eps, eps_inside

    def update(self, p, g, state):
        v = state.setdefault("v", np.zeros_like(p))
        v[...] = self.alpha * v + (1 - self.alpha) * g * g
        p -= self.lr * g / (np.sqrt(v + self.eps) if self.eps_inside else np.sqrt(v) + self.eps)


class _Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, eps=1e-10, weight_decay=0.0, eps_inside=False, **_):
        super().__init__(params, lr, weight_decay)
        self.eps, self.eps_inside = eps, eps_inside

    def update(self, p, g, state):
        s = state.setdefault("sum", np.zeros_like(p))
        s += g * g
        p -= self.lr * g / (np.sqrt(s + self.eps) if self.eps_inside else np.sqrt(s) + self.eps)


def _with(cls, **switches):
    return lambda params, **options: cls(params, **{**options, **switches})


CATALOGUE: tuple[Mistake, ...] = (
    Mistake("adam_no_bias_correction", "adam", "bug",
            "Adam without bias correction: m and v are used as they are, not divided by "
            "(1 - beta1^t) and (1 - beta2^t)",
            "m and v start at zero, so early on they underestimate the gradient's moments by "
            "the factor (1 - beta^t): derive E[m_t] for a constant gradient",
            _with(_Adam, correct=False)),
    Mistake("adam_t_ahead", "adam", "bug",
            "Adam's step count is one ahead: the bias correction uses t + 1 (a counter "
            "incremented before its use, on top of self.t)",
            "the first step is t = 1: 1 - beta^1 is the correction of one average; "
            "self.t already counts from 1",
            _with(_Adam, t_offset=1)),
    Mistake("adam_eps_inside", "adam", "variant",
            "eps inside the square root: sqrt(v_hat + eps) where torch writes sqrt(v_hat) + eps",
            "both keep the denominator away from zero; inside the root eps acts as sqrt(eps) "
            "(1e-4 for eps = 1e-8), so steps on coordinates with tiny gradients are smaller",
            _with(_Adam, eps_inside=True)),
    Mistake("adamw_coupled", "adamw", "bug",
            "weight decay added to the gradient (L2, Adam's): AdamW decouples it, shrinking p "
            "by (1 - lr wd) outside the adaptive step",
            "in the gradient the decay is divided by sqrt(v_hat) like everything else, so "
            "weights with large gradients decay less (Loshchilov & Hutter 2019): take it out of g",
            _with(_AdamW, coupled=True)),
    Mistake("adamw_no_lr", "adamw", "bug",
            "the decay applied without the learning rate: p <- p (1 - wd) where torch's AdamW "
            "shrinks by (1 - lr wd)",
            "the decay is a step like the gradient's: scaled by lr (torch), so a schedule lowers "
            "it too", _with(_AdamW, no_lr=True)),
    Mistake("adamw_after", "adamw", "variant",
            "the decay applied after the Adam step instead of before it",
            "both shrink by (1 - lr wd); after the step the shrink also scales that step, a "
            "difference of order lr^2 wd", _with(_AdamW, after=True)),
    Mistake("momentum_lr_inside", "momentum", "variant",
            "the learning rate inside the velocity: v <- mu v + lr g, p <- p - v",
            "at a constant rate it is torch's b scaled by lr, the same steps; when a schedule "
            "changes lr, yours lets the change act gradually, torch's at once",
            _with(_Momentum, lr_inside=True)),
    Mistake("momentum_ema", "momentum", "bug",
            "an exponential average for the velocity: v <- mu v + (1 - mu) g (Ng's form), where "
            "torch's heavy ball accumulates b <- mu b + g",
            "unrolled, v_t = (1 - mu) b_t: your steps are (1 - mu) times torch's at the same lr "
            "(set optimizer.ema=true on dlx's sgd for this form)",
            _with(_Momentum, ema=True)),
    Mistake("nesterov_as_heavy_ball", "nesterov", "bug",
            "heavy ball where Nesterov was asked: the step is along b, not along g + mu b",
            "Nesterov's look-ahead: the gradient step is taken from where momentum would carry "
            "the weights (Sutskever et al. 2013), which torch writes as g + mu b",
            _with(_Momentum, nesterov=False)),
    Mistake("heavy_ball_as_nesterov", "momentum", "bug",
            "Nesterov's step (g + mu b) where plain momentum was asked",
            "heavy ball steps along the velocity b itself",
            _with(_Momentum, nesterov=True)),
    Mistake("adam_betas_swapped", "adam", "bug",
            "Adam's averages weigh the wrong term: m <- (1 - beta1) m + beta1 g (and so for v), "
            "where the old average keeps the weight beta",
            "an exponential average keeps beta of the old value and adds (1 - beta) of the new: "
            "with beta = 0.9 it remembers ~10 steps",
            _with(_Adam, swapped=True)),
    Mistake("rmsprop_alpha_swapped", "rmsprop", "bug",
            "RMSProp's average weighs the wrong term: v <- (1 - alpha) v + alpha g^2, where the "
            "old average keeps the weight alpha",
            "an exponential average keeps alpha of the old value and adds (1 - alpha) of g^2",
            _with(_RMSprop, swapped=True)),
    Mistake("rmsprop_eps_inside", "rmsprop", "variant",
            "eps inside the square root: sqrt(v + eps) where torch writes sqrt(v) + eps",
            "both keep the denominator away from zero; inside the root eps acts as sqrt(eps)",
            _with(_RMSprop, eps_inside=True)),
    Mistake("adagrad_eps_inside", "adagrad", "variant",
            "eps inside the square root: sqrt(s + eps) where torch writes sqrt(s) + eps",
            "both keep the denominator away from zero; inside the root eps acts as sqrt(eps)",
            _with(_Adagrad, eps_inside=True)),
)


def concept(reference: str, options: dict) -> str:
    """The catalogue's name for a reference option: sgd with momentum is ``momentum`` (or
    ``nesterov``), otherwise the option's name."""
    if reference in ("sgd", "momentum", "nesterov"):
        if options.get("nesterov"):
            return "nesterov"
        return "momentum" if options.get("momentum") else "sgd"
    return reference


def for_concept(name: str) -> list[Mistake]:
    return [m for m in CATALOGUE if m.concept == name]

