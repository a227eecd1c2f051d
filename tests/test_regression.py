"""Regression as a task: the squared-error loss (finite differences, torch), RMSE / MAE / R^2
against numpy, targets standardized for training and reported in their own units, linreg and
MLP regression, early stopping on a regression metric, both backends, and the CLI end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dlx.data import Dataset, DataSpec
from dlx.errors import UsageError
from dlx.nn import MSE, loss_for
from dlx.nn.metrics import RegressionScores, names, scorer
from dlx.nn.models import MODELS

# --- the loss -------------------------------------------------------------------------------


def test_mse_gradient_matches_centered_finite_differences_in_float64():
    rng = np.random.default_rng(0)
    z, y = rng.standard_normal((7, 3)), rng.standard_normal((7, 3))
    loss = MSE()
    assert loss.forward(z, y) == pytest.approx(np.mean((z - y) ** 2), rel=1e-15)
    grad = loss.backward()
    h, numeric = 1e-6, np.zeros_like(z)
    for i in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[i] += h
        zm[i] -= h
        numeric[i] = (MSE().forward(zp, y) - MSE().forward(zm, y)) / (2 * h)
    rel = np.abs(grad - numeric).max() / np.abs(numeric).max()
    assert rel < 1e-7, rel


def test_mse_equals_torch_mse_loss_forward_and_backward(torch):
    rng = np.random.default_rng(1)
    z, y = rng.standard_normal((9, 2)), rng.standard_normal((9, 2))
    tz = torch.tensor(z, requires_grad=True)
    expected = torch.nn.functional.mse_loss(tz, torch.tensor(y))
    expected.backward()
    ours = MSE()
    assert ours.forward(z, y) == pytest.approx(expected.item(), abs=1e-15)
    np.testing.assert_allclose(ours.backward(), tz.grad.numpy(), rtol=0, atol=1e-15)
    # a single target as (N,) labels against (N, 1) outputs: the shape the data sets give
    z1, y1 = z[:, :1], y[:, 0]
    assert MSE().forward(z1, y1) == pytest.approx(np.mean((z1[:, 0] - y1) ** 2), rel=1e-15)


def test_the_task_chooses_the_loss_and_the_metrics():
    spec = DataSpec.regression(5, n_targets=2)
    assert spec.task == "regression" and spec.n_out == 2 and isinstance(loss_for(spec), MSE)
    assert names("regression") == ("rmse", "mae", "r2") and names("classification") == ("acc",)
    assert DataSpec.features(2, 2).task == "classification" and DataSpec.tokens(9, 4).task == "sequence"
    assert DataSpec.features(3, 2).n_out == 1  # classification unchanged: one logit for 2 classes
    with pytest.raises(ValueError):
        DataSpec("features", (3,), 0, "regression", 0)  # regression needs a target
    with pytest.raises(ValueError):
        DataSpec("tokens", (3,), 5, "regression", 1)  # token data is a sequence task


# --- the metrics ----------------------------------------------------------------------------

def test_rmse_mae_r2_against_numpy_in_original_units_and_chunk_independent():
    rng = np.random.default_rng(2)
    mean, scale = np.array([200_000.0, -3.0]), np.array([100_000.0, 0.5])
    y = rng.standard_normal((50, 2)) * scale + mean  # in units
    pred = y + rng.standard_normal((50, 2)) * scale * 0.3
    t, p = (y - mean) / scale, (pred - mean) / scale  # what the model sees and outputs
    scores = RegressionScores(scale)
    for lo in range(0, 50, 16):  # evaluation goes in chunks
        scores.add(p[lo:lo + 16], t[lo:lo + 16])
    rmse, mae, r2 = scores.result()
    assert rmse == pytest.approx(np.sqrt(np.mean((pred - y) ** 2)), rel=1e-12)
    assert mae == pytest.approx(np.mean(np.abs(pred - y)), rel=1e-12)
    by_hand = [1 - np.sum((pred[:, j] - y[:, j]) ** 2) / np.sum((y[:, j] - y[:, j].mean()) ** 2)
               for j in range(2)]
    assert r2 == pytest.approx(np.mean(by_hand), rel=1e-12)


def test_r2_is_one_for_a_perfect_fit_and_zero_for_the_mean():
    rng = np.random.default_rng(3)
    t = rng.standard_normal((40, 1)) + 2.0
    perfect = scorer("regression", [7.0])
    perfect.add(t.copy(), t)
    rmse, mae, r2 = perfect.result()
    assert rmse == 0.0 and mae == 0.0 and r2 == 1.0
    mean = scorer("regression", [7.0])
    mean.add(np.full_like(t, t.mean()), t)
    rmse, mae, r2 = mean.result()
    assert r2 == pytest.approx(0.0, abs=1e-12)
    assert rmse == pytest.approx(7.0 * t.std(), rel=1e-12)  # the spread, in units


# --- models ---------------------------------------------------------------------------------

def test_linreg_is_one_linear_layer_and_mlp_outputs_follow_n_targets():
    spec = DataSpec.regression(4, n_targets=3)
    model = MODELS["linreg"](spec, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((6, 4))
    assert [p.data.shape for p in model.parameters()] == [(4, 3), (3,)]
    np.testing.assert_allclose(model.forward(x), x @ model.W.data + model.b.data)
    assert MODELS["mlp"](spec, hidden=[5], dtype=np.float64).forward(x).shape == (6, 3)
    # the hand-written backward through Linear and MSE, per parameter, in float64
    from dlx.nn.gradcheck import check_model

    rng = np.random.default_rng(1)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.data.shape)
    errors = check_model(model, MSE(), x, rng.standard_normal((6, 3)))
    assert set(errors) == {"linear.W", "linear.b"} and max(errors.values()) < 1e-7, errors
    with pytest.raises(ValueError, match="use logreg"):
        MODELS["linreg"](DataSpec.features(4, 3))
    with pytest.raises(ValueError, match="use linreg"):
        MODELS["logreg"](spec)


# --- training: units, early stopping, both backends ----------------------------------------

def toy(n=120, d=3, seed=0, dtype=np.float64) -> Dataset:
    """y = x w + 5 + noise in 'units' with mean 1000 and std ~300, standardized on the training
    rows as a regression data set does."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (X @ np.array([200.0, -100.0, 50.0])[:d] + 1000.0 + 30 * rng.standard_normal(n))[:, None]
    tr, va = slice(0, 80), slice(80, n)
    mean, scale = y[tr].mean(axis=0), y[tr].std(axis=0)
    t = (y - mean) / scale
    return Dataset("toy", X[tr].astype(dtype), t[tr].astype(dtype), X[va].astype(dtype),
                   t[va].astype(dtype), DataSpec.regression(d), target_mean=mean,
                   target_scale=scale, description={"task": "regression", "units": "units"})


