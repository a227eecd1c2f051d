"""Sampling text from a trained language model, one token at a time (nanoGPT's ``generate``).

Any model mapping token ids (B, T) to logits (B, T, V) works: the transformer and the
recurrent models alike. Each new token conditions on the last ``block_size`` tokens (a
transformer knows no positions beyond the length it was trained on), and is drawn from

    p = softmax(logits[-1] / temperature), restricted to the ``top_k`` largest logits.

temperature < 1 sharpens the distribution (safer, more repetitive text), > 1 flattens it.
"""

from __future__ import annotations

import numpy as np


def next_token_probs(logits: np.ndarray, temperature: float = 1.0,
                     top_k: int | None = None) -> np.ndarray:
    """(V,) logits -> (V,) probabilities at ``temperature``, zero outside the ``top_k`` largest
    (ties at the k-th value kept, as torch.topk-based filtering keeps them)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    if top_k is not None and top_k < len(z):
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z < kth, -np.inf, z)
    e = np.exp(z - z.max())
    return e / e.sum()


def generate(model, context: np.ndarray, n_new: int, *, block_size: int,
             temperature: float = 1.0, top_k: int | None = None,
             rng: np.random.Generator | None = None) -> np.ndarray:
    """``context`` (T0,) int token ids followed by ``n_new`` sampled ones, as (T0 + n_new,).

    Args:
        model: a Module in eval mode; forward((1, T) ids) -> (1, T, V) logits.
        n_new: tokens to add.
        block_size: the longest context the model reads (its training length).
        temperature: divides the logits (default 1.0).
        top_k: sample among the k most likely tokens only (default None: all).
        rng: numpy Generator (default seeded 0, so a call is reproducible).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    ids = [int(t) for t in context]
    if not ids:
        raise ValueError("the context needs at least one token")
    for _ in range(n_new):
        window = np.asarray(ids[-block_size:], dtype=np.int64)[None]  # (1, T)
        logits = model.forward(window)[0, -1]  # (V,): the prediction after the last token
        p = next_token_probs(logits, temperature, top_k)
        ids.append(int(rng.choice(len(p), p=p)))
    return np.asarray(ids, dtype=np.int64)
