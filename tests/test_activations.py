"""ELU, SELU, SiLU, softplus: hand-written backward against centred differences and against
torch.nn.functional (float64), selectable in the MLP and in backend=torch; and
experiment=activations shows the known results (sigmoid saturates and its first layer's
gradient vanishes next to ReLU + He; SELU keeps unit variance through depth)."""

from __future__ import annotations

import numpy as np
import pytest

from dlx.nn.activations import ACTIVATIONS, ELU, SELU, SiLU, Softplus
from dlx.nn.gradcheck import numerical_grad, rel_error
from tests.test_mnist import tiny  # noqa: F401 - a fixture

NEW = {"elu": ELU, "selu": SELU, "silu": SiLU, "softplus": Softplus}


def _inputs():
    # both sides of 0 and far out on each, but off the kink at 0 (ELU/SELU's second derivative
    # jumps there, where centred differences straddle it) and off softplus's threshold at 20
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 7)) * 3.0
    x[0, :4] = [-30.0, -8.0, 12.0, 25.0]
    x[np.abs(x) < 1e-3] += 0.01
    return x


@pytest.mark.parametrize("name", sorted(NEW))
def test_backward_matches_centred_differences(name):
    x = _inputs()
    act = NEW[name]()
    dout = np.random.default_rng(1).standard_normal(x.shape)
    act.forward(x)
    dx = act.backward(dout)
    numeric = numerical_grad(lambda: float(np.sum(act.forward(x) * dout)), x)
    assert rel_error(dx, numeric) < 1e-7


@pytest.mark.parametrize("name", sorted(NEW))
def test_forward_and_backward_equal_torch(torch, name):
    F = torch.nn.functional
    fn = {"elu": F.elu, "selu": F.selu, "silu": F.silu, "softplus": F.softplus}[name]
    x = _inputs()
    x[1, :3] = [20.5, 19.5, -0.0]  # either side of softplus's threshold
    dout = np.random.default_rng(2).standard_normal(x.shape)
    act = NEW[name]()
    y = act.forward(x)
    dx = act.backward(dout)
    xt = torch.tensor(x, requires_grad=True)
    yt = fn(xt)
    yt.backward(torch.tensor(dout))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_float32_in_float32_out_and_no_overflow():
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4], np.float32)
    for cls in NEW.values():
        act = cls()
        with np.errstate(over="raise", invalid="raise"):  # no overflow on extreme inputs
            y = act.forward(x)
            dx = act.backward(np.ones_like(x))
        assert y.dtype == dx.dtype == np.float32 and np.isfinite(y).all() and np.isfinite(dx).all()


def test_selu_constants_are_its_fixed_point():
    """Klambauer et al.: for z ~ N(0, 1), SELU(z) has mean 0 and variance 1 (quadrature)."""
    z = np.linspace(-12, 12, 200001)
    w = np.exp(-z * z / 2) / np.sqrt(2 * np.pi) * (z[1] - z[0])
    y = SELU().forward(z)
    assert abs(np.sum(w * y)) < 1e-6 and abs(np.sum(w * y * y) - 1) < 1e-6


def test_mlp_selects_every_activation():
    from dlx.assemble import build_model
    from dlx.data.spec import DataSpec

    for name in NEW:
        model = build_model({"name": "mlp", "hidden": [5, 5], "activation": name},
                            {"name": "lecun_normal"}, DataSpec.features(3, 4),
                            np.random.default_rng(0), np.float64)
        kinds = [type(m) for m in model.layers]
        assert kinds.count(NEW[name]) == 2
    assert set(NEW) <= set(ACTIVATIONS)


@pytest.mark.torch
def test_backend_torch_trains_the_same_mlp(torch, tmp_path):
    """One MLP with the four new activations, one per hidden layer: backend=torch's conversion
    (nn.ELU, SELU, SiLU, Softplus) follows the NumPy run step by step."""
    from tests.test_backends import batch_losses

    common = ("model=mlp", "model.hidden=[8,8,8,8]", "model.activation=[elu,selu,silu,softplus]",
              "optimizer=momentum", "dtype=float64", "seed=1", "epochs=1", "dataset=moons")
    ours = batch_losses(tmp_path, "numpy", *common)
    theirs = batch_losses(tmp_path, "torch", *common, "backend=torch")
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    assert ours[-1] < ours[0]


# --- experiment=activations -------------------------------------------------------------------

def _deep(name: str, init: str, seed: int):
    """experiment=activations' network (8 x 64, its usual init for ``name``), float64."""
    from dlx.assemble import build_model
    from dlx.data.spec import DataSpec

    return build_model({"name": "mlp", "hidden": [64] * 8, "activation": name}, {"name": init},
                       DataSpec.features(784, 10), np.random.default_rng(seed), np.float64)


def _standardized_batch(seed: int):
    rng = np.random.default_rng(100 + seed)
    return rng.standard_normal((512, 784)), rng.integers(0, 10, 512)


