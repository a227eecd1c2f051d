"""Toy sequence tasks for a language model, generated and seeded.

Each example is one token sequence ``prompt SEP answer``; the model reads it left to right and
is scored only on the answer tokens (targets of the prompt positions are IGNORE).
``fn(rng, **options) -> (inputs (N, T), targets (N, T), vocabulary size)``.
"""

from __future__ import annotations

import numpy as np

from dlx.nn.losses import IGNORE


def _as_lm(prompt: np.ndarray, answer: np.ndarray, sep: int) -> tuple[np.ndarray, np.ndarray]:
    """inputs = seq[:-1], targets = seq[1:] with the prompt's own predictions ignored."""
    n, L = prompt.shape
    seq = np.concatenate([prompt, np.full((n, 1), sep), answer], axis=1)
    X, Y = seq[:, :-1].copy(), seq[:, 1:].copy()
    Y[:, : L] = IGNORE  # positions 0..L-1 would predict the prompt and the separator
    return X.astype(np.int64), Y.astype(np.int64)


def _check(n_samples: int, length: int, symbols: int) -> None:
    if n_samples < 10:
        raise ValueError(f"n_samples must be >= 10, got {n_samples}")
    if length < 1 or symbols < 2:
        raise ValueError(f"length must be >= 1 and symbols >= 2, got {length}, {symbols}")


def copy(rng, *, n_samples: int = 20000, length: int = 8, symbols: int = 10):
    """x -> x."""
    _check(n_samples, length, symbols)
    x = rng.integers(0, symbols, (n_samples, length))
    return (*_as_lm(x, x, symbols), symbols + 1)


def reverse(rng, *, n_samples: int = 20000, length: int = 8, symbols: int = 10):
    """x -> x read backwards."""
    _check(n_samples, length, symbols)
    x = rng.integers(0, symbols, (n_samples, length))
    return (*_as_lm(x, x[:, ::-1], symbols), symbols + 1)


def sort(rng, *, n_samples: int = 20000, length: int = 8, symbols: int = 10):
    """x -> x in ascending order."""
    _check(n_samples, length, symbols)
    x = rng.integers(0, symbols, (n_samples, length))
    return (*_as_lm(x, np.sort(x, axis=1), symbols), symbols + 1)


def modular_addition(rng, *, n_samples: int = 5000, p: int = 97):
    """a b -> (a + b) mod p, for distinct pairs (a, b) drawn from all p^2 of them."""
    if p < 2 or not 10 <= n_samples <= p * p:
        raise ValueError(f"need p >= 2 and 10 <= n_samples <= p^2 = {p * p}")
    pairs = rng.choice(p * p, n_samples, replace=False)
    a, b = pairs // p, pairs % p
    X, Y = _as_lm(np.stack([a, b], axis=1), ((a + b) % p)[:, None], p)
    return X, Y, p + 1


SEQUENCES = {f.__name__: f for f in (copy, reverse, sort, modular_addition)}
