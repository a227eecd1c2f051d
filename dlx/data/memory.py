"""Synthetic long-range memory tasks for recurrent nets, generated and seeded.

``copy_memory`` (Hochreiter & Schmidhuber 1997, experiment 2; in the form of Arjovsky et al.
2016): read ``length`` symbols, then wait ``delay`` blank steps, see a marker, and write the
symbols back in order. With S = length, T = delay, n = n_symbols, one example is

    input   s_1 .. s_S   _ x T   :   _ x (S - 1)        (length 2S + T steps)
    target  . .. .       . x T   s_1 s_2  ..  s_S       ('.' = IGNORE: not scored)

where symbols are 0..n-1, the blank ``_`` is n and the marker ``:`` is n+1 (vocabulary n + 2).
The symbol s_k is asked for at the marker's step + k - 1: S + T steps after it was read.

Targets are given only at the S recalled positions (the rest are IGNORE), so the loss and the
accuracy measure recall alone: a model that has forgotten the symbols scores chance, a loss of
ln n and 1/n of the symbols right (Arjovsky et al. also score the blanks, which makes the
memoryless baseline look better the longer the delay).

``copy_memory(rng, **options) -> (inputs (N, 2S+T) int64, targets (N, 2S+T) int64, vocabulary
size)``.

``adding`` (Hochreiter & Schmidhuber 1997, experiment 4; in the form of Le et al. 2015 and
Arjovsky et al. 2016) is a regression over real-valued sequences: at each of T steps the input
is a pair (value, marker), the values uniform on [0, 1], the marker 1 at exactly two steps (one
in each half of the sequence) and 0 elsewhere; the target, read after the last step, is the sum
of the two marked values. Predicting its mean, 1, whatever the input scores an MSE of
Var(u_1 + u_2) = 2/12 = 1/6 ~ 0.167: the memoryless baseline.

``adding(rng, **options) -> (inputs (N, T, 2) float64, targets (N, 1) float64)``.
"""

from __future__ import annotations

import numpy as np

from dlx.nn.losses import IGNORE


def copy_memory(rng, *, n_samples: int = 4000, length: int = 5, delay: int = 10,
                n_symbols: int = 4):
    """Recall ``length`` symbols (of ``n_symbols``) after ``delay`` blank steps and a marker.

    Args:
        rng: the data stream.
        n_samples: examples (before the validation split), >= 10.
        length: S, the symbols to remember, >= 1.
        delay: T, the blank steps between the last symbol and the marker, >= 0.
        n_symbols: n, the alphabet, >= 2 (chance recall 1/n).
    """
    if n_samples < 10:
        raise ValueError(f"n_samples must be >= 10, got {n_samples}")
    if length < 1 or delay < 0 or n_symbols < 2:
        raise ValueError(f"need length >= 1, delay >= 0 and n_symbols >= 2, got {length}, "
                         f"{delay}, {n_symbols}")
    S, blank, marker = length, n_symbols, n_symbols + 1
    symbols = rng.integers(0, n_symbols, (n_samples, S))
    X = np.full((n_samples, 2 * S + delay), blank, dtype=np.int64)
    X[:, :S] = symbols
    X[:, S + delay] = marker
    Y = np.full_like(X, IGNORE)
    Y[:, S + delay:] = symbols  # from the marker's step on, one symbol per step
    return X, Y, n_symbols + 2


def recall_accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Fraction of the recalled symbols predicted right (scored positions only; chance 1/n),
    where the loop's token accuracy asks for every symbol of a sequence at once."""
    keep = y != IGNORE
    return float((logits.argmax(axis=-1) == y)[keep].mean())


def adding(rng, *, n_samples: int = 4000, length: int = 50):
    """The adding problem over ``length`` steps: inputs (N, T, 2) = (value, marker) per step,
    targets (N, 1) = the sum of the two marked values.

    Args:
        rng: the data stream.
        n_samples: examples (before the validation split), >= 10.
        length: T, the steps of a sequence, >= 2 (a marker in each half).
    """
    if n_samples < 10:
        raise ValueError(f"n_samples must be >= 10, got {n_samples}")
    if length < 2:
        raise ValueError(f"length must be >= 2 (one marker in each half), got {length}")
    half = length // 2
    X = np.zeros((n_samples, length, 2))
    X[:, :, 0] = rng.uniform(0.0, 1.0, (n_samples, length))
    rows = np.arange(n_samples)
    first = rng.integers(0, half, n_samples)          # in [0, T/2)
    second = rng.integers(half, length, n_samples)    # in [T/2, T)
    X[rows, first, 1] = X[rows, second, 1] = 1.0
    y = X[rows, first, 0] + X[rows, second, 0]
    return X, y[:, None]


MEMORY = {f.__name__: f for f in (copy_memory,)}
SERIES = {f.__name__: f for f in (adding,)}  # real-valued sequences (DataSpec kind "series")
ADDING_BASELINE = 1.0 / 6.0  # MSE of always predicting 1 (the targets' mean)
