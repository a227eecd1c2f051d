"""How many examples one evaluation forward pass takes: memory stays bounded on big data sets
(both backends and the figures that predict a whole split use it); and, for text read as
streams, the order and size of the batches an evaluation carries a state through."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

EVAL_CHUNK = 8192  # rows per forward pass when evaluating (bounds memory on big data sets)


def eval_rows(X: np.ndarray) -> int:
    """Examples per forward pass when evaluating: EVAL_CHUNK rows of features, EVAL_CHUNK
    tokens of sequences, EVAL_CHUNK / 32 images: every convolution keeps its im2col copy (k*k
    values per pixel and channel) for a backward pass, so a deep net holds one per layer at
    once: one pass of 1024 MNIST images through the 56-layer resnet (width 4) peaks at 4.1 GB
    resident, of 256 at 1.1 GB."""
    if (X.ndim == 2 and X.dtype.kind == "i") or X.ndim == 3:  # tokens (N, T), series (N, T, D)
        return max(EVAL_CHUNK // X.shape[1], 1)
    return EVAL_CHUNK // 32 if X.ndim == 4 else EVAL_CHUNK


def eval_batches(X: np.ndarray, y: np.ndarray, streams: int | None):
    """(X, y, rows per forward) for an evaluation: as they are in chunks of :func:`eval_rows`,
    or, with ``streams`` (text read as B contiguous streams, a recurrent state carried), the
    rows in stream order (:func:`dlx.data.text.stream_order`) in batches of B, so that each
    forward continues the text where the last one stopped, as in training."""
    if streams is None:
        return X, y, eval_rows(X)
    from dlx.data.text import stream_order

    order = stream_order(len(X), streams)
    return X[order], y[order], streams


def stream_batch(cfg: Mapping[str, Any], data) -> int | None:
    """B, the number of parallel streams, when the data is text read as streams (the batch
    size: one row per stream), else None."""
    if not data.stream:
        return None
    n = len(data.X_train)
    return min(cfg["batch_size"] or n, n)