def cfg_for(model="linreg", **top):
    from tests.test_train import config

    # composed (and validated) on the default classification data; the toy replaces the data
    cfg = config("model=mlp", "dtype=float64", "optimizer=sgd", "optimizer.lr=0.05",
                 "epochs=15", "batch_size=16")
    if model == "linreg":
        cfg["model"] = {"name": "linreg"}
    cfg.update(top)
    return cfg


def test_reported_errors_are_in_the_targets_units_not_standardized(tmp_path):
    from dlx.records.metrics import MetricsWriter
    from dlx.training import train
    from dlx.training.backend import NumpyBackend

    data = toy()
    cfg = cfg_for()
    backend = NumpyBackend(cfg, data)
    rec = MetricsWriter(tmp_path / "metrics.csv")
    result = train(cfg, rec, "none", backend=backend)
    rec.close()
    assert result.extra["data"] == {"task": "regression", "units": "units"}
    pred = data.in_units(backend.model.forward(data.X_val))
    y = data.in_units(data.y_val)
    assert rec.final["val/rmse"] == pytest.approx(np.sqrt(np.mean((pred - y) ** 2)), rel=1e-12)
    assert rec.final["val/mae"] == pytest.approx(np.mean(np.abs(pred - y)), rel=1e-12)
    # the loss stays the standardized MSE: RMSE = scale * sqrt(loss)
    assert rec.final["val/rmse"] == pytest.approx(data.target_scale[0] * math.sqrt(rec.final["val/loss"]),
                                                  rel=1e-12)
    assert 20 < rec.final["val/rmse"] < 60  # the noise is 30 units: learnt, in units
    header = (tmp_path / "metrics.csv").read_text().splitlines()
    assert not any(",acc," in line for line in header)
    assert rec.best["val/rmse"] <= rec.final["val/rmse"] and rec.best["val/r2"] >= rec.final["val/r2"]


