"""Gradient checking: a hand-written backward against centred finite differences, in float64.

For a module (or a model with its loss) it returns one relative error per parameter, and for
the input, so a notebook can print them and a test can assert on them::

    from dlx.nn.gradcheck import check_module
    errors = check_module(Linear(4, 3, dtype=np.float64), x, rng)   # {'input': 3e-11, 'W': ...}
"""

from __future__ import annotations

import numpy as np


def numerical_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f / d x by centred differences; ``f`` reads ``x`` (perturbed in place) and returns a float."""
    return numerical_grad_at(f, x, np.arange(x.size), h).reshape(x.shape)


def numerical_grad_at(f, x: np.ndarray, flat_index: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f / d x at the entries ``flat_index`` of x (in C order) only: a sparse check of a
    large parameter (cs231n's grad_check_sparse). ``x`` must be contiguous: it is perturbed
    through a flat view."""
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("x must be contiguous (perturbed in place through a flat view)")
    grad = np.empty(len(flat_index))
    for k, i in enumerate(flat_index):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        grad[k] = (up - down) / (2 * h)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(|a| + |b|): scale-free, and 0 only if they agree."""
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a) + np.abs(b)), 1e-30))


def check_module(module, x: np.ndarray, rng: np.random.Generator, h: float = 1e-6) -> dict:
    """backward against finite differences of sum(forward(x) * r), r random: the relative error
    of the input's gradient (``"input"``, when backward returns one) and of every parameter's
    (by its name). Use float64: in float32 the differences are rounding noise."""
    r = rng.standard_normal(module.forward(x).shape)

    def f():
        return float((module.forward(x) * r).sum())

    f()
    module.zero_grad()
    dx = module.backward(r)
    errors = {}
    if dx is not None and np.issubdtype(x.dtype, np.floating):
        errors["input"] = rel_error(dx, numerical_grad(f, x, h))
    for i, p in enumerate(module.parameters()):
        errors[_key(errors, p, i)] = rel_error(p.grad.copy(), numerical_grad(f, p.data, h))
    return errors


def _key(errors: dict, p, i: int) -> str:
    name = p.name or f"param{i}"
    return name if name not in errors else f"{name}#{i}"


def check_model(model, loss_fn, x: np.ndarray, y: np.ndarray, h: float = 1e-6) -> dict:
    """A model with its loss: the relative error of d loss / d parameter, for every parameter
    (by name). Dropout and other randomness must be off (``model.eval()``) for the differences
    to mean anything."""
    def f():
        return float(loss_fn.forward(model.forward(x), y))

    model.zero_grad()
    f()
    model.backward(loss_fn.backward())
    errors: dict = {}
    for i, p in enumerate(model.parameters()):
        errors[_key(errors, p, i)] = rel_error(p.grad.copy(), numerical_grad(f, p.data, h))
    return errors
