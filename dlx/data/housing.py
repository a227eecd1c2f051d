"""California housing (1990 census block groups; Pace and Barry 1997): regression of the median
house value of a district, in dollars, from 8 numbers and a category.

The file is ``$DLX_DATA_DIR/california_housing/housing.csv`` (default ``~/.cache/dlx/``), the
variant of Géron's *Hands-On Machine Learning* (20,640 rows, 207 missing ``total_bedrooms``,
the categorical ``ocean_proximity``); it is checked against its SHA-256 on every read and
downloaded from its public source when missing, as :mod:`dlx.data.text` does for tiny
Shakespeare.

:func:`housing_dataset` does the preprocessing a learner must do, every statistic fitted on the
training split only, so nothing of the validation or test districts leaks into the model:

1. a fixed, seeded split (``split_seed``, not the run's seed: every run and seed is scored on
   the same test districts): 20% test (4,128), 10% validation (2,064), 70% training (14,448);
2. missing ``total_bedrooms`` imputed with the training split's median;
3. ``ocean_proximity`` one-hot over the training split's categories, the most frequent one
   (``<1H OCEAN``) dropped as the reference: with a bias, all five columns would sum to the
   bias column and make the least-squares design singular;
4. every feature standardized, (x - mean) / std with the training split's mean and std;
5. the target, ``median_house_value`` in dollars, standardized the same way for training;
   the mean and std are kept (``Dataset.target_mean``, ``target_scale``), so RMSE and MAE are
   reported in dollars.

With ``folds=k`` (k-fold cross-validation) the training and validation districts together are
cut into k folds (:func:`dlx.data.folds.kfold`, seeded by ``split_seed``), fold ``fold``
validates, and steps 2-5 are refitted on the other k - 1 folds; the test districts stay
the same and untouched.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from pathlib import Path

import numpy as np

from dlx.data.fetch import fetch_verified
from dlx.data.folds import check_fold, kfold
from dlx.data.spec import DataSpec
from dlx.errors import UsageError

log = logging.getLogger("dlx.data")

NAME = "california_housing"
URL = "https://raw.githubusercontent.com/ageron/handson-ml2/master/datasets/housing/housing.csv"
SHA256 = "8a3727f4cf54ac1a327f69b1d5b4db54c5834ea81c6e4efc0d163300022a685e"
FILE = "housing.csv"
NUMERIC = ("longitude", "latitude", "housing_median_age", "total_rooms", "total_bedrooms",
           "population", "households", "median_income")
CATEGORY, TARGET = "ocean_proximity", "median_house_value"
CAP = 500_001.0  # the census survey's top code: every value above $500,000 is recorded as it


def path() -> Path:
    from dlx.data.mnist import data_dir  # one DLX_DATA_DIR rule for every file

    return data_dir() / NAME / FILE


def _download(target: Path) -> None:
    """Fetch the file into ``target``, verified before it is kept; UsageError if that fails."""
    fetch_verified(NAME, URL, SHA256, target)


_LOADED: dict[tuple, dict] = {}  # the last table read, by (path, mtime, size)


def load() -> dict[str, np.ndarray]:
    """The verified table (downloaded first if missing): each numeric column as float64 (NaN
    where empty), ``ocean_proximity`` as a str array, the target in dollars."""
    file = path()
    if not file.is_file():
        _download(file)
    stat = file.stat()
    key = (str(file), stat.st_mtime_ns, stat.st_size)
    if key in _LOADED:  # validation and training in one process parse the file once
        return _LOADED[key]
    data = file.read_bytes()
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise UsageError(f"{file}: checksum mismatch (corrupt or not the {NAME} file); "
                         f"delete it to download it again")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    header, body = rows[0], rows[1:]
    columns = {name: [r[i] for r in body] for i, name in enumerate(header)}
    table = {name: np.array([float(v) if v else np.nan for v in columns[name]])
             for name in (*NUMERIC, TARGET)}
    table[CATEGORY] = np.array(columns[CATEGORY])
    _LOADED.clear()
    _LOADED[key] = table
    return table


def split_indices(n: int, split_seed: int, val_fraction: float,
                  test_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) row indices of a seeded permutation: test first, then validation."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction and test_fraction must be in (0, 1) with a sum below 1, "
                         f"got {val_fraction}, {test_fraction}")
    order = np.random.default_rng(split_seed).permutation(n)
    n_test, n_val = int(round(n * test_fraction)), int(round(n * val_fraction))
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def preprocess(table: dict[str, np.ndarray], train: np.ndarray) -> dict:
    """The preprocessing fitted on the rows ``train`` (see the module's docstring): a function
    ``features(rows) -> (len(rows), D)`` float64 and what was fitted (medians, categories,
    means and stds, the target's mean and std)."""
    bedrooms = table["total_bedrooms"]
    median = float(np.nanmedian(bedrooms[train]))  # the training districts' median only
    counts = {c: int(np.sum(table[CATEGORY][train] == c))
              for c in sorted(set(table[CATEGORY][train]))}
    reference = max(counts, key=counts.get)  # the most frequent: dropped, the bias stands for it
    categories = [c for c in counts if c != reference]

    def raw(rows: np.ndarray) -> np.ndarray:
        cols = [np.where(np.isnan(table[c][rows]), median, table[c][rows]) if c == "total_bedrooms"
                else table[c][rows] for c in NUMERIC]
        cols += [(table[CATEGORY][rows] == c).astype(np.float64) for c in categories]
        return np.stack(cols, axis=1)  # (rows, 8 + categories - 1)

    fitted = raw(train)
    mean, std = fitted.mean(axis=0), fitted.std(axis=0)
    y = table[TARGET][train]
    return {
        "features": lambda rows: (raw(rows) - mean) / std,
        "feature_names": [*NUMERIC, *(f"{CATEGORY}={c}" for c in categories)],
        "imputed_total_bedrooms": median, "categories": list(counts),
        "reference_category": reference, "feature_mean": mean, "feature_std": std,
        "target_mean": float(y.mean()), "target_std": float(y.std()),
    }


def housing_dataset(*, split_seed: int = 42, val_fraction: float = 0.1,
                    test_fraction: float = 0.2, subset: int | None = None,
                    folds: int | None = None, fold: int | None = 0, dtype=np.float32) -> tuple:
    """California housing as standardized arrays: (X_train, t_train, X_val, t_val, X_test,
    t_test, spec, description), targets t (N, 1) standardized with the training split's mean
    and std (``description['target_mean']``, ``['target_std']``, in dollars).

    Args:
        split_seed: the permutation the split is cut from (fixed: the same districts for every
            run seed).
        val_fraction: share of the districts for validation (model choices, early stopping).
        test_fraction: share held out as the test set, evaluated once at the end.
        subset: keep only this many training districts (the first of the fixed split; null:
            all), e.g. to make a model overfit; with folds, this many are cut into folds.
        folds: k-fold cross-validation of the training and validation districts together
            (null: the fixed validation split); val_fraction is then unused.
        fold: which of the ``folds`` parts validates (null: none, all train: the refit).
        dtype: of the returned arrays.
    """
    check_fold(folds, fold)
    table = load()
    train, val, test = split_indices(len(table[TARGET]), split_seed, val_fraction, test_fraction)
    most = len(train) + (folds is not None) * len(val)  # with folds, validation's are cut too
    if subset is not None and (not isinstance(subset, int) or isinstance(subset, bool)
                               or not 1 <= subset <= most):
        raise ValueError(f"subset must be an integer in [1, {most}] or null, got {subset!r}")
    if folds is not None:  # the same test districts; the others cut into folds (by split_seed)
        pool = np.concatenate([train, val])[:subset]
        fit, held = kfold(len(pool), folds, fold, split_seed)
        train, val = pool[fit], pool[held]
    elif subset is not None:
        train = train[:subset]
    prep = preprocess(table, train)  # refit on each fold's training part: nothing of val leaks
    y_mean, y_std = prep["target_mean"], prep["target_std"]

    def arrays(rows):
        t = (table[TARGET][rows] - y_mean) / y_std
        return prep["features"](rows).astype(dtype), t[:, None].astype(dtype)  # (N, D), (N, 1)

    (X_train, t_train), (X_val, t_val), (X_test, t_test) = map(arrays, (train, val, test))
    if folds is not None and fold is not None:  # a fold of a cross-validation: no test set
        X_test = t_test = None                  # (only the refit on every fold is scored)
    spec = DataSpec.regression(X_train.shape[1], 1)
    description = {
        "task": "regression", "target": TARGET, "units": "US dollars",
        "target_mean": y_mean, "target_scale": y_std, "target_cap": CAP,
        "sizes": {"train": len(train), "val": len(val), "test": len(test)},
        "split_seed": split_seed, "folds": folds, "fold": fold,
        "features": prep["feature_names"],
        "imputed_total_bedrooms": prep["imputed_total_bedrooms"],
        "reference_category": prep["reference_category"],
    }
    return X_train, t_train, X_val, t_val, X_test, t_test, spec, description
