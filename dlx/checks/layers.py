"""`dlx check` for an activation layer: the learner's Module against dlx's activation of the same
name, in stages, stopping at the first that fails, then naming the failure mode.

0. interface: forward keeps the input's shape, backward returns dx shaped as x; the input is
   left as it was; the same input gives the same output;
1. fixed inputs (float64): x from ``linspace`` (away from 0, where ReLU's kink is), the output
   and dx = backward(dout) for a fixed dout against the reference's;
2. gradients: backward against centred finite differences of sum(forward(x) * dout).

A failure is matched against a catalogue of known mistakes (each a switch on the reference:
ReLU's mask inverted or missing, a sigmoid's or tanh's derivative written with the input
where the output belongs) and relations (a constant factor, the sign).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from dlx.checks.result import GRAD_RTOL, RTOL, Result, Row, rel_error
from dlx.nn.activations import ACTIVATIONS

SHAPE = (4, 6)


def fixed_x() -> np.ndarray:
    """(4, 6) values from -3 to 2.5, none within 0.05 of 0 (ReLU's kink)."""
    x = np.linspace(-3.0, 2.5, 24).reshape(SHAPE)
    return np.where(np.abs(x) < 0.05, x + 0.1, x)


def fixed_dout() -> np.ndarray:
    return np.linspace(0.5, -0.7, 24).reshape(SHAPE)


@dataclass(frozen=True)
class Mistake:
    key: str
    concept: str
    title: str
    revisit: str
    backward: Callable  # (x, y, dout) -> the mistaken dx


CATALOGUE = (
    Mistake("relu_mask_inverted", "relu", "your ReLU passes the gradient where x < 0 and stops "
            "it where x > 0: the mask is inverted", "relu'(x) is 1 where x > 0, 0 elsewhere",
            lambda x, y, d: d * (x < 0)),
    Mistake("relu_no_mask", "relu", "your ReLU's backward passes dout through unmasked",
            "dx = dout * relu'(x): the units that were off in forward pass no gradient",
            lambda x, y, d: d),
    Mistake("sigmoid_with_input", "sigmoid", "your sigmoid's derivative is written with the "
            "input: x (1 - x) where the output belongs, y (1 - y)",
            "sigma'(x) = sigma(x) (1 - sigma(x)): keep y = sigma(x) from forward",
            lambda x, y, d: d * x * (1 - x)),
    Mistake("tanh_with_input", "tanh", "your tanh's derivative is written with the input: "
            "1 - x^2 where the output belongs, 1 - y^2",
            "tanh'(x) = 1 - tanh(x)^2: keep y = tanh(x) from forward",
            lambda x, y, d: d * (1 - x * x)),
    Mistake("tanh_like_sigmoid", "tanh", "your tanh's derivative is the sigmoid's form y (1 - y)",
            "tanh'(x) = 1 - tanh(x)^2, not y (1 - y)", lambda x, y, d: d * y * (1 - y)),
)


def _run(layer, x: np.ndarray, dout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = layer.forward(x.copy())
    return np.asarray(y), layer.backward(dout.copy())


def interface(make: Callable) -> str | None:
    x, d = fixed_x(), fixed_dout()
    layer, kept = make(), x.copy()
    y = layer.forward(x)
    if np.shape(y) != x.shape:
        return f"forward returned shape {np.shape(y)} for an input of shape {x.shape}: an " \
               f"activation acts entry by entry"
    if not np.array_equal(x, kept):
        return "forward changed its input in place (x[x < 0] = 0, x *= ...): the layer " \
               "before still needs it for its own backward"
    dx = layer.backward(d)
    if dx is None or np.shape(dx) != x.shape:
        return (f"backward returned {'None' if dx is None else f'shape {np.shape(dx)}'}; the "
                f"input had shape {x.shape}: dx is dL/dx, shaped as x")
    again = _run(make(), x, d)
    if not (np.array_equal(again[0], y) and np.array_equal(again[1], dx)):
        return "the same input gave a different output or gradient (randomness, or state " \
               "kept from an earlier call)"
    return None


def numerical_grad(make: Callable, x: np.ndarray, dout: np.ndarray, h: float = 1e-6):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        grad[i] = (float((make().forward(xp) * dout).sum())
                   - float((make().forward(xm) * dout).sum())) / (2 * h)
    return grad


def check(make: Callable, name: str) -> Result:
    """Stages 0-2 of the learner's layer class ``make`` against dlx's activation ``name``."""
    result = Result(passed=False)
    problem = interface(make)
    if problem:
        return result.fail("0 interface", problem)
    result.stages.append(("0 interface", "passed"))
    x, d = fixed_x(), fixed_dout()
    y, dx = _run(make(), x, d)
    ry, rdx = _run(ACTIVATIONS[name](), x, d)
    numeric = numerical_grad(make, x, d)
    errs = rel_error(y, ry), rel_error(dx, rdx), rel_error(dx, numeric)
    result.rows = [Row(0, "forward output", float(np.abs(y - ry).max()), errs[0], errs[0] <= RTOL),
                   Row(0, "dx = backward(dout)", float(np.abs(dx - rdx).max()), errs[1],
                       errs[1] <= RTOL),
                   Row(0, "dx vs finite differences", float(np.abs(dx - numeric).max()),
                       errs[2], errs[2] <= GRAD_RTOL, GRAD_RTOL)]
    if errs[0] > RTOL or errs[1] > RTOL:
        result.stages.append(("1 fixed inputs", "failed"))
        result.failed = "1 fixed inputs"
        found = next((m for m in CATALOGUE if m.concept == name
                      and rel_error(dx, m.backward(x, ry, d)) <= RTOL), None)
        if errs[0] <= RTOL and found is not None:
            result.diagnosis, result.revisit = found.title, found.revisit
        elif errs[0] > RTOL:
            result.diagnosis = f"your forward is not dlx's {name}"
            if errs[2] <= GRAD_RTOL:
                result.revisit = "your backward is your forward's derivative: compare the " \
                                 "forward with the definition"
        else:
            keep = np.abs(rdx) > 1e-12
            ratio = dx[keep] / rdx[keep]
            c = float(ratio[0]) if keep.any() and np.allclose(ratio, ratio[0]) else None
            result.diagnosis = (f"your forward matches; your dx is {c:g} times the reference's"
                                if c is not None else "your forward matches, your dx does not")
            result.revisit = "dx = dout * f'(x), entry by entry: derive f' and check it where " \
                             "the rows above part"
        return result
    result.stages.append(("1 fixed inputs", "passed"))
    if errs[2] > GRAD_RTOL:
        return result.fail("2 gradients", "your dx is not your forward's derivative")
    result.stages.append(("2 gradients", "passed"))
    result.passed = True
    return result
