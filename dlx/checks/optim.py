"""`dlx check` for an optimizer: the learner's class against dlx's reference (torch.optim's rule),
in stages, stopping at the first that fails, then naming the failure mode.

0. interface: steps that keep every parameter's shape and dtype, leave the gradient alone,
   give two identical parameters identical steps (state per parameter, not shared), and give
   the same steps when run again;
1. fixed inputs (cs231n style, float64): a weight and a bias from ``linspace``, five steps with
   fixed gradients; the parameters after every step against the reference's, and the state
   entries matched to the reference's by value;
4. trajectory: 20 steps of logistic regression on fixed data and batches, from the same weights,
   with the learning rate halved at step 10 as a schedule would (``self.lr`` changes).

Stages 2 and 3 (finite differences, named intermediates) are for layers, losses and models.
A failure is matched against the catalogue of known mistakes (:mod:`dlx.checks.mistakes`), then
against relations to the reference (a constant factor, the sign, a rate kept from ``__init__``).
Everything here takes plain callables ``make(params) -> optimizer``: no configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from dlx.checks.mistakes import Mistake
from dlx.checks.result import RTOL, Result, Row, rel_error
from dlx.nn import Parameter

STEPS = 5     # fixed-input steps
TRAJECTORY = 20
HALVED_AT = 10  # the trajectory's step at which lr halves


# --- the inputs ---------------------------------------------------------------------------------

def fixed_params() -> list[Parameter]:
    return [Parameter(np.linspace(-0.4, 0.6, 20).reshape(4, 5), "W"),
            Parameter(np.linspace(-0.3, 0.2, 5), "b", decay=False)]


def fixed_grads(t: int) -> list[np.ndarray]:
    """The gradients of step t (from 1): fixed, different at every step, some entries tiny."""
    gw = np.linspace(-0.6, 0.4, 20).reshape(4, 5) * (1 + 0.5 * np.sin(t)) + 0.05 * t
    gb = np.linspace(0.3, -0.5, 5) * np.cos(0.7 * t) - 1e-3
    return [gw, gb]


@dataclass
class Trace:
    params: list[list[np.ndarray]]            # after each step
    states: list[dict[str, np.ndarray]]       # name -> array, after each step
    grads_changed: bool = False


def trace(make: Callable, steps: int = STEPS, params=None, grads=fixed_grads,
          lr_at: Callable[[int], float] | None = None) -> Trace:
    params = params or fixed_params()
    opt = make(params)
    out, states, changed = [], [], False
    for t in range(1, steps + 1):
        for p, g in zip(params, grads(t)):
            p.grad[...] = g
        kept = [p.grad.copy() for p in params]
        if lr_at is not None:
            opt.lr = lr_at(t)
        opt.step()
        changed |= any(not np.array_equal(p.grad, k) for p, k in zip(params, kept))
        out.append([np.array(p.data, copy=True) for p in params])
        states.append({f"{p.name}.{k}": np.array(v, dtype=float, copy=True)
                       for p, s in zip(params, opt.state) for k, v in s.items()
                       if isinstance(v, np.ndarray) or np.isscalar(v)})
    return Trace(out, states, changed)


def compare(mine: Trace, ref: Trace, names=("W", "b")) -> list[Row]:
    rows = []
    for t, (a, b) in enumerate(zip(mine.params, ref.params), start=1):
        for name, x, y in zip(names, a, b):
            err = rel_error(x, y)
            diff = float(np.abs(x - y).max()) if x.shape == y.shape else float("inf")
            rows.append(Row(t, name, diff, err, err <= RTOL))
    return rows


def same(a: Trace, b: Trace) -> bool:
    return all(r.ok for r in compare(a, b))


# --- stage 0 ------------------------------------------------------------------------------------

def interface(make: Callable) -> str | None:
    """What breaks the contract, or None."""
    first = trace(make)
    for t, ps in enumerate(first.params, start=1):
        for p, old in zip(ps, fixed_params()):
            if p.shape != old.data.shape or p.dtype != old.data.dtype:
                return (f"after step {t} a parameter is {p.dtype}{list(p.shape)}, was "
                        f"{old.data.dtype}{list(old.data.shape)}: update must change p in place, "
                        f"keeping its shape and dtype")
    for t, ps in enumerate(first.params, start=1):
        if not all(np.isfinite(p).all() for p in ps):
            return (f"after step {t} a parameter holds NaN or inf (a division by zero? a bias "
                    f"correction 1 - beta^t is 0 at t = 0: self.t counts from 1, the step being "
                    f"made)")
    if first.grads_changed:
        return ("update changed the gradient g in place (g *= ..., g += ...): g is the "
                "parameter's own .grad, which the next backward adds into; compute into a new "
                "array (m = b1 * m + (1 - b1) * g) or into state")
    if not same(first, trace(make)):
        return "the same steps on the same inputs gave different results (randomness, or " \
               "state kept outside the optimizer instance?)"
    twin = Parameter(np.linspace(-0.4, 0.6, 20).reshape(4, 5), "W2")
    pair = trace(make, params=[fixed_params()[0], twin],
                 grads=lambda t: [fixed_grads(t)[0]] * 2)
    a, b = pair.params[-1]
    if not np.array_equal(a, b):
        return ("two parameters with the same values and gradients got different steps: state "
                "is shared between parameters (kept on self, not in the state dict dlx passes "
                "for each parameter)")
    return None


# --- diagnosis ----------------------------------------------------------------------------------

def matching(mistakes: list[Mistake], options: dict, mine: Trace,
             run: Callable[[Callable], Trace]) -> Mistake | None:
    """The catalogue entry whose steps, run as ``run`` runs the learner's, equal theirs."""
    for m in mistakes:
        try:
            theirs = run(lambda ps, m=m: m.make(ps, **options))
        except (TypeError, ValueError, ZeroDivisionError, FloatingPointError):
            continue
        if same(mine, theirs):
            return m
    return None


