"""BatchNorm, LayerNorm, GroupNorm, convolution and pooling (issue #14's library): gradients
against finite differences in float64, forward and backward against torch.nn.functional."""

from __future__ import annotations

import numpy as np
import pytest

from dlx.nn.conv import AvgPool2d, Conv2d, GlobalAvgPool, MaxPool2d, conv2d_naive
from dlx.nn.dropout import Dropout2d
from dlx.nn.gradcheck import check_module
from dlx.nn.norm import BatchNorm, GroupNorm, LayerNorm

rng = np.random.default_rng(0)


def conv(c=3, f=4, k=3, stride=1, padding=1):
    layer = Conv2d(c, f, k, stride, padding, dtype=np.float64)
    layer.W.data[...] = rng.standard_normal(layer.W.data.shape) * 0.3
    layer.b.data[...] = rng.standard_normal(f)
    return layer


def distinct(shape):
    """Values far apart (no ties inside a pooling window, so max is differentiable)."""
    return rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) * 0.1


LAYERS = {
    "conv 3x3 s1 p1": (lambda: conv(), (2, 3, 6, 5)),
    "conv 5x5 s2 p0": (lambda: conv(k=5, stride=2, padding=0), (2, 3, 9, 9)),
    "conv 2x3 s2 p2": (lambda: conv(k=(2, 3), stride=2, padding=2), (2, 3, 5, 6)),
    "maxpool 2x2": (lambda: MaxPool2d(2), (2, 3, 6, 6)),
    "maxpool 3x3 s1 (overlapping)": (lambda: MaxPool2d(3, stride=1), (2, 2, 6, 5)),
    "maxpool 3x3 s2 p1": (lambda: MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 7)),
    "avgpool 3x3 s1 (overlapping)": (lambda: AvgPool2d(3, stride=1), (2, 2, 6, 5)),
    "avgpool 2x2 p1": (lambda: AvgPool2d(2, padding=1), (2, 2, 5, 5)),
    "global avgpool": (lambda: GlobalAvgPool(), (2, 3, 4, 5)),
    "batchnorm (N, D)": (lambda: BatchNorm(5, dtype=np.float64), (8, 5)),
    "batchnorm (N, C, H, W)": (lambda: BatchNorm(3, dtype=np.float64), (4, 3, 3, 2)),
    "layernorm": (lambda: LayerNorm(6, dtype=np.float64), (4, 3, 6)),
    "groupnorm": (lambda: GroupNorm(2, 4, dtype=np.float64), (3, 4, 3, 2)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_gradients_match_finite_differences(name):
    make, shape = LAYERS[name]
    layer = make()
    for p in layer.parameters():  # away from gamma = 1, beta = 0
        p.data[...] += rng.standard_normal(p.data.shape) * 0.3
    errors = check_module(layer, distinct(shape) if "pool" in name else rng.standard_normal(shape),
                          np.random.default_rng(1))
    assert max(errors.values()) < 1e-7, errors


def test_eval_mode_batchnorm_gradients():
    layer = BatchNorm(3, dtype=np.float64)
    layer.running_mean.data[...] = [0.5, -1, 2]
    layer.running_var.data[...] = [2.0, 0.5, 1.5]
    layer.eval()
    errors = check_module(layer, rng.standard_normal((4, 3, 2, 2)), np.random.default_rng(1))
    assert max(errors.values()) < 1e-7, errors


def test_naive_convolution_is_the_definition():
    layer = conv(k=3, stride=2, padding=1)
    x = rng.standard_normal((2, 3, 7, 6))
    np.testing.assert_allclose(layer.forward(x), conv2d_naive(x, layer.W.data, layer.b.data, 2, 1),
                               rtol=0, atol=1e-12)


def _torch_pair(torch, layer, x, fn):
    """Our forward/backward against fn(torch input) with a random output gradient."""
    ours = layer.forward(x)  # once: BatchNorm's running estimates move on every forward
    dout = rng.standard_normal(ours.shape)
    dx = layer.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    out = fn(tx)
    out.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(ours, out.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=0, atol=1e-10)


@pytest.mark.torch
@pytest.mark.parametrize("k,stride,padding", [(3, 1, 1), (5, 2, 0), (2, 2, 2), (3, 3, 1)])
def test_conv_equals_torch(torch, k, stride, padding):
    F = torch.nn.functional
    layer = conv(k=k, stride=stride, padding=padding)
    tW = torch.tensor(layer.W.data, requires_grad=True)
    tb = torch.tensor(layer.b.data, requires_grad=True)
    x = rng.standard_normal((2, 3, 9, 8))
    layer.zero_grad()
    _torch_pair(torch, layer, x, lambda t: F.conv2d(t, tW, tb, stride=stride, padding=padding))
    np.testing.assert_allclose(layer.W.grad, tW.grad.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(layer.b.grad, tb.grad.numpy(), rtol=0, atol=1e-10)


@pytest.mark.torch
@pytest.mark.parametrize("kind,k,stride,padding", [("max", 2, 2, 0), ("max", 3, 1, 0),
                                                   ("max", 3, 2, 1), ("avg", 3, 1, 0),
                                                   ("avg", 2, 2, 1)])
def test_pooling_equals_torch(torch, kind, k, stride, padding):
    F = torch.nn.functional
    layer = (MaxPool2d if kind == "max" else AvgPool2d)(k, stride, padding)
    fn = F.max_pool2d if kind == "max" else F.avg_pool2d
    _torch_pair(torch, layer, distinct((2, 3, 7, 6)),
                lambda t: fn(t, k, stride=stride, padding=padding))



@pytest.mark.torch
@pytest.mark.parametrize("k,stride", [(2, 2), (3, 1)])
def test_maxpool_ties_and_nans_route_as_torch(torch, k, stride):
    """After a ReLU whole windows are 0: the gradient goes to the window's first maximum, as
    torch's CPU kernel sends it; a NaN wins its window (and its gradient) as in torch."""
    x = np.maximum(np.round(rng.standard_normal((2, 3, 6, 6)), 0), 0.0)  # ties everywhere
    x[0, 1, 2, 3] = np.nan
    _torch_pair(torch, MaxPool2d(k, stride), x,
                lambda t: torch.nn.functional.max_pool2d(t, k, stride=stride))

@pytest.mark.torch
@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 3, 2)])
def test_batchnorm_equals_torch_in_training_and_eval(torch, shape):
    """Batch statistics and the running estimates (momentum 0.1, unbiased variance) over three
    training steps, then eval mode on the running estimates."""
    ours = BatchNorm(5, dtype=np.float64)
    ref = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(5).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(rng.standard_normal(5)))
        ref.bias.copy_(torch.from_numpy(rng.standard_normal(5)))
    ours.gamma.data[...], ours.beta.data[...] = ref.weight.detach().numpy(), ref.bias.detach().numpy()
    for _ in range(3):
        x = rng.standard_normal(shape) * 2 + 1
        _torch_pair(torch, ours, x, ref)
    np.testing.assert_allclose(ours.running_mean.data, ref.running_mean.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.running_var.data, ref.running_var.numpy(), rtol=0, atol=1e-12)
    ours.eval(), ref.eval()
    _torch_pair(torch, ours, rng.standard_normal(shape), ref)


