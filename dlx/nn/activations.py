"""Element-wise activations and softmax: forward keeps what backward needs, no parameters."""

from __future__ import annotations

import math

import numpy as np

from dlx.nn.core import Module


class ReLU(Module):
    """max(x, 0);  dx = dout * [x > 0]."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return np.maximum(x, 0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self._mask


class LeakyReLU(Module):
    """x for x > 0, negative_slope * x otherwise (torch's default slope 0.01)."""

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = negative_slope

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._scale = np.where(x > 0, 1.0, self.negative_slope).astype(x.dtype)
        return x * self._scale

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self._scale


class Sigmoid(Module):
    """1 / (1 + exp(-x)), computed without overflow;  dx = dout * y (1 - y)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        e = np.exp(-np.abs(x))
        self._y = np.where(x >= 0, 1.0, e) / (1.0 + e)
        return self._y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self._y * (1.0 - self._y)


class Tanh(Module):
    """tanh(x);  dx = dout * (1 - y^2)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = np.tanh(x)
        return self._y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (1.0 - self._y * self._y)


_GELU_C = math.sqrt(2.0 / math.pi)


class GELU(Module):
    """GELU, tanh form (Hendrycks & Gimpel 2016; torch's GELU(approximate='tanh')):

    y = x/2 (1 + tanh(u)),  u = c (x + 0.044715 x^3),  c = sqrt(2/pi)
    dy/dx = (1 + t)/2 + x/2 (1 - t^2) c (1 + 3 * 0.044715 x^2),  t = tanh(u)
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        x2 = x * x  # x*x, not x**3: far faster; kept for backward
        t = x2 * 0.044715
        t += 1.0
        t *= x
        t *= _GELU_C
        np.tanh(t, out=t)
        self._x2, self._t = x2, t
        out = t + 1.0
        out *= x
        out *= 0.5
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x, x2, t = self._x, self._x2, self._t
        s = self._scratch(t)  # one reused buffer: fewer temporaries on a hot path
        g = x2 * (3 * 0.044715)  # g = c (1 + 3a x^2) * x/2 * (1 - t^2) + (1 + t)/2
        g += 1.0
        g *= _GELU_C * 0.5
        g *= x
        np.multiply(t, t, out=s)
        np.subtract(1.0, s, out=s)
        g *= s
        np.multiply(t, 0.5, out=s)
        g += s
        g += 0.5
        g *= dout
        return g

    def _scratch(self, like: np.ndarray) -> np.ndarray:
        s = getattr(self, "_s", None)
        if s is None or s.shape != like.shape or s.dtype != like.dtype:
            s = self._s = np.empty_like(like)
        return s


class Softmax(Module):
    """Softmax over the last axis;  dx = y * (dout - sum(dout * y)) along that axis."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        self._y = e / e.sum(axis=-1, keepdims=True)
        return self._y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        y = self._y
        return y * (dout - (dout * y).sum(axis=-1, keepdims=True))


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh,
               "gelu": GELU, "identity": None}
