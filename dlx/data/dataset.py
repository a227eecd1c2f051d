"""A data set as the trainer reads it: the splits as arrays, the description of one example
(:class:`~dlx.data.spec.DataSpec`), and what preprocessing was fitted."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dlx.data.spec import DataSpec


@dataclass
class Dataset:
    name: str
    X_train: np.ndarray  # (N_train, *spec.shape)
    y_train: np.ndarray  # (N_train,) int64 labels; tokens: (N_train, T)
    X_val: np.ndarray
    y_val: np.ndarray
    spec: DataSpec
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    classes: list[str] = field(default_factory=list)
    # regression: targets are stored standardized, t = (y - target_mean) / target_scale, with
    # the training split's (K,) mean and std; metrics multiply errors back into y's units
    target_mean: np.ndarray | None = None
    target_scale: np.ndarray | None = None
    description: dict = field(default_factory=dict)  # preprocessing fitted, for summary.json
    # text as contiguous streams (dlx.data.text.stream_order): rows in order, state carried
    stream: bool = False

    @property
    def n_classes(self) -> int:
        return self.spec.n_classes

    def in_units(self, t: np.ndarray) -> np.ndarray:
        """Standardized regression targets or predictions (N, K) back in the targets' units."""
        return t * self.target_scale + self.target_mean

