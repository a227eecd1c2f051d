"""Residual connections (He et al. 2016): y = F(x) + shortcut(x).

The gradient of a sum reaches both branches: dx = dF/dx^T dout + dshortcut/dx^T dout; with an
identity shortcut the second term is dout itself, which is why depth does not starve the early
layers of gradient.
"""

from __future__ import annotations

import numpy as np

from dlx.nn.activations import ReLU
from dlx.nn.conv import Conv2d
from dlx.nn.core import Module, Sequential
from dlx.nn.norm import BatchNorm


class Residual(Module):
    """y = body(x) + x (identity), or body(x) + shortcut(x) (a projection when shapes change);
    ``shortcut=False`` drops the skip (y = body(x)): the plain twin with the same layers."""

    def __init__(self, body: Module, shortcut: Module | bool | None = None):
        self.body = body
        self.shortcut = shortcut if isinstance(shortcut, Module) else None
        self.skip = shortcut is not False

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = self.body.forward(x)
        if self.skip:
            out = out + (self.shortcut.forward(x) if self.shortcut is not None else x)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = self.body.backward(dout)
        if self.skip:
            dx = dx + (self.shortcut.backward(dout) if self.shortcut is not None else dout)
        return dx


def basic_block(c_in: int, c_out: int, stride: int, *, skip: bool = True,
                preact: bool = False, dtype=np.float32, name: str = "block") -> Module:
    """ResNet's basic block of two 3x3 convolutions. Post-activation (the 2016 paper):
    relu(BN(conv(relu(BN(conv(x))))) + shortcut(x)); pre-activation (He et al., Identity
    Mappings, 2016): conv(relu(BN(conv(relu(BN(x)))))) + shortcut(x), nothing after the sum.
    The shortcut is the identity, or a 1x1 convolution with stride (+ BN) when the shape
    changes (option B). Convolutions have no bias: a BatchNorm follows each (the
    pre-activation one's output goes into the next block's BN)."""
    def conv(a, b, k, s, suffix):
        return Conv2d(a, b, k, s, k // 2, bias=False, dtype=dtype, name=f"{name}.{suffix}")

    def bn(c, suffix):
        return BatchNorm(c, dtype=dtype, name=f"{name}.{suffix}")

    project = stride != 1 or c_in != c_out
    if preact:
        body = Sequential(bn(c_in, "bn1"), ReLU(), conv(c_in, c_out, 3, stride, "conv1"),
                          bn(c_out, "bn2"), ReLU(), conv(c_out, c_out, 3, 1, "conv2"))
        shortcut = conv(c_in, c_out, 1, stride, "proj") if project else None
    else:
        body = Sequential(conv(c_in, c_out, 3, stride, "conv1"), bn(c_out, "bn1"), ReLU(),
                          conv(c_out, c_out, 3, 1, "conv2"), bn(c_out, "bn2"))
        shortcut = Sequential(conv(c_in, c_out, 1, stride, "proj"), bn(c_out, "proj_bn")) \
            if project else None
    block = Residual(body, shortcut if skip else False)
    return block if preact else Sequential(block, ReLU())
