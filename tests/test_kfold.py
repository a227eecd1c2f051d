"""k-fold cross-validation (``dataset.folds=k dataset.fold=i``) and ``experiment=cv_lambda``:
the folds partition the cross-validated examples (disjoint, covering them, the test split
untouched), they are the same for every run seed, the preprocessing is fitted on the training
folds only, bad values are one error line, a sweep over folds aggregates with ``dlx compare
--group-by``, and cross-validation picks an interior lambda where the model overfits."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from dlx.assemble import build_dataset, rngs
from dlx.data import kfold
from tests.conftest import assert_one_error_line
from tests.test_train import config


def test_kfold_partitions_and_is_fixed_by_its_seed():
    n, k = 103, 5
    vals, trains = zip(*[kfold(n, k, i, seed=7)[::-1] for i in range(k)])
    every = np.concatenate(vals)
    assert sorted(every) == list(range(n))  # disjoint and covering
    assert {len(v) for v in vals} == {20, 21}  # near-equal parts
    for v, t in zip(vals, trains):
        assert np.array_equal(np.union1d(v, t), np.arange(n)) and not np.intersect1d(v, t).size
    assert all(np.array_equal(a, b) for a, b in zip(vals, (kfold(n, k, i, 7)[1] for i in range(k))))
    assert not np.array_equal(vals[0], kfold(n, k, 0, 8)[1])  # another seed, other folds
    train, val = kfold(n, k, None, 7)  # the refit: every example trains
    assert np.array_equal(train, np.arange(n)) and len(val) == 0


def _rows(X: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in X.reshape(len(X), -1)}


def test_synthetic_folds_are_the_same_for_every_run_seed():
    node = {"name": "moons", "n_samples": 200, "noise": 0.2, "val_fraction": 0.2,
            "folds": 4, "fold": 1, "fold_seed": 0}
    a, b = (build_dataset(node, rngs(seed)["data"]) for seed in (0, 1))
    assert np.array_equal(a.X_val, b.X_val) and np.array_equal(a.X_train, b.X_train)
    folds = [build_dataset({**node, "fold": i}, rngs(0)["data"]) for i in range(4)]
    vals = [_rows(d.X_val) for d in folds]
    assert sum(map(len, vals)) == 200 and len(set().union(*vals)) == 200
    assert all(_rows(d.X_train) == set().union(*vals) - v for d, v in zip(folds, vals))


@pytest.mark.needs("mnist")
def test_mnist_folds_partition_the_subset_and_leave_the_test_set_alone():
    node = {"name": "mnist", "val_size": 5000, "subset": 300, "scaling": "standardize",
            "folds": 3, "fold_seed": 0}
    folds = [build_dataset({**node, "fold": i}, rngs(i)["data"], np.float64) for i in range(3)]
    refit = build_dataset({**node, "fold": None}, rngs(5)["data"], np.float64)
    plain = build_dataset({**node, "folds": None, "fold": 0}, rngs(0)["data"], np.float64)
    for d in folds:
        assert d.X_test is None and d.y_test is None  # a fold's run never sees the test set
        assert len(d.X_val) == 100 and len(d.X_train) == 200
        # standardized with the training folds' pixels only: exactly mean 0, sd 1 there
        assert abs(d.X_train.mean()) < 1e-12 and d.X_train.std() == pytest.approx(1, abs=1e-12)
        assert abs(d.X_val.mean()) > 1e-4
    assert len(refit.X_val) == 0 and len(refit.X_train) == 300
    np.testing.assert_array_equal(refit.y_test, plain.y_test)  # the official test set, as ever
    # the folds' validation images, back in [0, 1] units, are the refit's 300 training images
    unit = {**node, "scaling": "unit"}
    vals = [_rows(build_dataset({**unit, "fold": i}, rngs(0)["data"], np.float64).X_val)
            for i in range(3)]
    pool = _rows(build_dataset({**unit, "fold": None}, rngs(0)["data"], np.float64).X_train)
    assert sum(map(len, vals)) == 300 and set().union(*vals) == pool


@pytest.mark.needs("california_housing")
def test_housing_folds_refit_the_preprocessing_on_the_training_folds():
    from dlx.data import housing

    node = {"name": "california_housing", "split_seed": 42, "val_fraction": 0.1,
            "test_fraction": 0.2, "subset": None, "folds": 4}
    rng = np.random.default_rng(0)
    table = housing.load()
    train0, val0, test0 = housing.split_indices(len(table[housing.TARGET]), 42, 0.1, 0.2)
    pool = np.concatenate([train0, val0])
    dollars = []
    for i in range(4):
        d = build_dataset({**node, "fold": i}, rng, np.float64)
        assert d.X_test is None
        X = d.X_train  # standardized with its own (the training folds') mean and sd
        np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-10)
        np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-10)
        assert np.abs(d.X_val.mean(axis=0)).max() > 1e-3  # not the validation fold's
        fit_rows = pool[kfold(len(pool), 4, i, 42)[0]]
        assert d.description["imputed_total_bedrooms"] == np.nanmedian(
            table["total_bedrooms"][fit_rows])
        assert d.target_mean[0] == pytest.approx(table[housing.TARGET][fit_rows].mean(), rel=1e-12)
        dollars.append(d.in_units(d.y_val)[:, 0])
    # the validation folds are the 16,512 non-test districts, each once
    np.testing.assert_allclose(np.sort(np.concatenate(dollars)),
                               np.sort(table[housing.TARGET][pool]), rtol=1e-12)
    refit = build_dataset({**node, "fold": None}, rng, np.float64)
    plain = build_dataset({**node, "folds": None, "fold": 0}, rng, np.float64)
    np.testing.assert_allclose(refit.in_units(refit.y_test), plain.in_units(plain.y_test),
                               rtol=1e-12)  # the same test districts
    assert len(refit.X_train) == len(pool) and len(refit.X_val) == 0


def test_config_validation_refuses_bad_folds():
    from dlx.errors import UsageError

    for overrides, needle in [(("dataset=moons", "dataset.folds=5", "dataset.fold=5"), "[0, 4]"),
                              (("dataset=moons", "dataset.folds=1"), ">= 2"),
                              (("dataset=moons", "dataset.fold=2"), "needs folds"),
                              (("dataset=copy", "model=transformer", "+dataset.folds=3"),
                               "k-fold cross-validation is for"),
                              (("dataset=moons", "dataset.folds=3", "dataset.fold=null",
                                "early_stopping.patience=2"), "no validation split")]:
        with pytest.raises(UsageError) as e:
            config(*overrides)
        assert needle in str(e.value), (overrides, str(e.value))


@pytest.mark.slow
@pytest.mark.parametrize("args, needle", [
    (("dataset=mnist", "dataset.subset=100", "dataset.folds=5", "dataset.fold=5"), "fold must be"),
    (("dataset=california_housing", "model=linreg", "dataset.folds=1"), "folds must be"),
    (("dataset=tinyshakespeare", "model=transformer", "+dataset.folds=5"), "not 'tinyshakespeare'"),
])
def test_bad_folds_are_one_error_line(cli, args, needle):
    assert_one_error_line(cli("run", *args), needle)
    assert not (cli.cwd / "runs").exists()


@pytest.mark.slow
def test_a_sweep_over_folds_aggregates_with_compare_group_by(cli):
    """`-m ... dataset.fold=range(3)` and `dlx compare --group-by regularizer.lam`: one row per
    lambda, n = 3 folds, the mean and sd of the members' values."""
    result = cli("run", "-m", "dataset=moons", "dataset.folds=3", "dataset.fold=range(3)",
                 "regularizer=l2", "regularizer.lam=0.001,0.3", "epochs=2")
    assert result.returncode == 0, result.stderr
    sweep = cli.run_dir(result)
    out = cli.cwd / "grouped.csv"
    result = cli("compare", str(sweep), "--group-by", "regularizer.lam", "--csv", str(out))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2
    result = cli("compare", str(sweep), "--csv", str(cli.cwd / "all.csv"))
    members = list(csv.DictReader((cli.cwd / "all.csv").open()))
    assert len(members) == 6
    for row in rows:
        lam = row["regularizer.lam"]
        values = [float(m["final.val/loss"]) for m in members if m["regularizer.lam"] == lam]
        assert len(values) == 3 and int(row["n"]) == 3
        mean, sd = map(float, row["final.val/loss"].split(" ± "))  # as printed: 4 and 2 digits
        assert mean == pytest.approx(np.mean(values), rel=1e-3)
        assert sd == pytest.approx(np.std(values, ddof=1), rel=0.05)


