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

    computed as y = x s with s = sigmoid(2u) = (1 + tanh(u)) / 2, the same function: one exp
    instead of a tanh, which NumPy evaluates about twice as fast. With u' = c (1 + 3 * 0.044715
    x^2) and 1 - tanh(u)^2 = 4 s (1 - s),

    dy/dx = (1 + t)/2 + x/2 (1 - t^2) u' = s + 2 x s (1 - s) u',  t = tanh(u)

    Every step writes into one of two buffers (``out=``, in place): no temporaries beyond them.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        s = x * x
        s *= -2.0 * _GELU_C * 0.044715
        s -= 2.0 * _GELU_C
        s *= x                      # -2u
        with np.errstate(over="ignore"):  # exp(-2u) = inf for x << 0: then s = 0, y = -0
            np.exp(s, out=s)
        s += 1.0
        np.reciprocal(s, out=s)     # s = 1 / (1 + exp(-2u)) = sigmoid(2u)
        self._s = s
        return x * s

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x, s = self._x, self._s
        g = x * x                   # g = 2 u' x s (1 - s) + s
        g *= 6.0 * _GELU_C * 0.044715
        g += 2.0 * _GELU_C
        g *= x
        g *= s
        t = self._scratch(s)        # one reused buffer: fewer allocations on a hot path
        np.subtract(1.0, s, out=t)
        g *= t
        g += s
        g *= dout
        return g

    def _scratch(self, like: np.ndarray) -> np.ndarray:
        s = getattr(self, "_buf", None)
        if s is None or s.shape != like.shape or s.dtype != like.dtype:
            s = self._buf = np.empty_like(like)
        return s


# SELU's constants (Klambauer et al. 2017, torch's values): the fixed point of mean 0, variance 1
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _expm1_neg(x: np.ndarray) -> np.ndarray:
    """exp(min(x, 0)) - 1: the negative branch of ELU/SELU, never overflowing for large x."""
    return np.expm1(np.minimum(x, 0))


class ELU(Module):
    """ELU (Clevert et al. 2015; torch.nn.ELU):

    y = x for x > 0,  alpha (e^x - 1) otherwise
    dy/dx = 1 for x > 0,  alpha e^x = y + alpha otherwise

    Args:
        alpha: the value approached as x -> -inf is -alpha (torch's default 1.0).
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._pos = x > 0
        self._y = np.where(self._pos, x, self.alpha * _expm1_neg(x))
        return self._y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * np.where(self._pos, 1.0, self._y + self.alpha)


class SELU(Module):
    """SELU (Klambauer et al. 2017; torch.nn.SELU): scale * ELU_alpha(x) with
    alpha = 1.6733, scale = 1.0507 — chosen so that, with LeCun-normal weights N(0, 1/fan_in),
    pre-activations of mean 0 and variance 1 map to activations of mean 0 and variance 1
    (self-normalization through depth).

    y = scale x for x > 0,  scale alpha (e^x - 1) otherwise
    dy/dx = scale for x > 0,  scale alpha e^x = y + scale alpha otherwise
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._pos = x > 0
        self._y = SELU_SCALE * np.where(self._pos, x, SELU_ALPHA * _expm1_neg(x))
        return self._y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * np.where(self._pos, SELU_SCALE, self._y + SELU_SCALE * SELU_ALPHA)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


class SiLU(Module):
    """SiLU / swish (Elfwing et al. 2017, Ramachandran et al. 2017; torch.nn.SiLU):

    y = x s(x),  s = sigmoid
    dy/dx = s(x) (1 + x (1 - s(x)))
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x, self._s = x, _sigmoid(x)
        return x * self._s

    def backward(self, dout: np.ndarray) -> np.ndarray:
        s = self._s
        return dout * s * (1.0 + self._x * (1.0 - s))


class Softplus(Module):
    """Softplus (torch.nn.Softplus, beta 1, threshold 20): a smooth ReLU.

    y = log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|);  dy/dx = sigmoid(x)
    torch returns x itself where x > threshold (there log(1 + e^x) - x < 2e-9); so do we,
    so the two agree to rounding everywhere.
    """

    def __init__(self, threshold: float = 20.0):
        self.threshold = threshold

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        y = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
        return np.where(x > self.threshold, x, y)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self._x
        return dout * np.where(x > self.threshold, 1.0, _sigmoid(x))


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
               "gelu": GELU, "elu": ELU, "selu": SELU, "silu": SiLU, "softplus": Softplus,
               "identity": None}
