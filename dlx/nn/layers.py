"""Layers with hand-written backward passes."""

from __future__ import annotations

import numpy as np

from dlx.nn.core import Module, Parameter


class Linear(Module):
    """y = x W + b, with W of shape (in_features, out_features) so a batch is one matmul."""

    def __init__(self, in_features: int, out_features: int, *, dtype=np.float32, name: str = ""):
        prefix = f"{name}." if name else ""
        self.W = Parameter(np.zeros((in_features, out_features), dtype=dtype), prefix + "W")
        self.b = Parameter(np.zeros(out_features, dtype=dtype), prefix + "b", decay=False)
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x  # (N, in)
        return x @ self.W.data + self.b.data  # (N, out)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self._x  # (N, in); dout: (N, out)
        self.W.grad += x.T @ dout
        self.b.grad += dout.sum(axis=0)
        return dout @ self.W.data.T  # (N, in)
