"""Weight initializers: ``fn(shape, rng, **options) -> array``.

Shapes: a dense weight is (fan_in, fan_out) — rows are a unit's inputs (``x @ W``); a
convolution kernel is (C_out, C_in, *kernel), as in torch and cs231n, whose fan_in is
C_in x kernel size and fan_out C_out x kernel size (torch's ``_calculate_fan_in_and_fan_out``).
Biases always start at zero.
"""

from __future__ import annotations

import math

import numpy as np


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of this shape (see the module's docstring)."""
    if len(shape) <= 2:
        return shape[0], shape[1] if len(shape) > 1 else 1
    receptive = math.prod(shape[2:])  # a kernel: (C_out, C_in, kH, kW, ...)
    return shape[1] * receptive, shape[0] * receptive


def zeros(shape, rng):
    """All zeros."""
    return np.zeros(shape)


def constant(shape, rng, *, value: float = 0.0):
    """Every weight = value."""
    return np.full(shape, value)


def normal(shape, rng, *, std: float = 0.01):
    """N(0, std^2)."""
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    return rng.normal(0.0, std, shape)


def uniform(shape, rng, *, a: float = 0.05):
    """U(-a, a)."""
    if a < 0:
        raise ValueError(f"a must be >= 0, got {a}")
    return rng.uniform(-a, a, shape)


def xavier_uniform(shape, rng, *, gain: float = 1.0):
    """Glorot & Bengio 2010: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    return uniform(shape, rng, a=gain * math.sqrt(6.0 / (fan_in + fan_out)))


def xavier_normal(shape, rng, *, gain: float = 1.0):
    """Glorot & Bengio 2010: N(0, gain^2 * 2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    return normal(shape, rng, std=gain * math.sqrt(2.0 / (fan_in + fan_out)))


def he_uniform(shape, rng):
    """He et al. 2015, fan-in mode for ReLU: U(-b, b), b = sqrt(6 / fan_in)."""
    return uniform(shape, rng, a=math.sqrt(6.0 / _fans(shape)[0]))


def he_normal(shape, rng):
    """He et al. 2015, fan-in mode for ReLU: N(0, 2 / fan_in)."""
    return normal(shape, rng, std=math.sqrt(2.0 / _fans(shape)[0]))


def lecun_normal(shape, rng):
    """LeCun 1998: N(0, 1 / fan_in)."""
    return normal(shape, rng, std=math.sqrt(1.0 / _fans(shape)[0]))


INITS = {f.__name__: f for f in (zeros, constant, normal, uniform, xavier_uniform, xavier_normal,
                                 he_uniform, he_normal, lecun_normal)}
