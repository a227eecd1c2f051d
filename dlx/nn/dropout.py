"""Dropout (Srivastava et al. 2014) and DropConnect (Wan et al. 2013), both inverted: the kept
values are scaled by 1/keep_prob during training, so evaluation needs no rescaling."""

from __future__ import annotations

import numpy as np

from dlx.nn.core import Module
from dlx.nn.layers import Linear


def check_keep(keep_prob: float) -> None:
    if not 0.0 < keep_prob <= 1.0:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")


def inverted_mask(rng: np.random.Generator, shape, keep_prob: float, dtype) -> np.ndarray:
    """Bernoulli(keep_prob) entries scaled by 1/keep_prob: E[mask] = 1."""
    return (rng.random(shape) < keep_prob).astype(dtype) / np.dtype(dtype).type(keep_prob)


class _Dropping:
    """What dropout and DropConnect share: keep_prob, a generator, and the mask of the last
    training-mode forward pass (None in eval mode or at keep_prob 1)."""

    def _init_dropping(self, keep_prob: float, rng: np.random.Generator) -> None:
        check_keep(keep_prob)
        self.keep_prob, self.rng = keep_prob, rng
        self._mask: np.ndarray | None = None

    def _new_mask(self, shape, dtype) -> np.ndarray | None:
        active = self.training and self.keep_prob < 1.0
        self._mask = inverted_mask(self.rng, shape, self.keep_prob, dtype) if active else None
        return self._mask


class Dropout(_Dropping, Module):
    """Training: y = x * m / keep_prob, m ~ Bernoulli(keep_prob) per element; eval: y = x.

    backward uses the same mask as the forward pass it follows.
    """

    def __init__(self, keep_prob: float, rng: np.random.Generator):
        self._init_dropping(keep_prob, rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        mask = self._new_mask(x.shape, x.dtype)
        return x if mask is None else x * mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout if self._mask is None else dout * self._mask


class Dropout2d(Dropout):
    """Spatial dropout (Tompson et al. 2015): whole channels of (N, C, H, W) maps are dropped,
    m ~ Bernoulli(keep_prob) per (example, channel), because neighbouring pixels of one map are
    so correlated that dropping single pixels hardly regularizes."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        mask = self._new_mask((*x.shape[:2], 1, 1), x.dtype)
        return x if mask is None else x * mask


class DropConnectLinear(_Dropping, Linear):
    """A Linear layer whose *weights* are dropped: training uses W * M / keep_prob with
    M ~ Bernoulli(keep_prob) per weight, one mask per forward pass (per mini-batch)."""

    def __init__(self, in_features: int, out_features: int, keep_prob: float,
                 rng: np.random.Generator, *, dtype=np.float32, name: str = ""):
        super().__init__(in_features, out_features, dtype=dtype, name=name)
        self._init_dropping(keep_prob, rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        W = self.W.data
        if self._new_mask(W.shape, W.dtype) is None:
            return super().forward(x)
        self._x = x
        self._W_eff = W * self._mask
        return x @ self._W_eff + self.b.data

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._mask is None:
            return super().backward(dout)
        self.W.grad += (self._x.T @ dout) * self._mask
        self.b.grad += dout.sum(axis=0)
        return dout @ self._W_eff.T if self.input_grad else None