@pytest.mark.science
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigmoid_first_layer_gradient_vanishes_next_to_relu_he(seed):
    """At init, ‖∂L/∂z‖ of the first hidden layer: sigmoid + Xavier is >1000x smaller than ReLU
    + He — each sigmoid layer multiplies the backward signal by sigmoid' <= 1/4 (and Xavier's
    weights do not make up for it), 0.25^8 ~ 1.5e-5; He's sqrt(2) exactly offsets ReLU's
    halving, so ReLU's gradient stays within a factor of a few of its last layer's."""
    from dlx.nn import SoftmaxCrossEntropy
    from dlx.nn.probe import layer_stats

    X, y = _standardized_batch(seed)
    grads = {}
    for name, init in (("sigmoid", "xavier_normal"), ("relu", "he_normal")):
        stats = layer_stats(_deep(name, init, seed), SoftmaxCrossEntropy(), X, y)
        grads[name] = [s["grad_z_norm"] for s in stats[:-1]]  # the 8 hidden layers
    assert grads["sigmoid"][0] < 1e-3 * grads["relu"][0]
    assert grads["sigmoid"][0] < 1e-3 * grads["sigmoid"][-1]        # it vanishes with depth
    assert 0.2 < grads["relu"][0] / grads["relu"][-1] < 5            # ReLU + He does not


@pytest.mark.science
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selu_keeps_unit_variance_through_depth(seed):
    """Klambauer et al. 2017: SELU with LeCun-normal weights on unit-variance inputs keeps every
    layer's activations near mean 0, std 1; tanh with the same init shrinks them layer by layer
    and ReLU (no negative half) drifts off mean 0."""
    from dlx.experiments.activations import layer_activations

    X, _ = _standardized_batch(seed)
    std = {}
    for name in ("selu", "tanh", "relu"):
        pairs = layer_activations(_deep(name, "lecun_normal", seed), X)
        std[name] = [float(a.std()) for _, a in pairs]
        if name == "selu":
            assert all(abs(float(a.mean())) < 0.15 for _, a in pairs)
    assert all(0.85 < s < 1.15 for s in std["selu"]), std["selu"]
    assert std["tanh"][-1] < 0.6 * std["tanh"][0] and std["tanh"][-1] < 0.6
    assert std["relu"][-1] < 0.2 * std["relu"][0]


def test_saturation_and_dead_fractions():
    from dlx.experiments.activations import saturated_fraction

    assert saturated_fraction("tanh", np.tanh(np.array([-3.0, -1.0, 0.0, 2.5]))) == 0.5
    sig = 1 / (1 + np.exp(-np.array([-4.0, 0.0, 1.0, 4.0])))
    assert saturated_fraction("sigmoid", sig) == 0.5
    assert np.isnan(saturated_fraction("relu", np.ones(3)))


def test_experiment_records_fractions_and_draws_its_figures(tiny, tmp_path):  # noqa: F811
    """Through the runner on a tiny fake MNIST: activations.csv has a row per hidden layer at
    every recorded step and at the end; a ReLU unit whose bias is pushed far negative is counted
    dead; the sweep's figures are written."""
    from dlx.experiments.activations import plot_run, plot_sweep, read, report_numbers
    from tests.test_experiments import run

    members = [run(tmp_path, "experiment=activations", f"model.activation={a}", "epochs=1",
                   "dataset.val_size=40", "dataset.subset=null", "model.hidden=[16,16,16]",
                   "activations.every=2", "probe_every=2") for a in ("tanh", "relu")]
    t = read(members[1])
    assert sorted(t["layer"].unique()) == [1, 2, 3]
    steps = sorted(t["step"].unique())
    assert steps[0] == 0 and steps[-1] == members[1].summary["steps"] and len(steps) >= 3
    assert t["saturated"].isna().all() and t["dead"].between(0, 1).all()
    assert read(members[0])["saturated"].between(0, 1).all()
    numbers = report_numbers(members[0])
    assert 0 < numbers["‖∂L/∂z‖ first hidden layer, init"]
    names = {p.name for p in plot_sweep(tmp_path, members, ["tanh", "relu"], "png",
                                        tmp_path / "plots")}
    assert names == {"activation_curves.png", "activations_training.png",
                     "activations_summary.png"}
    assert [p.name for p in plot_run(members[0], tmp_path / "p", "png")] == ["activation_stats.png"]


def test_dead_relu_units_are_counted():
    from dlx.experiments.activations import rows

    model = _deep("relu", "he_normal", 0)
    X, _ = _standardized_batch(0)
    model.layers[2].b.data[:16] = -1e3  # 16 of layer 2's 64 units can never fire
    by_layer = {r[1]: r[3] for r in rows("relu", model, X, 0)}
    assert by_layer[2] >= 16 / 64 and by_layer[1] < 0.1


def test_experiments_refuse_bad_settings_before_running():
    """Each experiment's validate hook: one UsageError naming the bad key (exit 2 in the CLI)."""
    from dlx.errors import UsageError
    from dlx.experiments import activations, ewa, losses
    from tests.test_train import config

    base = config("experiment=activations", files=False)  # the hooks need no data
    for bad, needle in ((("activations", "every", 0), "activations.every"),
                        (("model", "activation", ["relu", "tanh"]), "one model.activation")):
        cfg = {**base, bad[0]: {**base[bad[0]], bad[1]: bad[2]}}
        with pytest.raises(UsageError, match=needle):
            activations.validate(cfg)
    cfg = config("experiment=losses", files=False)
    with pytest.raises(UsageError, match="losses.smoothing"):
        losses.validate({**cfg, "losses": {**cfg["losses"], "smoothing": 1.0}})
    cfg = config("experiment=ewa", files=False)
    with pytest.raises(UsageError, match="ewa.betas"):
        ewa.validate({**cfg, "ewa": {**cfg["ewa"], "betas": [1.0]}})
