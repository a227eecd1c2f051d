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
memoryless baseline look better the longer the delay). The ``adding`` task (a regression
target) is not here: the trainer's losses are classification losses.

``fn(rng, **options) -> (inputs (N, 2S+T) int64, targets (N, 2S+T) int64, vocabulary size)``.
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


MEMORY = {f.__name__: f for f in (copy_memory,)}
