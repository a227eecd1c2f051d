"""Gradient clipping, as torch.nn.utils does it, on our Parameters' ``grad`` buffers in place.

Clipping sits between backward and the optimizer step. It is what keeps BPTT usable when the
recurrent Jacobians' product grows with the sequence length (Pascanu et al. 2013).
"""

from __future__ import annotations

import math

import numpy as np


def grad_norm(params) -> float:
    """The global L2 norm of every gradient, sqrt(sum_p ||g_p||^2), summed in float64."""
    return math.sqrt(sum(float(np.square(p.grad, dtype=np.float64).sum()) for p in params))


def clip_grad_norm(params, max_norm: float, eps: float = 1e-6) -> float:
    """torch.nn.utils.clip_grad_norm_: with n the global L2 norm, every gradient is scaled by
    max_norm / (n + eps) when that is < 1 (torch multiplies by the factor clamped at 1, which
    is the same). Returns n, the norm before clipping.

    Args:
        params: Parameters whose ``grad`` is scaled in place.
        max_norm: the largest global norm let through (> 0).
        eps: torch's 1e-6 in the denominator.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    params = list(params)
    norm = grad_norm(params)
    scale = max_norm / (norm + eps)
    if scale < 1.0:
        for p in params:
            p.grad *= p.grad.dtype.type(scale)
    return norm


def clip_grad_value(params, clip_value: float) -> None:
    """torch.nn.utils.clip_grad_value_: every gradient entry clamped to [-clip_value, clip_value].

    Args:
        params: Parameters whose ``grad`` is clamped in place.
        clip_value: the bound (> 0).
    """
    if not clip_value > 0:
        raise ValueError(f"clip_value must be > 0, got {clip_value}")
    for p in params:
        np.clip(p.grad, -clip_value, clip_value, out=p.grad)
