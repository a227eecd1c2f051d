"""`dlx check layer=mine.softmax.Softmax`: the learner's softmax over the last axis against dlx's,
through the stages of :mod:`dlx.checks.models` on x (4, 5), then on x 1000 times larger, where
an exp without the row's maximum taken out overflows.

A failure is matched against: a backward with the Jacobian's diagonal only, dout y (1 - y) (each
output depends on every input of its row), the normalization over the batch axis, and the
overflow.
"""

from __future__ import annotations

import numpy as np

from dlx.checks import models
from dlx.checks.result import RTOL, Result, rel_error
from dlx.nn.activations import Softmax

SHAPE = (4, 5)


def _x(scale: float = 1.0) -> np.ndarray:
    return scale * np.sin(np.linspace(0.0, 7.0, SHAPE[0] * SHAPE[1])).reshape(SHAPE) * 2


def check(cls) -> Result:
    x = _x()
    result = models.check(cls(), Softmax(), x, "Softmax", out="output")
    if result.failed == "1 fixed inputs":
        layer = cls()
        y = np.asarray(layer.forward(x.copy()))
        dout = np.linspace(-0.5, 0.6, y.size).reshape(y.shape) / len(x)
        dx = np.asarray(layer.backward(dout.copy()))
        ref_y = Softmax().forward(x.copy())
        e = np.exp(x - x.max(axis=0, keepdims=True))
        if rel_error(y, ref_y) <= RTOL and rel_error(dx, dout * ref_y * (1 - ref_y)) <= RTOL:
            result.diagnosis = ("your backward uses the Jacobian's diagonal only, dout y (1 - y): "
                                "each output depends on every input of its row")
            result.revisit = ("d y_i / d x_j = y_i (delta_ij - y_j): dx = y (dout - sum over the "
                              "row of dout y)")
        elif rel_error(y, e / e.sum(axis=0, keepdims=True)) <= RTOL:
            result.diagnosis = ("your softmax normalizes over axis 0, the batch: each example's "
                                "row is normalized on its own (the last axis)")
        return result
    if not result.passed:
        return result
    with np.errstate(all="ignore"):
        big = np.asarray(cls().forward(_x(1000.0)))
    if not np.isfinite(big).all():
        result.passed = False
        return result.fail("1 fixed inputs", "at inputs 1000 times larger your softmax is not "
                           "finite: exp of a large input overflowed",
                           "subtract each row's maximum before exp: softmax(x) = softmax(x - m)")
    result.stages.append(("1 fixed inputs (x 1000)", "passed"))
    return result