def relation(mine: Trace, ref: Trace, step: int, lr: float) -> str | None:
    """The first failing step's update against the reference's: a constant factor (the sign,
    2, 1/2, the learning rate), or a step that leaves the weights as they were."""
    before_m = mine.params[step - 2] if step > 1 else [p.data for p in fixed_params()]
    before_r = ref.params[step - 2] if step > 1 else [p.data for p in fixed_params()]
    dm = np.concatenate([(a - b).ravel() for a, b in zip(mine.params[step - 1], before_m)])
    dr = np.concatenate([(a - b).ravel() for a, b in zip(ref.params[step - 1], before_r)])
    if not np.any(dm) and np.any(dr):
        return "your step left the weights as they were"
    keep = np.abs(dr) > 1e-9 * np.abs(dr).max()
    if not keep.any() or not np.isfinite(dm).all():
        return None
    ratio = dm[keep] / dr[keep]
    c = float(np.median(ratio))
    if not np.allclose(ratio, c, rtol=1e-6, atol=0):
        return None
    for value, say in ((-1.0, "the opposite of the reference's: it climbs the gradient "
                               "(p += where p -= is meant)"),
                       (2.0, "twice the reference's"), (0.5, "half the reference's"),
                       (lr, f"the reference's times lr = {lr:g}: the learning rate applied twice"),
                       (1 / lr, f"the reference's divided by lr = {lr:g}: the learning rate "
                                "left out")):
        if np.isclose(c, value, rtol=1e-6):
            return f"your step at step {step} is {say}"
    return f"your step at step {step} is {c:.6g} times the reference's (a constant factor)"


# --- the stages ---------------------------------------------------------------------------------

