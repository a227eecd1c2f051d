"""Hand-written backward passes against centered finite differences (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlx.assemble import build_model, initialize
from dlx.data.spec import DataSpec
from dlx.nn import (
    MSE,
    BCEWithLogits,
    Linear,
    SoftmaxCrossEntropy,
    predictions,
)
from dlx.nn.gradcheck import numerical_grad, rel_error
from dlx.nn.init import INITS

rng = np.random.default_rng(0)


def _loss_and_grads(model, loss_fn, X, y):
    model.zero_grad()
    loss = loss_fn.forward(model.forward(X), y)
    dx = model.backward(loss_fn.backward())
    return loss, dx


@pytest.mark.parametrize("n_classes", [2, 4])
def test_logreg_gradients_match_finite_differences(n_classes):
    X = rng.standard_normal((16, 3))
    y = rng.integers(0, n_classes, 16)
    n_out = 1 if n_classes == 2 else n_classes
    model = build_model({"name": "logreg"}, {"name": "normal", "std": 0.5}, DataSpec.features(3, n_classes),
                        np.random.default_rng(1), np.float64)
    model.b.data[...] = rng.standard_normal(n_out)
    loss_fn = BCEWithLogits() if n_classes == 2 else SoftmaxCrossEntropy()
    _, dx = _loss_and_grads(model, loss_fn, X, y)
    assert dx is None  # a first layer skips the input gradient nobody needs

    def f():
        return loss_fn.forward(model.forward(X), y)

    for p in model.parameters():
        assert rel_error(p.grad, numerical_grad(f, p.data)) < 1e-7, p.name


def test_linear_accumulates_gradients_like_torch():
    """backward adds into .grad: two backward passes give twice the gradient."""
    layer = Linear(3, 2, dtype=np.float64)
    layer.W.data[...] = rng.standard_normal((3, 2))
    x, dout = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    layer.forward(x)
    layer.backward(dout)
    once = layer.W.grad.copy()
    layer.forward(x)
    layer.backward(dout)
    np.testing.assert_allclose(layer.W.grad, 2 * once)
    np.testing.assert_allclose(once, x.T @ dout)


def test_mse_gradient():
    pred, y = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    loss = MSE()
    loss.forward(pred, y)
    grad = loss.backward()
    assert rel_error(grad, numerical_grad(lambda: loss.forward(pred, y), pred)) < 1e-7


def test_losses_are_stable_for_huge_logits():
    """No overflow: a confident right answer costs ~0, a confident wrong one costs |z|."""
    z = np.array([[1e4], [-1e4], [1e4]], dtype=np.float32)
    y = np.array([1, 0, 0])
    bce = BCEWithLogits()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = bce.forward(z, y)
        grad = bce.backward()
    assert loss == pytest.approx(1e4 / 3)
    np.testing.assert_allclose(grad[:, 0], [0, 0, 1 / 3], atol=1e-7)
    ce = SoftmaxCrossEntropy()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = ce.forward(np.array([[1e4, 0.0], [0.0, 1e4]]), np.array([0, 0]))
    assert loss == pytest.approx(1e4 / 2)


def test_initial_losses_are_chance_level():
    """Zero weights: BCE = ln 2, softmax CE over C classes = ln C."""
    y = rng.integers(0, 5, 50)
    assert BCEWithLogits().forward(np.zeros((50, 1)), y % 2) == pytest.approx(math.log(2))
    assert SoftmaxCrossEntropy().forward(np.zeros((50, 5)), y) == pytest.approx(math.log(5))


def test_predictions():
    assert predictions(np.array([[0.3], [-2.0]])).tolist() == [1, 0]
    assert predictions(np.array([[0.1, 0.9, 0.0]])).tolist() == [1]


@pytest.mark.parametrize("name,expected_std", [
    ("he_normal", math.sqrt(2 / 400)), ("lecun_normal", math.sqrt(1 / 400)),
    ("xavier_normal", math.sqrt(2 / 600)), ("he_uniform", math.sqrt(2 / 400)),
    ("xavier_uniform", math.sqrt(2 / 600))])
def test_initializer_scales(name, expected_std):
    """Each scheme's weight std matches its formula (fan_in 400, fan_out 200)."""
    w = INITS[name]((400, 200), np.random.default_rng(0))
    assert w.std() == pytest.approx(expected_std, rel=0.02)
    assert abs(w.mean()) < 0.1 * expected_std


def test_initialize_leaves_biases_at_zero():
    model = Linear(4, 3, dtype=np.float64)
    initialize(model, {"name": "constant", "value": 0.5}, np.random.default_rng(0))
    assert (model.W.data == 0.5).all() and (model.b.data == 0).all()


