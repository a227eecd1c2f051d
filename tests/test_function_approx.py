"""The function-approximation experiment: the 1-D function data set, and the known results it
exists to show — a one-hidden-layer ReLU net fits sin where a line cannot, |x| is two ReLU
units, a jump needs more units than a smooth function for the same error, and a ReLU net
continues linearly outside its training interval while a tanh net saturates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlx.data.synthetic import TARGETS, function_dataset
from dlx.errors import UsageError
from dlx.experiments import function_approx as fa
from tests.conftest import assert_one_error_line

SEEDS = (0, 1, 2)


def config(*overrides: str) -> dict:
    from tests.test_train import config as compose

    return compose("experiment=function_approx", *overrides)


def data_for(cfg):
    from dlx.assemble import build_data

    return build_data(cfg)


# --- the data set -----------------------------------------------------------------------------

def test_function_data_standardized_targets_and_a_noise_free_test_grid():
    data = function_dataset(np.random.default_rng(0), target="sin", n_samples=100, noise=0.5,
                            test_points=64)
    assert data.spec.task == "regression" and data.spec.shape == (1,) and data.spec.n_out == 1
    assert data.X_train.shape == (75, 1) and data.X_val.shape == (25, 1)
    assert data.y_train.mean() == pytest.approx(0, abs=1e-12)
    assert data.y_train.std() == pytest.approx(1, abs=1e-12)
    assert np.all(np.abs(data.X_train) <= np.pi)
    grid = np.linspace(-np.pi, np.pi, 64)
    np.testing.assert_array_equal(data.X_test[:, 0], grid)
    np.testing.assert_allclose(data.in_units(data.y_test)[:, 0], np.sin(grid), atol=1e-12)
    # noisy samples: the residuals from f have about the noise's sd
    resid = data.in_units(data.y_train)[:, 0] - np.sin(data.X_train[:, 0])
    assert 0.4 < resid.std() < 0.6
    again = function_dataset(np.random.default_rng(0), target="sin", n_samples=100, noise=0.5,
                             test_points=64)
    np.testing.assert_array_equal(again.y_train, data.y_train)


@pytest.mark.parametrize("node, needle", [
    ({"target": "cos"}, "target must be one of"),
    ({"low": 1.0, "high": -1.0}, "low < high"),
    ({"noise": -1}, "noise"),
    ({"n_samples": 4, "val_fraction": 0.9}, "no training sample"),
    ({"wiggle": 1}, "unknown key dataset.wiggle"),
])
def test_bad_function_data_is_a_usage_error(node, needle):
    from dlx.assemble import build_dataset

    with pytest.raises(UsageError, match=needle):
        build_dataset({"name": "function", **node}, np.random.default_rng(0))


# --- known results ----------------------------------------------------------------------------

@pytest.mark.science
def test_abs_is_two_relu_units_exactly():
    """|x| = relu(x) + relu(-x): dlx's MLP with 2 hidden ReLU units and these weights is |x|
    to the last bit, so the capacity is there; whether training finds it is the experiment's
    question."""
    from dlx.assemble import build_model
    from dlx.data.spec import DataSpec

    model = build_model(fa.model_node("relu", [2]), {"name": "he_normal"},
                        DataSpec.regression(1, 1), np.random.default_rng(0), np.float64)
    first, last = model.layers[0], model.layers[-1]
    first.W.data[...] = [[1.0, -1.0]]
    first.b.data[...] = 0.0
    last.W.data[...] = [[1.0], [1.0]]
    last.b.data[...] = 0.0
    x = np.linspace(-10, 10, 1001)[:, None]
    np.testing.assert_array_equal(model.forward(x), np.abs(x))


@pytest.mark.science
def test_a_relu_net_fits_sin_where_a_line_cannot():
    """On each of 3 seeds: the linear model's test R^2 on sin over [-pi, pi] is at most the best
    line's, 6/pi^2 = 0.608 (cov(x, sin x)^2 / (var x var sin x) = 1 / (pi^2/3 * 1/2); on the
    test grid by least squares), and Adam gets close to it (measured 0.586-0.605); one hidden
    layer of 32 ReLU units gets R^2 > 0.98 (measured 0.991-0.9997)."""
    cfg = config()
    grid = np.linspace(-np.pi, np.pi, cfg["dataset"]["test_points"])
    resid = np.sin(grid) - np.polyval(np.polyfit(grid, np.sin(grid), 1), grid)
    best = 1 - resid.var() / np.sin(grid).var()
    assert best == pytest.approx(6 / np.pi**2, abs=0.005)
    for seed in SEEDS:
        cfg["seed"] = seed
        data = data_for(cfg)
        _, line = fa.fit(cfg, data, fa.model_node(None, []))
        _, net = fa.fit(cfg, data, fa.model_node("relu", [32]))
        assert best - 0.05 < line["test/r2"] <= best + 1e-9, (seed, line["test/r2"], best)
        assert net["test/r2"] > 0.98, (seed, net["test/r2"])


@pytest.mark.science
def test_error_falls_with_width_and_the_step_needs_more_units():
    """Test RMSE of one hidden ReLU layer on sin falls from width 4 to 64 on every seed
    (measured 3-14x); and at width 64 the step is fit far worse than sin relative to its
    spread (1 - R^2 0.011-0.017 against 0.0001-0.002): a jump needs many ramps."""
    cfg = config()
    for seed in SEEDS:
        cfg["seed"] = seed
        rmse, r2 = {}, {}
        for target in ("sin", "step"):
            cfg["dataset"]["target"] = target
            data = data_for(cfg)
            for w in (4, 64):
                _, final = fa.fit(cfg, data, fa.model_node("relu", [w]))
                rmse[target, w], r2[target, w] = final["test/rmse"], final["test/r2"]
        assert rmse["sin", 64] < rmse["sin", 4] / 2, (seed, rmse)
        assert 1 - r2["step", 64] > 4 * (1 - r2["sin", 64]), (seed, r2)


@pytest.mark.science
def test_relu_nets_extrapolate_linearly_and_tanh_nets_saturate():
    """A fitted one-hidden-layer ReLU net is exactly linear beyond its outermost kink
    x = -b_i / w_i: its second differences there are zero to round-off. On [-2 pi, 2 pi] the
    share of outside grid points with a zero second difference is ~1 for ReLU and 0 for tanh,
    whose slope far out falls well below its slope at the interval's edges."""
    cfg = config()
    data = data_for(cfg)
    relu, _ = fa.fit(cfg, data, fa.model_node("relu", [16]))
    first = relu.model.layers[0]
    kinks = -first.b.data / first.W.data[0]
    beyond = max(np.abs(kinks).max(), np.pi) + 1.0
    x = np.linspace(beyond, beyond + 20, 201)
    for side in (x, -x):
        y = fa.predict(relu.model, data, side)
        d2 = y[:-2] - 2 * y[1:-1] + y[2:]
        assert np.abs(d2).max() < 1e-9 * np.ptp(y), np.abs(d2).max()
    grid = fa.extrapolation_grid((-np.pi, np.pi), 2.0)
    linear, ratio = fa.extrapolation(grid, fa.predict(relu.model, data, grid), (-np.pi, np.pi))
    assert linear > 0.9
    tanh, _ = fa.fit(cfg, data, fa.model_node("tanh", [16]), {"name": "xavier_normal"})
    linear, ratio_tanh = fa.extrapolation(grid, fa.predict(tanh.model, data, grid),
                                          (-np.pi, np.pi))
    assert linear == 0.0 and ratio_tanh < 0.5 * ratio


