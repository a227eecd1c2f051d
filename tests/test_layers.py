"""Layers, models and regularizers: hand-written backward against centered finite differences
(float64), and the behaviour each exists for."""

from __future__ import annotations

import numpy as np
import pytest

from dlx import registry
from dlx.assemble import build_model
from dlx.data.spec import DataSpec
from dlx.nn import (
    GELU,
    DropConnectLinear,
    Dropout,
    LeakyReLU,
    Linear,
    Parameter,
    ReLU,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
)
from dlx.nn.gradcheck import check_module, numerical_grad, rel_error
from dlx.optim import REGULARIZERS, SGD

rng = np.random.default_rng(0)


def check_layer(module, x, tol=1e-7):
    errors = check_module(module, x, rng)
    assert errors and max(errors.values()) < tol, errors


def away_from_zero(shape):
    """Inputs with |x| >= 0.1, so a finite difference never straddles a kink at 0."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, np.sign(x) * 0.1 + x, x)


@pytest.mark.parametrize("layer", [ReLU(), LeakyReLU(0.1), Sigmoid(), Tanh(), GELU(), Softmax()],
                         ids=lambda layer: type(layer).__name__)
def test_activation_gradients(layer):
    check_layer(layer, away_from_zero((6, 5)))


def test_linear_gradients():
    layer = Linear(4, 3, dtype=np.float64)
    layer.W.data[...] = rng.standard_normal((4, 3))
    layer.b.data[...] = rng.standard_normal(3)
    check_layer(layer, rng.standard_normal((5, 4)))


def test_dropout_gradient_with_its_mask_fixed():
    layer = Dropout(0.6, np.random.default_rng(1))
    x = rng.standard_normal((8, 5))
    out = layer.forward(x)
    mask = layer._mask.copy()
    # fix the mask: a deterministic function of x, checked by finite differences
    layer.rng = type("Fixed", (), {"random": lambda self, shape: np.where(mask > 0, 0.0, 1.0)})()
    check_layer(layer, x)
    np.testing.assert_array_equal(layer._mask, mask)
    assert set(np.unique(out[x != 0] / x[x != 0]).round(12)) <= {0.0, round(1 / 0.6, 12)}


def test_dropconnect_gradient_with_its_mask_fixed():
    layer = DropConnectLinear(5, 4, 0.7, np.random.default_rng(2), dtype=np.float64)
    layer.W.data[...] = rng.standard_normal((5, 4))
    layer.forward(rng.standard_normal((3, 5)))
    keep = layer._mask > 0
    layer.rng = type("Fixed", (), {"random": lambda self, shape: np.where(keep, 0.0, 1.0)})()
    check_layer(layer, rng.standard_normal((3, 5)))


def test_inverted_dropout_preserves_the_mean_and_eval_is_deterministic():
    layer = Dropout(0.5, np.random.default_rng(3))
    x = np.ones((2000, 100))
    assert layer.forward(x).mean() == pytest.approx(1.0, abs=0.01)
    assert (layer.forward(x) != layer.forward(x)).any()  # a new mask each forward pass
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)


@pytest.mark.parametrize("model_node", [
    {"name": "mlp", "hidden": [6, 5], "activation": "tanh"},
    {"name": "mlp", "hidden": [6, 5, 4], "activation": ["gelu", "sigmoid", "leaky_relu"]},
    {"name": "mlp", "hidden": [7], "activation": "relu"},
    {"name": "logreg"},
])
def test_model_gradients(model_node):
    X, y = away_from_zero((10, 4)), rng.integers(0, 3, 10)
    model = build_model(model_node, {"name": "xavier_normal"}, DataSpec.features(4, 3),
                        np.random.default_rng(4), np.float64)
    loss_fn = SoftmaxCrossEntropy()

    def f():
        return loss_fn.forward(model.forward(X), y)

    f()
    model.zero_grad()
    model.backward(loss_fn.backward())
    tol = 1e-5 if "relu" in str(model_node) else 1e-7  # ReLU kinks
    for p in model.parameters():
        assert rel_error(p.grad.copy(), numerical_grad(f, p.data)) < tol, p.name


def test_mlp_structure_and_dropout_placement():
    model = build_model({"name": "mlp", "hidden": [8, 8], "keep_prob": [0.9, 0.5]},
                        {"name": "he_normal"}, DataSpec.features(3, 2), np.random.default_rng(0), np.float32,
                        np.random.default_rng(1))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [layer.keep_prob for layer in model.layers if isinstance(layer, Dropout)] == [0.9, 0.5]
    assert [p.name for p in model.parameters()] == ["fc1.W", "fc1.b", "fc2.W", "fc2.b", "fc3.W",
                                                     "fc3.b"]
    assert model.layers[0].input_grad is False  # nothing upstream of the first layer


@pytest.mark.parametrize("node", [
    {"name": "l1", "lam": 0.3, "method": "subgradient"},
    {"name": "l2", "lam": 0.3},
    {"name": "elastic_net", "lam": 0.3, "l1_ratio": 0.4, "method": "subgradient"},
])
def test_penalty_gradients(node):
    reg = registry.build(REGULARIZERS, "regularizer", node)
    w = Parameter(away_from_zero((4, 3)))
    b = Parameter(rng.standard_normal(3), decay=False)
    reg.add_grad([w, b])
    assert rel_error(w.grad, numerical_grad(lambda: reg.penalty([w, b]), w.data)) < 1e-7
    assert (b.grad == 0).all()  # biases are never regularized


def test_proximal_l1_puts_weights_exactly_at_zero():
    reg = registry.build(REGULARIZERS, "regularizer", {"name": "l1", "lam": 1.0,
                                                       "method": "proximal"})
    w = Parameter(np.array([0.05, -0.05, 0.5, -0.5]))
    reg.add_grad([w])
    assert (w.grad == 0).all()  # the L1 part is not in the gradient
    reg.after_step(SGD([w], lr=0.1))  # plain SGD: threshold lr * lam
    np.testing.assert_allclose(w.data, [0, 0, 0.4, -0.4])