def test_gradcheck_reports_per_parameter_errors_and_catches_a_wrong_backward():
    from dlx.assemble import build_model
    from dlx.nn.gradcheck import check_model, check_module

    rng = np.random.default_rng(0)
    model = build_model({"name": "mlp", "hidden": [5], "activation": "tanh"},
                        {"name": "xavier_normal"}, DataSpec.features(4, 3), rng, np.float64)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    errors = check_model(model, SoftmaxCrossEntropy(), x, y)
    assert len(errors) == len(model.parameters()) and max(errors.values()) < 1e-7, errors

    layer = Linear(4, 3, dtype=np.float64)
    layer.W.data[...] = rng.standard_normal(layer.W.data.shape)
    assert set(check_module(layer, x, rng)) == {"input", layer.W.name, layer.b.name}
    backward = layer.backward
    layer.backward = lambda dout: backward(dout) * 1.01  # a 1% error in dx is caught
    assert check_module(layer, x, rng)["input"] > 1e-3


@pytest.mark.torch
@pytest.mark.parametrize("shape", [(8, 3, 5, 5), (16, 4, 3), (6, 2, 3, 3, 3)])
def test_fans_of_convolution_kernels_match_torch(torch, shape):
    from dlx.nn.init import _fans

    assert _fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_he_normal_of_a_kernel_has_variance_two_over_c_in_times_kernel_size():
    w = INITS["he_normal"]((64, 16, 3, 3), np.random.default_rng(0))
    assert w.var() == pytest.approx(2.0 / (16 * 9), rel=0.03)


# --- the data description every model is built from --------------------------------------------

@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_fully_connected_models_read_images_as_vectors(name):
    """An image spec (C, H, W) gives a model whose first layer sees C*H*W numbers; its
    gradients (through the flattening) match finite differences."""
    from dlx.nn import SoftmaxCrossEntropy
    from dlx.nn.gradcheck import check_model

    spec = DataSpec.image(2, 3, 4, n_classes=5)
    rng = np.random.default_rng(0)
    model = build_model({"name": name}, {"name": "xavier_normal"}, spec, rng, np.float64)
    x, y = rng.standard_normal((6, 2, 3, 4)), rng.integers(0, 5, 6)
    assert model.forward(x).shape == (6, 5)
    assert model.parameters()[0].data.shape[0] == 24
    errors = check_model(model, SoftmaxCrossEntropy(), x, y)
    assert max(errors.values()) < 1e-7, errors


def test_a_model_refuses_data_it_cannot_read_naming_those_that_can():
    from dlx.errors import UsageError

    rng = np.random.default_rng(0)
    with pytest.raises(UsageError, match=r"model 'transformer' reads token sequences; this data "
                       r"set gives 1x28x28 images \(models that read images: logreg, mlp, cnn, "
                       r"resnet, plain\)"):
        build_model({"name": "transformer"}, {"name": "normal"}, DataSpec.image(1, 28, 28, 10),
                    rng, np.float32)
    with pytest.raises(UsageError, match=r"model 'mlp' reads feature vectors or images; this "
                       r"data set gives token sequences of length 8 over 12 symbols"):
        build_model({"name": "mlp"}, {"name": "normal"}, DataSpec.tokens(12, 8), rng, np.float32)


def test_the_spec_sizes_the_outputs():
    assert DataSpec.features(2, 2).n_out == 1  # two classes: one sigmoid logit
    assert DataSpec.features(2, 3).n_out == 3
    assert DataSpec.tokens(2, 5).n_out == 2  # a vocabulary of two is still a softmax
    with pytest.raises(ValueError):
        DataSpec("image", (28, 28), 10)  # an image has channels


def test_entropy_gradient_and_values(torch):
    """H(softmax(z)): its dH/dz against finite differences and torch; log C at the uniform
    prediction, 0 at a certain one (no overflow at huge logits)."""
    from dlx.nn.losses import Entropy

    z = rng.standard_normal((5, 4)) * 2
    loss = Entropy()
    value = loss.forward(z)
    grad = loss.backward()
    assert rel_error(grad, numerical_grad(lambda: loss.forward(z), z)) < 1e-7
    t = torch.tensor(z, requires_grad=True)
    h = -(torch.softmax(t, 1) * torch.log_softmax(t, 1)).sum(1).mean()
    h.backward()
    assert value == pytest.approx(h.item(), rel=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-10, atol=1e-15)
    assert Entropy().forward(np.zeros((3, 5))) == pytest.approx(math.log(5))
    with np.errstate(over="raise", invalid="raise"):
        assert Entropy().forward(np.array([[1e4, 0.0, 0.0]])) == pytest.approx(0.0, abs=1e-12)
