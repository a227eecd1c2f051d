"""`dlx check regularizer=my_l2`: the learner's penalty on one weight array (``penalty(w) ->
float``, ``grad(w) -> d penalty / dw``) against dlx's l1, l2 or elastic net at the learner's
``lam`` (and ``l1_ratio``), with the L1 part in the gradient (dlx's ``method: subgradient``: the
learner's class has no proximal step), in float64, in stages:

0. interface: penalty one finite number, grad shaped as w, w left alone, the same values when
   asked again;
1. fixed inputs: w from ``linspace`` (no entry within 0.05 of 0, where |w| has its kink), the
   penalty and the gradient against the reference's;
2. gradients: grad against centred finite differences of the learner's own penalty.

A failure is matched against relations: L2 without its 1/2 (the penalty and the gradient
twice dlx's), L1's gradient written as w where sign(w) belongs, a mean over the entries where
the penalty sums them, lam left out, the sign, a constant factor.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from dlx.checks.result import GRAD_RTOL, RTOL, Result, Row, rel_error

SHAPE = (4, 5)


def fixed_w() -> np.ndarray:
    w = np.linspace(-1.1, 1.3, 20).reshape(SHAPE)
    return np.where(np.abs(w) < 0.05, w + 0.1, w)


def _factor(a, b) -> float | None:
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    keep = np.abs(b) > 1e-15
    if a.shape != b.shape or not keep.any():
        return None
    ratio = a[keep] / b[keep]
    return float(ratio[0]) if np.allclose(ratio, ratio[0], rtol=1e-9) else None


def check(make: Callable, ref, lam: float, l1_ratio: float) -> Result:
    """``make()`` the learner's regularizer; ``ref`` dlx's (ElasticNet) at lam and l1_ratio."""
    from dlx.nn import Parameter

    result = Result(passed=False)
    w = fixed_w()
    kept = w.copy()
    reg = make()
    value, grad = reg.penalty(w), reg.grad(w)
    if np.ndim(value) != 0 or not np.isfinite(float(value)):
        return result.fail("0 interface", f"penalty returned {value!r}"[:120] + ": it returns one "
                           "finite number, the penalty summed over the weight's entries")
    if grad is None or np.shape(grad) != SHAPE:
        return result.fail("0 interface", f"grad returned {'None' if grad is None else np.shape(grad)}"
                           f" for a weight of shape {SHAPE}: d(penalty)/dw has the weight's shape")
    if not np.array_equal(w, kept):
        return result.fail("0 interface", "penalty or grad changed the weight in place: dlx "
                           "adds your gradient to the weight's, it must not move the weight")
    if float(reg.penalty(w)) != float(value) or not np.array_equal(reg.grad(w), grad):
        return result.fail("0 interface", "asked again for the same weight, your penalty or grad "
                           "gave another value: something is kept between calls")
    result.stages.append(("0 interface", "passed"))

    param = [Parameter(w.copy(), "W")]
    ref_value = ref.penalty(param)
    ref.add_grad(param)
    ref_grad = param[0].grad
    value, grad = float(value), np.asarray(grad, float)
    errs = rel_error(np.array([value]), np.array([ref_value])), rel_error(grad, ref_grad)
    result.rows = [Row(0, "penalty(w)", abs(value - ref_value), errs[0], errs[0] <= RTOL),
                   Row(0, "grad(w)", float(np.abs(grad - ref_grad).max()), errs[1],
                       errs[1] <= RTOL)]
    if max(errs) > RTOL:
        return result.fail("1 fixed inputs", *_relation(value, grad, ref_value, ref_grad, w,
                                                         lam, l1_ratio))
    result.stages.append(("1 fixed inputs", "passed"))
    numeric = np.zeros_like(w)
    h = 1e-6
    for i in np.ndindex(SHAPE):
        up, down = w.copy(), w.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (float(reg.penalty(up)) - float(reg.penalty(down))) / (2 * h)
    err = rel_error(grad, numeric)
    result.rows.append(Row(0, "grad vs finite differences", float(np.abs(grad - numeric).max()),
                           err, err <= GRAD_RTOL, GRAD_RTOL))
    if err > GRAD_RTOL:
        return result.fail("2 gradients", "your grad is not your penalty's derivative")
    result.stages.append(("2 gradients", "passed"))
    result.passed = True
    return result


def _relation(value, grad, ref_value, ref_grad, w, lam, l1_ratio) -> tuple[str, str]:
    cp, cg = _factor(value, ref_value), _factor(grad, ref_grad)
    l1_part = lam * l1_ratio * np.sign(w)
    if l1_ratio > 0 and rel_error(grad, ref_grad - l1_part + lam * l1_ratio * w) <= RTOL:
        return ("your L1 gradient is lam * w: the derivative of |w| is sign(w), not w",
                "d|w|/dw = +1 where w > 0, -1 where w < 0 (dlx takes 0 at 0)")
    if l1_ratio < 1 and cp is not None and np.isclose(cp, 2) and cg is not None \
            and np.isclose(cg, 2):
        return ("your L2 penalty is lam * sum w^2 and its gradient 2 lam w: dlx's (and the "
                "course's) L2 is lam / 2 * sum w^2, whose gradient is lam * w",
                "with the 1/2 the gradient is lam * w: at the same lam yours regularizes twice "
                "as hard")
    if cp is not None and np.isclose(cp, 1 / w.size) and (cg is None or np.isclose(cg, 1 / w.size)):
        return (f"your penalty is 1/{w.size} of dlx's: it averages over the weight's entries "
                f"where the penalty sums them", "penalty = lam * sum over every entry")
    if lam and cp is not None and np.isclose(cp, 1 / lam):
        return ("your penalty lacks lam: it is the sum alone", "every term is multiplied by lam")
    if cg is not None and np.isclose(cg, -1):
        return ("your gradient has the wrong sign", "the penalty grows away from w = 0: its "
                "gradient points away from 0 (dlx subtracts it in the step)")
    which = "penalty" if cp is None or not np.isclose(cp, 1) else "gradient"
    factor = cp if which == "penalty" else cg
    return ((f"your {which} is {factor:g} times dlx's" if factor is not None else
             f"your {which} is not dlx's"),
            "penalty = lam * (l1_ratio * sum|w| + (1 - l1_ratio) / 2 * sum w^2)")