def noisy_data(cfg, seed: int):
    """The bias-variance samples of ``seed``, as run() draws them."""
    from dlx.assemble import build_dataset, rngs

    n = cfg["function_approx"]["noisy"]
    node = {**cfg["dataset"], "n_samples": n["n_train"] + n["n_val"], "noise": n["noise"],
            "val_fraction": n["n_val"] / (n["n_train"] + n["n_val"])}
    return build_dataset(node, rngs(seed)["data"], np.dtype(cfg["dtype"]))


@pytest.mark.science
def test_polynomial_degree_gives_the_textbook_u_and_a_second_descent():
    """Least squares on Legendre polynomials, 20 noisy samples of sin (sd 0.3), every seed:
    training RMSE falls to round-off at degree 19 (20 coefficients, 20 samples) while the
    validation error is lowest at a low degree (measured 0.30-0.32 at degree 5), explodes at
    the interpolation threshold (measured 5e2-2e6, against a noise sd of 0.3) and comes down
    again on the min-norm side (degree 60: 0.36-4.2, 1e2-4e5 x lower than at 19) without
    getting back to the best."""
    cfg = config()
    noise = cfg["function_approx"]["noisy"]["noise"]
    for seed in SEEDS:
        data = noisy_data(cfg, seed)
        r = {d: fa.poly_fit(data, d, (-np.pi, np.pi)) for d in (*range(0, 9), 19, 60)}
        best = min(range(0, 9), key=lambda d: r[d]["val/rmse"])
        assert r[best]["val/rmse"] < 1.3 * noise and 1 <= best <= 8, (seed, best, r[best])
        assert r[19]["train/rmse"] < 1e-6 and r[19]["val/rmse"] > 100 * noise, (seed, r[19])
        assert r[60]["train/rmse"] < 1e-6, (seed, r[60])
        assert r[19]["val/rmse"] / 30 > r[60]["val/rmse"] > r[best]["val/rmse"], (seed, r)