@pytest.mark.science
def test_cross_validation_picks_an_interior_lambda_where_the_model_overfits(tmp_path):
    """A wide MLP on 60 noisy moons trained to memorize them: cross-validated loss is worst at
    the smallest lambda (overfit) and the largest (every weight driven to ~0: loss ln 2), so
    both choices are inside the grid; the refit has no validation split and one test score."""
    from dlx.experiments import cv_lambda
    from dlx.records.metrics import MetricsWriter

    cfg = config("experiment=cv_lambda", "dataset=moons", "dataset.n_samples=60",
                 "dataset.noise=0.35", "model.hidden=[64,64]", "optimizer.lr=0.01",
                 "~dataset.subset", "epochs=300", "cv_lambda.metric=loss",
                 "cv_lambda.grid=[1e-5,1e-3,1e-2,1e-1,1]")
    rec = MetricsWriter(tmp_path / "metrics.csv")
    result = cv_lambda.run(cfg, rec, tmp_path)
    rec.close()
    cv = result.extra["cv_lambda"]
    curve = [c["mean"] for c in cv["curve"]]
    assert 1e-5 < cv["min"] < 1 and 1e-5 < cv["one_se"] < 1, curve
    assert curve[0] > min(curve) and curve[-1] > min(curve)
    assert cv["one_se"] >= cv["min"]
    assert cv["refit_lam"] == cv["min"]
    table = list(csv.DictReader((tmp_path / cv_lambda.CV_CSV).open()))
    assert len(table) == 25 and {int(r["fold"]) for r in table} == set(range(5))
    assert not any(k.startswith("val/") for k in rec.final)  # the refit: no validation split
