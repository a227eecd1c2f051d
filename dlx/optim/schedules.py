"""Learning-rate schedules. Each option builds a pure function ``step -> lr`` (step from 0,
one per optimizer update), equal to torch.optim.lr_scheduler's value where torch has the schedule.
The exception is ``reduce_on_plateau``, which depends on the validation metric: an object the
loop tells each epoch's metric (see :class:`ReduceLROnPlateau`), called like the others.

A builder gets the base ``lr`` (optimizer.lr) and ``total_steps`` (the run's updates, after any
warmup) plus its options. :func:`build` adds the linear warmup that composes with any schedule.
"""

from __future__ import annotations

import bisect
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


def cosine_restarts(lr: float, total_steps: int, *, T_0: int = 100, T_mult: int = 1,
                    eta_min: float = 0.0) -> Schedule:
    """SGDR (Loshchilov & Hutter 2017; torch CosineAnnealingWarmRestarts stepped once per update):
    cosine annealing from lr to eta_min over T_i steps, then a restart at lr, with
    T_i = T_0 * T_mult^i for the i-th cycle::

        lr(t) = eta_min + (lr - eta_min) (1 + cos(pi T_cur / T_i)) / 2

    where T_cur counts the steps since the last restart.

    Args:
        T_0: length of the first cycle in steps.
        T_mult: each cycle is T_mult times longer than the one before (an integer >= 1).
        eta_min: the lowest learning rate.
    """
    if not (isinstance(T_0, int) and T_0 >= 1):
        raise ValueError(f"T_0 must be an integer >= 1, got {T_0}")
    if not (isinstance(T_mult, int) and T_mult >= 1):
        raise ValueError(f"T_mult must be an integer >= 1, got {T_mult}")
    if eta_min < 0:
        raise ValueError(f"eta_min must be >= 0, got {eta_min}")

    def f(t: int) -> float:
        # integer arithmetic, as torch's incremental T_cur (its closed form uses a float log)
        T_cur, T_i = t, T_0
        while T_cur >= T_i:
            T_cur, T_i = T_cur - T_i, T_i * T_mult
        return eta_min + (lr - eta_min) * (1.0 + math.cos(math.pi * T_cur / T_i)) / 2.0

    return f


CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


def cyclic(lr: float, total_steps: int, *, base_lr: float | None = None,
           max_lr: float | None = None, step_size_up: int = 2000,
           step_size_down: int | None = None, mode: str = "triangular",
           gamma: float = 1.0) -> Schedule:
    """Cyclical learning rates (Smith 2017; torch CyclicLR with cycle_momentum=False): up
    linearly from base_lr to max_lr over step_size_up steps, down over step_size_down, repeat::

        c = floor(1 + t / (up + down));  x = 1 + t / (up + down) - c
        s = x / r if x <= r else (x - 1) / (r - 1),   r = up / (up + down)
        lr(t) = base_lr + (max_lr - base_lr) * s * h

    with h = 1 (triangular), 1 / 2^(c - 1) (triangular2: the amplitude halves each cycle) or
    gamma^t (exp_range). Only the lr cycles: momentum is the optimizer's.

    Args:
        base_lr: the lowest lr (null: optimizer.lr).
        max_lr: the highest lr (null: 4 x base_lr, Smith's rule of thumb base = max / 3 or 4).
        step_size_up: steps from base_lr up to max_lr.
        step_size_down: steps back down (null: step_size_up).
        mode: triangular, triangular2 or exp_range.
        gamma: exp_range's decay per step.
    """
    base = lr if base_lr is None else base_lr
    top = 4.0 * base if max_lr is None else max_lr
    if not (base > 0 and top > 0):
        raise ValueError(f"base_lr and max_lr must be > 0, got {base} and {top}")
    down_steps = step_size_up if step_size_down is None else step_size_down
    if step_size_up < 1 or down_steps < 1:
        raise ValueError(f"step_size_up and step_size_down must be >= 1, got {step_size_up} "
                         f"and {down_steps}")
    if mode not in CYCLIC_MODES:
        raise ValueError(f"mode must be one of {', '.join(CYCLIC_MODES)}, got {mode!r}")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    up, total = float(step_size_up), float(step_size_up) + float(down_steps)
    ratio = up / total

    def f(t: int) -> float:
        cycle = math.floor(1 + t / total)
        x = 1.0 + t / total - cycle
        scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        height = (top - base) * scale
        if mode == "triangular":
            return base + height * 1.0
        if mode == "triangular2":
            return base + height * (1 / (2.0 ** (cycle - 1)))
        return base + height * gamma**t

    return f


def linear(lr: float, total_steps: int, *, start_factor: float = 1.0 / 3,
           end_factor: float = 1.0, total_iters: int | None = 5) -> Schedule:
    """lr(t) = lr * (s + (e - s) * min(t, total_iters) / total_iters)  (torch LinearLR): the
    factor moves linearly from start_factor s to end_factor e over total_iters steps, then stays.

    Args:
        start_factor: the factor at step 0, in (0, 1].
        end_factor: the factor from step total_iters on, in [0, 1].
        total_iters: steps of the linear change (null: the run's steps).
    """
    total_iters = total_steps if total_iters is None else total_iters
    if not 0 < start_factor <= 1:
        raise ValueError(f"start_factor must be in (0, 1], got {start_factor}")
    if not 0 <= end_factor <= 1:
        raise ValueError(f"end_factor must be in [0, 1], got {end_factor}")
    if total_iters < 1:
        raise ValueError(f"total_iters must be >= 1, got {total_iters}")
    return lambda t: lr * (start_factor + (end_factor - start_factor)
                           * min(total_iters, t) / total_iters)


