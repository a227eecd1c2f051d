"""Data sets: a seeded train/validation(/test) split and the description of one example
(:class:`DataSpec`: feature vectors, images (N, C, H, W) or token sequences)."""

from __future__ import annotations

import numpy as np

from dlx.data.dataset import Dataset
from dlx.data.folds import check_fold, kfold
from dlx.data.memory import MEMORY, SERIES
from dlx.data.sequences import SEQUENCES as _TOY
from dlx.data.spec import DataSpec
from dlx.data.synthetic import SYNTHETIC
from dlx.data.text import TEXT_DATASETS, char_dataset
from dlx.errors import UsageError

# token-sequence tasks: the toy prompt/answer ones and the long-range memory ones
SEQUENCES = {**_TOY, **MEMORY}
IDX_DATASETS = ("mnist", "fashion_mnist")
REGRESSION_DATASETS = ("california_housing",)  # dlx.data.housing: a checksummed CSV file
# dataset.folds=k dataset.fold=i (k-fold cross-validation) works for these
FOLD_DATASETS = (*SYNTHETIC, *IDX_DATASETS, *REGRESSION_DATASETS)
SCALINGS = ("unit", "standardize")


def idx_dataset(rng: np.random.Generator, *, name: str, val_size: int = 5000,
                subset: int | None = None, scaling: str = "unit", folds: int | None = None,
                fold: int | None = 0, fold_seed: int = 0, dtype=np.float32) -> Dataset:
    """MNIST-like IDX data: ``val_size`` examples carved (seeded) from the training ones (60000),
    the first ``subset`` of the rest kept (None = all), pixels scaled to [0, 1] (``unit``) or
    standardized with the training pixels' mean and std (``standardize``); the official 10000
    test examples as the test split.

    With ``folds`` (k-fold cross-validation) ``val_size`` is unused: ``subset`` training images
    (all 60000 if None), drawn by ``fold_seed`` rather than the run's ``rng`` so that every seed
    sees the same ones, are cut into ``folds`` folds and fold ``fold`` validates (None: none,
    every fold trains); ``standardize`` uses the training folds' pixels only."""
    from dlx.data import mnist

    arrays = mnist.load(name)
    n = len(arrays["train_labels"])
    check_idx_split(n, val_size, subset, scaling, folds, fold, fold_seed)
    if folds is None:
        order = rng.permutation(n)
        val, train = order[:val_size], order[val_size:]
        if subset is not None:
            train = train[:subset]
    else:
        pool = np.random.default_rng(fold_seed).permutation(n)[:subset]
        fit, held = kfold(len(pool), folds, fold, fold_seed)
        train, val = pool[fit], pool[held]
    images = arrays["train_images"][:, None]  # (N, 1, H, W): one channel
    spec = DataSpec.image(1, *arrays["train_images"].shape[1:], n_classes=10)

    def prep(x: np.ndarray) -> np.ndarray:
        return x.astype(dtype) / dtype(255)

    X_train, X_val = prep(images[train]), prep(images[val])
    X_test = prep(arrays["test_images"][:, None])
    if scaling == "standardize":
        mean, std = X_train.mean(), X_train.std()
        X_train, X_val, X_test = ((x - mean) / std for x in (X_train, X_val, X_test))
    labels = arrays["train_labels"].astype(np.int64)
    y_test = arrays["test_labels"].astype(np.int64)
    if folds is not None and fold is not None:  # a fold of a cross-validation: the test set
        X_test = y_test = None                  # plays no part (only the refit's is scored)
    return Dataset(name, X_train, labels[train], X_val, labels[val], spec, X_test, y_test,
                   mnist.CLASSES[name])


def check_idx_split(n: int, val_size, subset, scaling, folds=None, fold=0, fold_seed=0) -> None:
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
    if folds is not None:  # cross-validation: no val_size; subset is what is cut into folds
        if subset is not None and not 1 <= subset <= n:
            raise ValueError(f"subset must be in [1, {n}] or null, got {subset}")
        check_fold(folds, fold, subset or n, fold_seed)
        return
    check_fold(folds, fold, seed=fold_seed)
    if not 1 <= val_size < n:
        raise ValueError(f"val_size must be in [1, {n}), got {val_size}")
    if subset is not None and not 1 <= subset <= n - val_size:
        raise ValueError(f"subset must be in [1, {n - val_size}] or null, got {subset}")


def split(name: str, X: np.ndarray, y: np.ndarray, rng: np.random.Generator,
          val_fraction: float, n_classes: int | None = None, dtype=np.float32,
          folds: tuple[int, int | None, int] | None = None) -> Dataset:
    """A seeded train/validation split of generated examples: feature rows (cast to ``dtype``)
    with int labels, token sequences (X, y ints, ``n_classes`` = the vocabulary), or real
    sequences (X (N, T, D), y (N, K) real targets, cast to ``dtype``: a regression whose targets
    are kept in their own units, not standardized, so the loss is the task's own MSE).
    ``folds = (k, fold, seed)``: the validation split is fold ``fold`` of k instead."""
    if folds is not None:
        train, val = kfold(len(X), *folds)
    else:
        if not 0 < val_fraction < 1:
            raise UsageError(f"dataset.val_fraction must be in (0, 1), got {val_fraction!r}")
        n_val = max(1, int(round(len(X) * val_fraction)))
        order = rng.permutation(len(X))
        val, train = order[:n_val], order[n_val:]
    if X.ndim == 3:  # real sequences, real targets
        X, y = X.astype(dtype), y.astype(dtype)
        spec = DataSpec.series(X.shape[1], X.shape[2], y.shape[1])
        k = y.shape[1]
        return Dataset(name, X[train], y[train], X[val], y[val], spec,
                       target_mean=np.zeros(k), target_scale=np.ones(k),
                       description={"task": "regression", "units": "target units",
                                    "standardized": False})
    if n_classes is not None:  # token sequences
        spec = DataSpec.tokens(n_classes, X.shape[1])
        return Dataset(name, X[train], y[train], X[val], y[val], spec)
    X, y = X.astype(dtype), y.astype(np.int64)
    spec = DataSpec.features(X.shape[1], int(y.max()) + 1)
    return Dataset(name, X[train], y[train], X[val], y[val], spec)


def regression_dataset(*, name: str, dtype=np.float32, **options) -> Dataset:
    """A regression data set from a file (``california_housing``): standardized features and
    targets, the targets' training mean and std kept to report errors in their units."""
    from dlx.data.housing import housing_dataset

    X, t, X_val, t_val, X_test, t_test, spec, description = housing_dataset(dtype=dtype, **options)
    return Dataset(name, X, t, X_val, t_val, spec, X_test, t_test,
                   target_mean=np.array([description["target_mean"]]),
                   target_scale=np.array([description["target_scale"]]),
                   description=description)


__all__ = ["Dataset", "DataSpec", "split", "kfold", "check_fold", "idx_dataset", "check_idx_split",
           "SYNTHETIC", "SEQUENCES", "SERIES", "IDX_DATASETS", "TEXT_DATASETS", "REGRESSION_DATASETS",
           "FOLD_DATASETS", "char_dataset", "regression_dataset"]