@pytest.mark.science
def test_wide_relu_nets_fit_the_noise():
    """The MLP side of the bias-variance picture, on 20 noisy samples of sin (sd 0.3), with the
    experiment's training (full-batch Adam lr 0.01 until training RMSE < 0.03 or 20,000 steps).
    Measured over seeds 0-9 under five OpenBLAS kernels (50 fits per width): width 256 fits the
    noise (training RMSE 0.03-0.17, at most 0.58 of the noise sd, and at most 0.76 of width 4's)
    and its error on the noise-free f is 1.45-19x its training error (width 4: 0.4-1.8x).
    Asserted well inside those ranges, every seed. Not asserted: that width 256's error on f is
    above the best small width's. It is on average (0.32 against 0.22 for width 32), but a seed
    or a kernel moves it across the line (1.0-13x per fit, 1.07-6.5x for means of 3 seeds), as
    the README says of sin: within the spread."""
    cfg = config()
    n = cfg["function_approx"]["noisy"]
    for seed in SEEDS:
        cfg["seed"] = seed
        data = noisy_data(cfg, seed)
        r = {w: fa.fit_to_tolerance(cfg, data, fa.model_node("relu", [w]),
                                    {"name": "he_normal"}, n["lr"], n["steps"], n["tol"])[1]
             for w in (4, 256)}
        assert r[256]["train/rmse"] < 0.75 * n["noise"], (seed, r)
        assert r[256]["train/rmse"] < 0.9 * r[4]["train/rmse"], (seed, r)
        assert r[256]["test/rmse"] > 1.2 * r[256]["train/rmse"], (seed, r)


def test_extrapolation_measures_on_known_functions():
    x = fa.extrapolation_grid((-1.0, 1.0), 3.0)
    assert fa.extrapolation(x, 2 * x + 1, (-1.0, 1.0)) == pytest.approx((1.0, 1.0))
    linear, ratio = fa.extrapolation(x, np.tanh(x), (-1.0, 1.0))
    assert linear == 0.0 and ratio < 0.1
    # a kink outside the interval: only the grid points next to it are not linear
    linear, _ = fa.extrapolation(x, np.abs(x - 2), (-1.0, 1.0))
    assert 0.99 < linear < 1.0


def test_targets_are_the_named_functions():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(TARGETS["abs"](x), np.abs(x))
    np.testing.assert_array_equal(TARGETS["step"](x), [0, 0, 0, 1, 1])
    np.testing.assert_allclose(TARGETS["poly"](x), 0.2 * x**3 - x)


# --- the command ------------------------------------------------------------------------------

SMALL = ("function_approx.widths=[2,8]", "function_approx.depths=[1,2]",
         "function_approx.depth_width=8", "function_approx.noisy.widths=[2,8]",
         "function_approx.noisy.steps=50", "epochs=20")


@pytest.mark.slow
def test_function_approx_end_to_end(cli):
    """One member, shortened: the tables, its figure, the summary, and the sweep's four
    figures drawn from it; bad settings are one error line and exit 2."""
    from dlx.records.store import load_run

    result = cli("run", "experiment=function_approx", "dataset.target=abs", *SMALL)
    assert result.returncode == 0, result.stderr
    run = cli.run_dir(result)
    cap = (run / fa.CAPACITY).read_text().splitlines()
    # linreg, then relu and tanh: widths 2 and 8 and the 2-layer net of width 8
    assert cap[0] == ",".join(fa.CAP_COLUMNS) and len(cap) == 1 + 1 + 2 * 3
    bv = (run / fa.BIAS_VARIANCE).read_text().splitlines()  # 2 widths and every degree
    assert bv[0] == ",".join(fa.BV_COLUMNS)
    assert len(bv) == 1 + 2 + len(config()["function_approx"]["noisy"]["degrees"])
    assert len((run / fa.PREDICTIONS).read_text().splitlines()) == 802
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "completed" and s["function_approx"]["noisy_train"] == 20
    plots = {p.name for p in (run / "plots").iterdir()}
    assert {"function_approx.png", "rmse.png"} <= plots, plots
    out = cli.cwd / "sweep_plots"
    written = fa.figures([load_run(run)], out, "png")
    assert sorted(p.name for p in written) == ["bias_variance.png", "error_vs_params.png",
                                               "extrapolation.png", "fits.png"]
    for bad, needle in (("function_approx.widths=[0]", "function_approx.widths"),
                        ("function_approx.noisy.noise=0", "function_approx.noisy.noise"),
                        ("function_approx.activations=[swish]", "function_approx.activations")):
        assert_one_error_line(cli("run", "experiment=function_approx", bad), needle)
    assert list((cli.cwd / "runs").iterdir()) == [run]  # bad settings created nothing


def test_the_experiment_needs_the_function_data():
    cfg = config()
    fa.validate(cfg)
    with pytest.raises(UsageError, match="needs dataset=function"):
        fa.validate({**cfg, "dataset": {"name": "moons"}})
    with pytest.raises(UsageError, match="init_for"):
        fa.validate({**cfg, "function_approx": {**cfg["function_approx"], "init_for": {}}})