@pytest.mark.torch
def test_group_and_layer_norm_equal_torch(torch):
    F = torch.nn.functional
    gn = GroupNorm(2, 4, dtype=np.float64)
    gn.gamma.data[...], gn.beta.data[...] = rng.standard_normal(4), rng.standard_normal(4)
    w, b = torch.from_numpy(gn.gamma.data.copy()), torch.from_numpy(gn.beta.data.copy())
    _torch_pair(torch, gn, rng.standard_normal((3, 4, 3, 2)), lambda t: F.group_norm(t, 2, w, b))
    ln = LayerNorm(6, dtype=np.float64)
    ln.gamma.data[...] = rng.standard_normal(6)
    w = torch.from_numpy(ln.gamma.data.copy())
    _torch_pair(torch, ln, rng.standard_normal((4, 3, 6)), lambda t: F.layer_norm(t, (6,), w))


def test_batchnorm_state_is_saved_with_the_weights():
    layer = BatchNorm(3, dtype=np.float64, name="bn1")
    layer.forward(rng.standard_normal((5, 3)) + 4)
    state = layer.state_dict()
    assert set(state) == {"bn1.gamma", "bn1.beta", "bn1.running_mean", "bn1.running_var"}
    assert {p.name for p in layer.parameters()} == {"bn1.gamma", "bn1.beta"}  # optimizers'
    fresh = BatchNorm(3, dtype=np.float64, name="bn1")
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.running_mean.data, layer.running_mean.data)


def test_dropout2d_drops_whole_channels():
    layer = Dropout2d(0.5, np.random.default_rng(0))
    out = layer.forward(np.ones((50, 8, 3, 3)))
    per_channel = out.reshape(50, 8, -1)
    assert np.all(per_channel.min(axis=-1) == per_channel.max(axis=-1))  # each map all-or-none
    assert set(np.unique(out)) == {0.0, 2.0} and 0.4 < (out > 0).mean() < 0.6
    np.testing.assert_array_equal(layer.backward(np.ones_like(out)), out)
    layer.eval()
    np.testing.assert_array_equal(layer.forward(np.ones((2, 3, 2, 2))), np.ones((2, 3, 2, 2)))
