"""ELU, SELU, SiLU, softplus: hand-written backward against centred differences and against
torch.nn.functional (float64), selectable in the MLP and in backend=torch; and
experiment=activations shows the known results (sigmoid saturates and its first layer's
gradient vanishes next to ReLU + He; SELU keeps unit variance through depth)."""

from __future__ import annotations

import numpy as np
import pytest

from dlx.nn.activations import ACTIVATIONS, ELU, SELU, SiLU, Softplus
from dlx.nn.gradcheck import numerical_grad, rel_error

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
@pytest.mark.parametrize("name", sorted(NEW))
def test_backend_torch_trains_the_same_mlp(torch, tmp_path, name):
    from tests.test_backends import batch_losses

    common = ("model=mlp", f"model.activation={name}", "optimizer=momentum", "dtype=float64",
              "seed=1", "epochs=1", "dataset=moons")
    ours = batch_losses(tmp_path, "numpy", *common)
    theirs = batch_losses(tmp_path, "torch", *common, "backend=torch")
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
