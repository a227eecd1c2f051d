"""Data sets: a config node -> a seeded train/validation split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlx import registry
from dlx.data.synthetic import SYNTHETIC
from dlx.errors import UsageError


@dataclass
class Dataset:
    name: str
    X_train: np.ndarray  # (N_train, D)
    y_train: np.ndarray  # (N_train,) int64 labels
    X_val: np.ndarray
    y_val: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]


def build_dataset(node, rng: np.random.Generator, dtype=np.float32) -> Dataset:
    """Generate (or load) the data set named by ``node.name`` and carve out the validation split."""
    node = dict(node)
    val_fraction = node.pop("val_fraction", 0.2)
    if not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise UsageError(f"dataset.val_fraction must be in (0, 1), got {val_fraction!r}")
    X, y = registry.build(SYNTHETIC, "dataset", node, rng)
    n_val = max(1, int(round(len(X) * val_fraction)))
    order = rng.permutation(len(X))
    val, train = order[:n_val], order[n_val:]
    X = X.astype(dtype)
    y = y.astype(np.int64)
    return Dataset(node["name"], X[train], y[train], X[val], y[val], int(y.max()) + 1)


__all__ = ["Dataset", "build_dataset", "SYNTHETIC"]
