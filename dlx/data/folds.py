"""k-fold cross-validation splits: which training examples are fold ``i`` of ``k``.

The assignment is a seeded shuffle of the pool cut into ``k`` near-equal parts. Its seed is the
data set's own (``fold_seed``, or California housing's ``split_seed``), never the run's: every
seed of a sweep sees the same folds, so the spread over seeds and the spread over folds are
not mixed up. The test split is never part of the pool.
"""

from __future__ import annotations

import numpy as np

STREAM = 0xF01D  # mixed into the seed: the fold shuffle is independent of any other draw of it


def check_fold(folds, fold, n: int | None = None, seed=0) -> None:
    """ValueError unless ``folds`` is null (no cross-validation; ``fold`` then 0 or null) or an
    integer >= 2 (at most ``n``) and ``fold`` an integer in [0, folds) or null (every fold
    trains: the refit), and the fold shuffle's ``seed`` an integer >= 0."""
    def integer(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not integer(seed) or seed < 0:
        raise ValueError(f"the fold seed must be an integer >= 0, got {seed!r}")

    if folds is None:
        if fold not in (0, None):
            raise ValueError(f"fold={fold!r} needs folds (e.g. folds=5 fold={fold})")
        return
    if not integer(folds) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2 or null (no cross-validation), "
                         f"got {folds!r}")
    if n is not None and folds > n:
        raise ValueError(f"folds must be at most the {n} examples cross-validated, got {folds}")
    if fold is not None and (not integer(fold) or not 0 <= fold < folds):
        raise ValueError(f"fold must be an integer in [0, {folds - 1}] (or null: train on all "
                         f"{folds} folds), got {fold!r}")


def kfold(n: int, folds: int, fold: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) sorted indices into range(n): validation is part ``fold`` of a ``seed``ed
    shuffle cut into ``folds`` parts (sizes differ by at most one), training the other parts.
    ``fold=None``: every index trains, validation is empty (the refit after cross-validation)."""
    check_fold(folds, fold, n, seed)
    parts = np.array_split(np.random.default_rng((STREAM, seed)).permutation(n), folds)
    if fold is None:
        return np.arange(n), np.arange(0)
    train = np.concatenate([p for j, p in enumerate(parts) if j != fold])
    return np.sort(train), np.sort(parts[fold])
