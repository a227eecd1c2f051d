"""Centered finite differences in float64, for checking hand-written backward passes."""

from __future__ import annotations

import numpy as np


def numerical_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f / d x by centered differences; ``f`` reads ``x`` (perturbed in place) and returns a float."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        up = f()
        x[i] = old - h
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(|a| + |b|): scale-free, and 0 only if they agree."""
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a) + np.abs(b)), 1e-30))


def check_module(module, x: np.ndarray, rng: np.random.Generator, tol: float = 1e-7) -> None:
    """backward against finite differences of sum(forward(x) * r), r random: the input
    gradient (when backward returns one) and every parameter's gradient."""
    r = rng.standard_normal(module.forward(x).shape)

    def f():
        return float((module.forward(x) * r).sum())

    f()
    module.zero_grad()
    dx = module.backward(r)
    if dx is not None:
        assert rel_error(dx, numerical_grad(f, x)) < tol
    for p in module.parameters():
        assert rel_error(p.grad.copy(), numerical_grad(f, p.data)) < tol, p.name