def logistic_problem():
    """Fixed data and batches: 64 points in 5-D, labels from a fixed linear rule with noise."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((64, 5))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0, 1.5]) + 0.3 * rng.standard_normal(64) > 0)
    w0 = rng.standard_normal((5, 1)) * 0.1
    return X, y.astype(float), w0


def trajectory(make: Callable, lr: float, halve: bool = True) -> Trace:
    """20 steps of logistic regression (batches of 16, in order), lr halved at step 10."""
    X, y, w0 = logistic_problem()
    params = [Parameter(w0.copy(), "W"), Parameter(np.zeros(1), "b", decay=False)]

    def grads(t):
        i = ((t - 1) * 16) % 64
        xb, yb = X[i:i + 16], y[i:i + 16]
        z = xb @ params[0].data[:, 0] + params[1].data[0]
        d = (1 / (1 + np.exp(-z)) - yb) / len(yb)  # d mean BCE / dz
        return [(xb.T @ d)[:, None], np.array([d.sum()])]
    return trace(make, TRAJECTORY, params, grads,
                 lr_at=(lambda t: lr * (0.5 if halve and t > HALVED_AT else 1.0)))


def check(mine: Callable, ref: Callable, options: dict, mistakes: list[Mistake]) -> Result:
    """Stages 0, 1 and 4 of ``mine`` against ``ref`` (each ``make(params) -> optimizer``);
    ``options`` the reference's options (the catalogue's entries are built with them)."""
    lr = float(options.get("lr", 1e-3))
    result = Result(passed=False)
    problem = interface(mine)
    if problem:
        return result.fail("0 interface", problem)
    result.stages.append(("0 interface", "passed"))

    for stage, run in (("1 fixed inputs", lambda make: trace(make)),
                       ("4 trajectory", lambda make: trajectory(make, lr))):
        a, b = run(mine), run(ref)
        rows = compare(a, b)
        bad = next((r for r in rows if not r.ok), None)
        if bad is None:
            result.stages.append((stage, "passed"))
            continue
        found = matching(mistakes, options, a, run)
        if found is not None and found.severity == "variant":
            result.variant = f"{found.title}. {found.revisit}"
            result.stages.append((stage, "passed (an accepted variant)"))
            result.notes.append(f"{stage}: differs from the reference exactly as that variant "
                                f"does, to {RTOL:g} at every step")
            if stage.startswith("1"):  # a variant may differ again under a schedule
                result.stages.append(("4 trajectory", "not run (a variant follows its own "
                                                      "trajectory)"))
                break
            continue
        result.stages.append((stage, "failed"))
        # the last step that matched and the first two that did not: where they part
        result.failed = stage
        result.rows = [r for r in rows if bad.step - 1 <= r.step <= bad.step + 1]
        result.rows += state_rows(a, b, bad.step) if stage.startswith("1") else []
        if found is not None:
            result.diagnosis, result.revisit = found.title, found.revisit
        elif stage.startswith("4") and bad.step > HALVED_AT and same(
                a, trajectory(ref, lr, halve=False)):
            result.diagnosis = ("your optimizer kept the learning rate it was built with: at "
                                f"step {HALVED_AT + 1} self.lr was halved (as a schedule does) "
                                f"and your steps did not change")
            result.revisit = "read self.lr in update at every step, never a copy from __init__"
        else:
            said = relation(a, b, bad.step, lr) if stage.startswith("1") else None
            result.diagnosis = said or (f"your parameters first differ from the reference's "
                                        f"after step {bad.step}, in {bad.name}")
            if not said and bad.step > 1:
                result.revisit = ("step 1 matches: what carries from step to step differs "
                                  "(the state's update, or the step count self.t)")
        return result
    result.passed = True
    return result


def state_rows(mine: Trace, ref: Trace, step: int) -> list[Row]:
    """After ``step``: each of the learner's state entries against the reference entry closest
    to it (names differ: m, v against exp_avg, exp_avg_sq)."""
    rows, theirs = [], ref.states[step - 1]
    for name, value in mine.states[step - 1].items():
        candidates = [(rel_error(value, v), k) for k, v in theirs.items()
                      if np.shape(v) == np.shape(value)]
        if candidates:
            err, key = min(candidates)
            rows.append(Row(step, f"state {name} ~ {key}", float(np.abs(
                np.asarray(value) - theirs[key]).max()), err, err <= RTOL))
    return rows
