"""`dlx check layer=mine.conv.Conv2d` and `layer=mine.conv.MaxPool2d`: the learner's convolution
(built as ``Conv2d(in_channels, out_channels, kernel_size, stride, padding)``, W (F, C, kH, kW)
as torch's) and max pooling (``MaxPool2d(kernel_size, stride)``) against dlx's, from the same
weights, in float64, through the stages of :mod:`dlx.checks.models` on x of shape (N, C, H, W)
with a stride and a padding that both matter (and windows that overlap, for the pooling).

A failure is matched against a catalogue: a kernel flipped (the convolution of signal
processing; deep learning's is a cross-correlation), the padding or the stride left out (an
output of the wrong size), a max-pool backward that sends the gradient to every position of
the window, or to every position averaged (an average pool's backward).
"""

from __future__ import annotations

import numpy as np

from dlx.checks import models
from dlx.checks.linear import build
from dlx.checks.result import RTOL, Result, rel_error
from dlx.nn.conv import Conv2d, MaxPool2d, conv2d_naive, out_size

N, C, F, K, STRIDE, PAD, SIZE = 2, 2, 3, 3, 2, 1, 7
POOL_K, POOL_STRIDE, POOL_SIZE = 3, 2, 7


def _x(size: int) -> np.ndarray:
    n = N * C * size * size
    x = np.sin(np.linspace(0.0, 23.0, n)) + np.linspace(0.0, 0.1, n)
    return x.reshape(N, C, size, size)  # no two values equal: max pooling has no ties


def check_conv(cls) -> Result:
    layer = build(cls, C, F, K, STRIDE, PAD)
    ref = Conv2d(C, F, K, STRIDE, PAD, dtype=np.float64)
    x = _x(SIZE)
    result = models.check(layer, ref, x, "Conv2d", out="output")
    wrong_size = result.failed == "0 interface" and "output of shape" in result.diagnosis
    if result.passed or not (result.failed == "1 fixed inputs" or wrong_size):
        if result.passed:
            result.notes.append(f"checked at kernel {K}, stride {STRIDE}, padding {PAD} on x "
                                f"of shape {x.shape}")
        return result
    mine = np.asarray(build_like(cls, layer, (C, F, K, STRIDE, PAD)).forward(x.copy()))
    W, b = ref.W.data, ref.b.data
    variants = [
        ("your layer flips the kernel: that is the convolution of signal processing; a "
         "network's 'convolution' (torch's, dlx's) is a cross-correlation, W not flipped",
         "out[n, f, i, j] = b[f] + sum over c, di, dj of W[f, c, di, dj] x[n, c, i s + di, "
         "j s + dj] (after padding)", lambda: conv2d_naive(x, W[:, :, ::-1, ::-1], b, STRIDE, PAD)),
        ("your output has the size of an unpadded convolution: the padding is not applied",
         f"pad x with {PAD} zeros on each side of H and W first (np.pad): the output side is "
         f"floor((H + 2p - k) / s) + 1", lambda: conv2d_naive(x, W, b, STRIDE, 0)),
        ("your output has the size of a stride-1 convolution: the stride is not applied",
         f"windows start every {STRIDE} positions: output position i reads x from i s",
         lambda: conv2d_naive(x, W, b, 1, PAD)),
    ]
    for title, revisit, make in variants:
        theirs = make()
        if mine.shape == theirs.shape and rel_error(mine, theirs) <= RTOL:
            return _named(result, title, revisit)
    if wrong_size:
        want = (N, F, out_size(SIZE, K, STRIDE, PAD), out_size(SIZE, K, STRIDE, PAD))
        result.revisit = f"the output is {want}: floor((H + 2p - k) / s) + 1 per side"
    return result


def check_pool(cls) -> Result:
    layer = build(cls, POOL_K, POOL_STRIDE)
    ref = MaxPool2d(POOL_K, POOL_STRIDE)
    x = _x(POOL_SIZE)
    result = models.check(layer, ref, x, "MaxPool2d", out="output")
    if result.passed:
        result.notes.append(f"checked at kernel {POOL_K}, stride {POOL_STRIDE} (overlapping "
                            f"windows) on x of shape {x.shape}")
    if result.failed != "1 fixed inputs":
        return result
    rows = {r.name: r for r in result.rows}
    if rows["output"].ok:  # the forward is right: which backward is it?
        mine = build_like(cls, layer, (POOL_K, POOL_STRIDE))
        out = np.asarray(mine.forward(x.copy()))
        dout = np.linspace(-0.5, 0.6, out.size).reshape(out.shape) / N
        dx = np.asarray(mine.backward(dout.copy()))
        k2 = POOL_K * POOL_K
        for scale, title in ((1.0, "your backward sends each window's gradient to every position "
                                    "of the window: only the maximum's position gets it"),
                             (1 / k2, "your backward spreads each window's gradient evenly over "
                                      "the window: that is an average pool's backward")):
            if rel_error(dx, _spread(dout, x.shape) * scale) <= RTOL:
                return _named(result, title, "max's derivative is 1 at the position holding "
                              "the maximum, 0 elsewhere: keep where it was in forward")
    return result


def _spread(dout: np.ndarray, shape) -> np.ndarray:
    """Each window's gradient added to every position of the window (overlaps summed)."""
    dx = np.zeros(shape)
    ho, wo = dout.shape[2:]
    for i in range(ho):
        for j in range(wo):
            r, c = i * POOL_STRIDE, j * POOL_STRIDE
            dx[:, :, r:r + POOL_K, c:c + POOL_K] += dout[:, :, i:i + 1, j:j + 1]
    return dx


def build_like(cls, checked, sizes):
    """A fresh layer of the learner's with the checked weights."""
    layer = build(cls, *sizes)
    for p, q in zip(layer.parameters(), checked.parameters()):
        p.data = q.data.copy()
    return layer


def _named(result: Result, title: str, revisit: str) -> Result:
    """The failing stage's diagnosis, named by the catalogue."""
    result.diagnosis, result.revisit = title, revisit
    return result