def test_early_stopping_minimizes_rmse_and_maximizes_r2():
    from dlx.training.monitors import EarlyStopping

    class Weights:
        def state_dict(self):
            return {}

    for monitor, values in (("val/rmse", [5.0, 4.0, 4.5, 4.6]), ("val/r2", [0.1, 0.5, 0.4, 0.3])):
        es = EarlyStopping(2, monitor, 0.0)
        stops = [es.check(e, {monitor: v}, Weights()) for e, v in enumerate(values, 1)]
        assert es.best_epoch == 2 and stops == [False, False, False, True], monitor


def test_a_monitor_the_task_does_not_log_is_a_usage_error():
    from dlx.config import _check_metric_names

    top = {"early_stopping": {"patience": 3, "monitor": "val/acc"}, "monitor": "best:val/loss"}
    with pytest.raises(UsageError, match="regression runs log loss, rmse, mae, r2, not 'acc'"):
        _check_metric_names(top, "regression")
    top["early_stopping"]["monitor"] = "val/rmse"
    _check_metric_names(top, "regression")
    with pytest.raises(UsageError, match="not 'rmse'"):
        _check_metric_names(top, "classification")
    with pytest.raises(UsageError, match="schedule.monitor: regression runs log"):
        _check_metric_names(top, "regression", {"name": "reduce_on_plateau", "monitor": "val/acc"})
    _check_metric_names(top, "regression", {"name": "reduce_on_plateau", "monitor": "val/loss"})


def test_torch_backend_trains_the_same_regression(torch, tmp_path):
    """backend=torch (nn.MSELoss on (N, K) targets) gives the same per-step losses and metrics
    as the NumPy backend in float64."""
    from dlx.records.metrics import MetricsWriter
    from dlx.training import train
    from dlx.training.backend import NumpyBackend
    from dlx.training.torch_backend import TorchBackend

    finals = []
    for name, make in (("np", NumpyBackend), ("torch", TorchBackend)):
        data = toy()
        cfg = cfg_for("mlp", backend=name if name == "torch" else "numpy", epochs=3)
        cfg["model"]["hidden"] = [6]
        rec = MetricsWriter(tmp_path / f"{name}.csv")
        train(cfg, rec, "none", backend=make(cfg, data))
        rec.close()
        finals.append(rec)
    ours, theirs = finals
    np.testing.assert_allclose([v for _, v in ours.series("batch/loss")],
                               [v for _, v in theirs.series("batch/loss")], rtol=1e-12)
    for key in ("val/rmse", "val/mae", "val/r2", "train/loss"):
        assert ours.final[key] == pytest.approx(theirs.final[key], rel=1e-12), key


# --- end to end -----------------------------------------------------------------------------

@pytest.mark.needs("california_housing")
@pytest.mark.slow
def test_cli_regression_run_records_units_figures_and_reads_back(cli):
    args = ("run", "model=linreg", "dataset=california_housing", "optimizer=adam", "epochs=2",
            "batch_size=256",
            "early_stopping.patience=5", "early_stopping.monitor=val/rmse", "monitor=best:val/r2")
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    run = cli.run_dir(result)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["units"] == "US dollars" and summary["data"]["target_scale"] > 1e4
    assert 50_000 < summary["final"]["test/rmse"] < 120_000  # dollars, not standardized units
    assert "val/acc" not in summary["final"] and "test/acc" not in summary["final"]
    plots = {p.name for p in (run / "plots").iterdir()}
    assert {"rmse.png", "r2.png", "loss.png", "predicted_vs_actual.png"} <= plots
    assert "acc.png" not in plots
    assert cli("show", str(run)).returncode == 0
    compare = cli("compare", str(run))
    assert compare.returncode == 0 and "val/rmse" in compare.stdout.replace("\n", "")
    rerun = cli(*args)  # same config and seed: the same metrics, byte for byte
    assert (cli.run_dir(rerun) / "metrics.csv").read_bytes() == (run / "metrics.csv").read_bytes()
    bad = cli("run", "model=linreg", "dataset=california_housing", "early_stopping.patience=2",
              "early_stopping.monitor=val/acc")
    assert bad.returncode == 2 and bad.stderr.count("error:") == 1 and "Traceback" not in bad.stderr
