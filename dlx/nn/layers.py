"""Layers with parameters and hand-written backward passes."""

from __future__ import annotations

import numpy as np

from dlx.nn.core import Module, Parameter


class Linear(Module):
    """y = x W + b, with W of shape (in_features, out_features) so a batch is one matmul.

    backward: dW += x^T dout, db += sum_rows(dout), dx = dout W^T. A first layer sets
    ``input_grad=False``: nothing upstream needs dx, so its matmul is skipped (returns None).
    ``bias=False`` leaves b out (before a BatchNorm, whose beta does its job).
    """

    def __init__(self, in_features: int, out_features: int, *, dtype=np.float32, name: str = "",
                 input_grad: bool = True, bias: bool = True):
        prefix = f"{name}." if name else ""
        self.W = Parameter(np.zeros((in_features, out_features), dtype=dtype), prefix + "W")
        self.b = Parameter(np.zeros(out_features, dtype=dtype), prefix + "b", decay=False) \
            if bias else None
        self.input_grad = input_grad
        self._x: np.ndarray | None = None
        self._dW = np.empty_like(self.W.data)  # reused every step: no allocation in backward

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x  # (N, in), or (B, T, in): one 2-D matmul, not B small ones
        out = x.reshape(-1, x.shape[-1]) @ self.W.data
        if self.b is not None:
            out += self.b.data
        return out.reshape(*x.shape[:-1], out.shape[-1])  # (N, out) / (B, T, out)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        x = self._x  # (N, in) or (B, T, in): leading axes are all rows
        x2, d2 = x.reshape(-1, x.shape[-1]), dout.reshape(-1, dout.shape[-1])
        np.matmul(x2.T, d2, out=self._dW)
        self.W.grad += self._dW
        if self.b is not None:
            self.b.grad += d2.sum(axis=0)
        if not self.input_grad:
            return None
        return (d2 @ self.W.data.T).reshape(x.shape)  # (..., in)


class Flatten(Module):
    """(N, *shape) -> (N, prod(shape)), e.g. images into a fully connected layer; backward
    restores the shape (None passes through from a first layer that skips its input grad)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dout: np.ndarray | None) -> np.ndarray | None:
        return None if dout is None else dout.reshape(self._shape)
