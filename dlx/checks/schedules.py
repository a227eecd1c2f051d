"""`dlx check schedule=my_step`: the learner's schedule ``(step, lr, total_steps, **options) ->
lr`` against dlx's of the same name (torch.optim.lr_scheduler's values), at the learner's
options, in stages:

0. interface: one finite number at every step; the same value whatever order the steps are
   asked in (a function of the step, not of the calls before: dlx calls it each update, and
   again from the checkpoint's step on a resume);
1. fixed inputs: lr = 0.1 over a run of 1,000 updates, every step 0..1000 against the
   reference's; the first step where they part and the worst one shown.

A failure is matched against relations to the reference: one step ahead or behind (the step
counts from 0: the first update uses lr(0) = lr), a constant factor, a continuous decay where
the reference drops in stairs (StepLR's floor), a cosine without its (1 + cos) / 2, a range
test's sweep that reaches final_lr one update late (t / T for t / (T - 1)) or grows linearly.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from dlx.checks.result import RTOL, Result, Row, rel_error

LR, TOTAL = 0.1, 1000


def _values(schedule: Callable[[int], float], steps) -> np.ndarray:
    return np.array([float(schedule(t)) for t in steps])


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= RTOL * np.maximum(np.abs(b), LR)))


def check(mine: Callable, ref: Callable, options: dict) -> Result:
    """``mine`` and ``ref``: builders ``(lr, total_steps) -> (step -> lr)`` at the options."""
    result = Result(passed=False)
    steps = np.arange(TOTAL + 1)
    from dlx.learner import last_frame

    ours = mine(LR, TOTAL)
    try:
        first = ours(0)
    except TypeError as e:  # dlx's own check of the value (not a frame of the learner's)
        if last_frame(e) is not None:
            raise
        return result.fail("0 interface", str(e))
    if not (isinstance(first, (int, float)) and math.isfinite(first)):
        return result.fail("0 interface", f"lr(0) is {first!r}: a schedule returns the learning "
                                          f"rate, one finite number")
    forward = _values(ours, steps)
    backward = _values(mine(LR, TOTAL), steps[::-1])[::-1]
    if not np.all(np.isfinite(forward)):
        t = int(np.flatnonzero(~np.isfinite(forward))[0])
        return result.fail("0 interface", f"lr({t}) is {forward[t]}: a schedule returns a finite "
                                          f"learning rate at every step")
    if not np.array_equal(forward, backward):
        t = int(np.flatnonzero(forward != backward)[0])
        return result.fail("0 interface", f"lr({t}) is {forward[t]:.6g} when the steps are asked "
                           f"in order and {backward[t]:.6g} when asked backwards: your schedule "
                           f"keeps state between calls", "lr(t) must be a function of t alone "
                           "(dlx asks for it each update, and from the checkpoint's step on a "
                           "resume)")
    result.stages.append(("0 interface", "passed"))
    theirs = _values(ref(LR, TOTAL), steps)
    bad = ~(np.abs(forward - theirs) <= RTOL * np.maximum(np.abs(theirs), LR))
    worst = int(np.argmax(np.abs(forward - theirs)))
    rows = [Row(int(t), "lr: yours {}, dlx's {}".format(*_apart(forward[t], theirs[t])),
                float(abs(forward[t] - theirs[t])), rel_error(forward[t:t + 1], theirs[t:t + 1]),
                not bad[t]) for t in dict.fromkeys([0, *np.flatnonzero(bad)[:1], worst, TOTAL])]
    result.rows = rows
    if not bad.any():
        result.stages.append(("1 fixed inputs", "passed"))
        result.notes.append(f"checked at lr = {LR} over {TOTAL} updates, every step; options: "
                            + (", ".join(f"{k}={v}" for k, v in sorted(options.items()))
                               or "the reference's defaults"))
        result.passed = True
        return result
    t = int(np.flatnonzero(bad)[0])
    diagnosis, revisit = _relation(forward, theirs, ref, options)
    yours, dlxs = _apart(forward[t], theirs[t])
    return result.fail("1 fixed inputs", diagnosis or f"your schedule parts from dlx's at step {t}: "
                       f"yours {yours}, dlx's {dlxs}",
                       revisit or "write lr(t) for t = 0, 1, 2 by hand from the definition and "
                                  "compare with the rows above")


def _apart(a: float, b: float) -> tuple[str, str]:
    """Two rates printed with the digits that tell them apart (6 significant, up to 15)."""
    digits = next((d for d in range(6, 16) if f"{a:.{d}g}" != f"{b:.{d}g}"), 6)
    if digits == 6:
        return f"{a:.6g}", f"{b:.6g}"
    return f"{a:#.{digits}g}", f"{b:#.{digits}g}"  # both to the digit that differs (no 0 cut)


def _relation(ours: np.ndarray, theirs: np.ndarray, ref: Callable, options: dict):
    """(diagnosis, revisit) for a known relation between the two curves, else ("", "")."""
    full = _values(ref(LR, TOTAL), np.arange(-1, TOTAL + 2))  # the reference from t = -1
    if _close(ours, full[2:]):
        return ("your schedule is one step ahead: your lr(t) is dlx's lr(t + 1)",
                "the step counts from 0: the first update uses lr(0), the base rate")
    if _close(ours, full[:-2]):
        return ("your schedule is one step behind: your lr(t) is dlx's lr(t - 1)",
                "the step counts from 0, not 1: lr(0) is the base rate")
    keep = np.abs(theirs) > 1e-12
    ratio = ours[keep] / theirs[keep]
    if keep.any() and np.allclose(ratio, ratio[0], rtol=1e-9):
        return (f"your rate is {ratio[0]:.6g} times dlx's at every step",
                "at step 0 a schedule returns the base rate lr itself")
    t = np.arange(TOTAL + 1)
    size, gamma = options.get("step_size"), options.get("gamma")
    if size and gamma and _close(ours, LR * gamma ** (t / size)):
        return ("your rate decays continuously, lr * gamma^(t / step_size): the step schedule "
                "drops in stairs, lr * gamma^floor(t / step_size)",
                "the rate stays constant for step_size updates, then is multiplied by gamma")
    w = options.get("warmup_steps")
    if w and "eta_min" in options:  # a warm-up in front of the cosine
        eta, start = options["eta_min"], options.get("warmup_start_factor", 0.01)
        cos = eta + (LR - eta) * (1 + np.cos(np.pi * (t - w) / TOTAL)) / 2
        if _close(ours, np.where(t < w, LR * (start + (1 - start) * t / w), cos)):
            return ("your cosine anneals over total_steps updates after the warm-up, so it ends "
                    "above eta_min: dlx's anneals over the rest of the run, total_steps - warmup",
                    "T = total_steps - warmup, the cosine's own step counting from 0 at t = warmup")
    end = options.get("final_lr")
    if end:  # the LR range test's sweep from lr to final_lr
        if any(_close(ours, LR * (end / LR) ** (np.minimum(t, cap) / TOTAL))
               for cap in (TOTAL, TOTAL - 1)):  # held from T, or from T - 1 as the stub says
            return (f"your sweep reaches final_lr one update late: the exponent is t / T where "
                    f"t / (T - 1) belongs, so the last update (t = T - 1 = {TOTAL - 1}) runs "
                    f"below final_lr", "the run's T updates are t = 0 .. T - 1: the first uses "
                    "lr, the last final_lr, so the exponent is t / (T - 1)")
        span = TOTAL - 1
        if _close(ours, LR + (end - LR) * np.minimum(t, span) / span):
            return ("your sweep grows linearly (by equal steps) where the range test's grows "
                    "geometrically (by equal factors)", "lr(t) = lr * (final_lr / lr)^(t / (T - "
                    "1)): equal steps in log(lr), so each decade gets the same number of updates")
    if "eta_min" in options:
        T = options.get("T_max") or TOTAL
        if _close(ours, options["eta_min"] + (LR - options["eta_min"]) * np.cos(np.pi * t / T)):
            return ("your cosine goes from lr down to -lr: it lacks the (1 + cos) / 2 that maps "
                    "it onto [eta_min, lr]",
                    "lr(t) = eta_min + (lr - eta_min) (1 + cos(pi t / T_max)) / 2")
    return "", ""
