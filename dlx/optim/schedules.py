"""Learning-rate schedules. Each option builds a pure function ``step -> lr`` (step from 0,
one per optimizer update), equal to torch.optim.lr_scheduler's value where torch has the schedule.

A builder gets the base ``lr`` (optimizer.lr) and ``total_steps`` (the run's updates, after any
warmup) plus its options. :func:`build` adds the linear warmup that composes with any schedule.
"""

from __future__ import annotations

import math
from typing import Callable

Schedule = Callable[[int], float]


def constant(lr: float, total_steps: int) -> Schedule:
    """lr(t) = lr."""
    return lambda t: lr


def step(lr: float, total_steps: int, *, step_size: int = 1000, gamma: float = 0.1) -> Schedule:
    """lr(t) = lr * gamma^floor(t / step_size)  (torch StepLR)."""
    if step_size < 1:
        raise ValueError(f"step_size must be >= 1, got {step_size}")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    return lambda t: lr * gamma ** (t // step_size)


def exponential(lr: float, total_steps: int, *, gamma: float = 0.999) -> Schedule:
    """lr(t) = lr * gamma^t  (torch ExponentialLR)."""
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    return lambda t: lr * gamma**t


def log_range(lr: float, total_steps: int, *, final_lr: float = 10.0) -> Schedule:
    """lr(t) = lr * (final_lr / lr)^(t / (T - 1)): from lr to final_lr, evenly on a log scale,
    over the run's T steps (the LR range test; torch ExponentialLR with
    gamma = (final_lr / lr)^(1 / (T - 1)))."""
    if not final_lr > 0:
        raise ValueError(f"final_lr must be > 0, got {final_lr}")
    span = max(total_steps - 1, 1)
    return lambda t: lr * (final_lr / lr) ** (min(t, span) / span)


def time_based(lr: float, total_steps: int, *, decay: float = 0.01) -> Schedule:
    """lr(t) = lr / (1 + decay * t)  (1/t decay; Keras' InverseTimeDecay; no torch class)."""
    if decay < 0:
        raise ValueError(f"decay must be >= 0, got {decay}")
    return lambda t: lr / (1.0 + decay * t)


def cosine(lr: float, total_steps: int, *, T_max: int | None = None,
           eta_min: float = 0.0) -> Schedule:
    """lr(t) = eta_min + (lr - eta_min) (1 + cos(pi t / T_max)) / 2  (torch CosineAnnealingLR;
    T_max defaults to the run's steps; past T_max it rises again, as torch's does)."""
    T = total_steps if T_max is None else T_max
    if T < 1:
        raise ValueError(f"T_max must be >= 1, got {T}")
    if eta_min < 0:
        raise ValueError(f"eta_min must be >= 0, got {eta_min}")
    return lambda t: eta_min + (lr - eta_min) * (1.0 + math.cos(math.pi * t / T)) / 2.0


def onecycle(lr: float, total_steps: int, *, pct_start: float = 0.3, div_factor: float = 25.0,
             final_div_factor: float = 1e4) -> Schedule:
    """The 1cycle policy (Smith & Topin 2019; torch OneCycleLR with cosine annealing, max_lr =
    lr): from lr/div_factor up to lr over pct_start of the steps, then down to
    lr/(div_factor * final_div_factor). The LR only: momentum is not cycled."""
    if not 0 < pct_start < 1:
        raise ValueError(f"pct_start must be in (0, 1), got {pct_start}")
    if not (div_factor > 0 and final_div_factor > 0):
        raise ValueError("div_factor and final_div_factor must be > 0")
    if pct_start * total_steps < 2:
        raise ValueError(f"pct_start * total_steps must be >= 2, got {pct_start} * {total_steps}")
    initial = lr / div_factor
    final = initial / final_div_factor
    peak = float(pct_start * total_steps) - 1  # torch's phase boundary
    last = total_steps - 1

    def anneal(start: float, end: float, pct: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def f(t: int) -> float:
        t = min(t, last)
        if t <= peak:
            return anneal(initial, lr, t / peak)
        return anneal(lr, final, (t - peak) / (last - peak))

    return f


def with_warmup(main: Schedule, lr: float, warmup_steps: int, start_factor: float) -> Schedule:
    """Linear warmup from lr * start_factor to lr over warmup_steps, then ``main`` from its step 0
    (torch SequentialLR([LinearLR(start_factor), main], milestones=[warmup_steps]))."""
    def f(t: int) -> float:
        if t < warmup_steps:
            return lr * (start_factor + (1.0 - start_factor) * t / warmup_steps)
        return main(t - warmup_steps)

    return f


SCHEDULES = {f.__name__: f for f in (constant, step, exponential, log_range, time_based, cosine,
                                     onecycle)}