def sequential(lr: float, total_steps: int, *, schedules: list[Callable[..., Schedule]],
               milestones: list[int]) -> Schedule:
    """One schedule after another (torch SequentialLR): schedules[i] runs from milestones[i-1]
    (0 for the first) up to milestones[i], starting again from its own step 0::

        lr(t) = schedules[i](t - milestones[i-1]),   i = number of milestones <= t

    Args:
        schedules: builders ``(lr=, total_steps=) -> Schedule``, in order, each built for the
            steps of its own segment (the last: to the end of the run). In a config they are
            schedule nodes as in conf/schedule/ (name and options, no warmup_steps: use a
            ``linear`` piece), which :func:`dlx.assemble.build_schedule` turns into builders.
        milestones: the steps where the next schedule takes over, increasing, one fewer.
    """
    if len(milestones) != len(schedules) - 1 or not schedules:
        raise ValueError(f"needs one milestone fewer than schedules, got {len(schedules)} "
                         f"schedules and {len(milestones)} milestones")
    starts = [0, *milestones]
    if any(b <= a for a, b in zip(starts, starts[1:])):
        raise ValueError(f"milestones must be > 0 and increasing, got {milestones}")
    # a run shorter than the milestones never reaches the last pieces (as in torch)
    bounds = [*starts, max(total_steps, starts[-1] + 1)]
    pieces = [make(lr=lr, total_steps=bounds[i + 1] - bounds[i])
              for i, make in enumerate(schedules)]

    def f(t: int) -> float:
        i = bisect.bisect_right(milestones, t)
        return pieces[i](t - bounds[i])

    return f


class ReduceLROnPlateau:
    """Divide the lr by 1/factor when a monitored metric has stopped improving (torch
    ReduceLROnPlateau, one group): not a function of the step but of the metric's history, so
    the loop calls :meth:`step` with the metric at each epoch's end (a callback,
    :class:`dlx.training.monitors.Plateau`); as a schedule it returns the current lr.

    At each epoch's metric a::

        better = a < best (1 - threshold)   (min, rel)    a < best - threshold   (min, abs)
                 a > best (1 + threshold)   (max, rel)    a > best + threshold   (max, abs)
        if better: best <- a, bad <- 0   else: bad <- bad + 1
        if cooldown_counter > 0: cooldown_counter -= 1, bad <- 0
        if bad > patience:
            new = max(lr * factor, min_lr);  lr <- new if lr - new > eps
            cooldown_counter <- cooldown, bad <- 0

    Args:
        monitor: the metric read at each epoch's end (val/loss, val/acc, train/loss, train/acc).
        mode: min (the metric should fall) or max (rise).
        factor: the lr is multiplied by it on a plateau, < 1.
        patience: epochs without improvement tolerated before a reduction.
        threshold: what counts as an improvement (relative or absolute, by threshold_mode).
        threshold_mode: rel or abs.
        cooldown: epochs after a reduction during which bad epochs are not counted.
        min_lr: the lr never goes below it.
        eps: reductions smaller than eps are skipped.
    """

    STATE = ("lr", "best", "num_bad_epochs", "cooldown_counter", "last_epoch")

    def __init__(self, lr: float, total_steps: int, *, monitor: str = "val/loss",
                 mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0.0, eps: float = 1e-8):
        split, _, metric = monitor.partition("/")
        if split not in ("train", "val") or metric not in ("loss", "acc"):
            raise ValueError(f"monitor must be one of val/loss, val/acc, train/loss, train/acc, "
                             f"got {monitor!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be min or max, got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be rel or abs, got {threshold_mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        for name, value in (("threshold", threshold), ("min_lr", min_lr), ("eps", eps)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.monitor, self.mode, self.factor, self.patience = monitor, mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown = threshold, threshold_mode, cooldown
        self.min_lr, self.eps = min_lr, eps
        self.lr, self.best = lr, math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = self.last_epoch = 0

    def __call__(self, t: int) -> float:
        return self.lr

    def better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            return a < best * (1.0 - self.threshold) if self.threshold_mode == "rel" \
                else a < best - self.threshold
        return a > best * (self.threshold + 1.0) if self.threshold_mode == "rel" \
            else a > best + self.threshold

    def step(self, metric: float) -> None:
        """One epoch's metric (a NaN never improves, as in torch)."""
        current = float(metric)
        self.last_epoch += 1
        if self.better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown are not counted
        if self.num_bad_epochs > self.patience:
            new = max(self.lr * self.factor, self.min_lr)
            if self.lr - new > self.eps:
                self.lr = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0

    def state_dict(self) -> dict:
        """The changing state, JSON-able (an infinite best is written as Infinity)."""
        return {k: getattr(self, k) for k in self.STATE}

    def load_state_dict(self, state: dict) -> None:
        for k in self.STATE:
            setattr(self, k, state[k])


SCHEDULES = {f.__name__: f for f in (constant, step, exponential, log_range, time_based, cosine,
                                     onecycle, cosine_restarts, cyclic, linear, sequential)}
SCHEDULES["reduce_on_plateau"] = ReduceLROnPlateau
