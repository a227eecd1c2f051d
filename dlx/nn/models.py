"""Models by name: ``factory(n_in, n_out, *, dtype, **options) -> Module`` producing logits."""

from __future__ import annotations

import numpy as np

from dlx.nn.core import Module
from dlx.nn.layers import Linear


def logreg(n_in: int, n_out: int, *, dtype=np.float32) -> Module:
    """Logistic regression: logits = x W + b (one output for 2 classes, else one per class)."""
    return Linear(n_in, n_out, dtype=dtype, name="linear")


MODELS = {"logreg": logreg}
