"""Hessian-vector products by differences of gradients against closed forms, the full
finite-difference Hessian and torch.autograd (float64); eigenvalues by power iteration and
Lanczos against numpy.linalg.eigvalsh."""

from __future__ import annotations

import numpy as np
import pytest

from dlx.data.spec import DataSpec
from dlx.nn import MSE, BCEWithLogits, Linear, SoftmaxCrossEntropy
from dlx.nn.hessian import (
    full_hessian,
    get_flat,
    lanczos,
    logreg_hessian,
    make_hvp,
    n_params,
    power_iteration,
    sharpness,
)
from dlx.nn.models import mlp


def tiny_mlp(activation="tanh", d=4, hidden=(5,), classes=3, seed=0):
    """A float64 MLP with random (non-zero) weights and biases: smooth with tanh/GELU."""
    rng = np.random.default_rng(seed)
    model = mlp(DataSpec.features(d, classes), hidden=list(hidden), activation=activation,
                dtype=np.float64)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.data.shape) * 0.7
    x = rng.standard_normal((12, d))
    y = rng.integers(0, classes, 12)
    return model, x, y


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a) + np.abs(b)))


def test_hvp_of_logistic_regression_equals_its_closed_form_hessian():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((50, 3)), rng.integers(0, 2, 50)
    layer = Linear(3, 1, dtype=np.float64)
    layer.W.data[...] = rng.standard_normal((3, 1))
    layer.b.data[...] = 0.3
    H = logreg_hessian(X, layer.W.data, layer.b.data)
    hvp = make_hvp(layer, BCEWithLogits(), X, y)
    for _ in range(3):
        v = rng.standard_normal(4)
        assert rel(hvp(v), H @ v) < 1e-8
    # the products leave the parameters where they were
    np.testing.assert_array_equal(get_flat(layer), np.r_[layer.W.data[:, 0], layer.b.data])


def test_hvp_of_a_quadratic_loss_is_exact_for_a_linear_model():
    # L = mean((X W + b - t)^2) is quadratic in w: H = 2 X~^T X~ / N, and differences of
    # gradients are exact up to rounding for any eps
    rng = np.random.default_rng(2)
    X, t = rng.standard_normal((40, 3)), rng.standard_normal(40)
    layer = Linear(3, 1, dtype=np.float64)
    layer.W.data[...] = rng.standard_normal((3, 1))
    Xb = np.hstack([X, np.ones((40, 1))])
    H = 2 * Xb.T @ Xb / 40
    for eps in (1e-5, 1e-2, 1.0):
        v = rng.standard_normal(4)
        assert rel(make_hvp(layer, MSE(), X, t, eps)(v), H @ v) < 1e-9


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_hvp_matches_torch_hvp_and_hessian(torch, activation):
    model, x, y = tiny_mlp(activation, hidden=(5,))
    w = get_flat(model)
    shapes = [p.data.shape for p in model.parameters()]  # fc1.W (4,5), fc1.b, fc2.W (5,3), fc2.b

    def loss(flat):
        parts, i = [], 0
        for s in shapes:
            n = int(np.prod(s))
            parts.append(flat[i:i + n].reshape(s))
            i += n
        W1, b1, W2, b2 = parts
        z = x_t @ W1 + b1
        h = torch.tanh(z) if activation == "tanh" else torch.nn.functional.gelu(z, approximate="tanh")
        return torch.nn.functional.cross_entropy(h @ W2 + b2, y_t)

    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    w_t = torch.from_numpy(w)
    H_torch = torch.autograd.functional.hessian(loss, w_t).numpy()
    hvp = make_hvp(model, SoftmaxCrossEntropy(), x, y)
    rng = np.random.default_rng(3)
    for _ in range(3):
        v = rng.standard_normal(len(w))
        _, hv_torch = torch.autograd.functional.hvp(loss, w_t, torch.from_numpy(v))
        assert rel(hvp(v), hv_torch.numpy()) < 1e-7
    assert rel(full_hessian(hvp, len(w)), H_torch) < 1e-7


def test_hvp_matches_the_full_finite_difference_hessian_of_second_differences():
    # an independent route: H_ij from differences of the loss alone (no backward at all)
    model, x, y = tiny_mlp("tanh", d=3, hidden=(3,), classes=3)
    loss_fn = SoftmaxCrossEntropy()
    w0 = get_flat(model)
    n, h = len(w0), 1e-4
    from dlx.nn.hessian import set_flat

    def L(w):
        set_flat(model, w)
        return loss_fn.forward(model.forward(x), y)

    H = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            ei, ej = np.eye(n)[i] * h, np.eye(n)[j] * h
            H[i, j] = (L(w0 + ei + ej) - L(w0 + ei - ej) - L(w0 - ei + ej) + L(w0 - ei - ej)) / (4 * h * h)
    set_flat(model, w0)
    # second differences of a float64 loss carry ~1e-16 / h^2 = 1e-8 of rounding
    assert rel(full_hessian(make_hvp(model, loss_fn, x, y), n), H) < 1e-6


def test_power_iteration_on_a_quadratic_with_known_spectrum():
    rng = np.random.default_rng(4)
    Q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    eig = np.r_[10.0, 5.0, np.linspace(-3, 3, 28)]
    A = Q @ np.diag(eig) @ Q.T
    lam, v = power_iteration(lambda u: A @ u, 30, rng, iters=200, tol=1e-14)
    assert abs(lam - 10.0) < 1e-10
    assert abs(abs(v @ Q[:, 0]) - 1) < 1e-8
    # the largest magnitude, not the largest value: -8 beats 6
    eig2 = np.r_[6.0, -8.0, np.linspace(-1, 1, 28)]
    B = Q @ np.diag(eig2) @ Q.T
    assert abs(power_iteration(lambda u: B @ u, 30, rng, iters=500, tol=1e-14)[0] + 8) < 1e-8


def test_lanczos_top_eigenvalues_of_a_quadratic():
    rng = np.random.default_rng(5)
    Q, _ = np.linalg.qr(rng.standard_normal((200, 200)))
    eig = np.r_[50.0, 30.0, 20.0, rng.uniform(-1, 1, 197)]
    A = Q @ np.diag(eig) @ Q.T
    ritz = lanczos(lambda u: A @ u, 200, rng, iters=30)
    assert len(ritz) == 30
    np.testing.assert_allclose(ritz[:3], [50, 30, 20], rtol=1e-9)
    # at n steps the Ritz values are the whole spectrum
    small = A[:8, :8]
    np.testing.assert_allclose(lanczos(lambda u: small @ u, 8, rng, iters=50),
                               np.linalg.eigvalsh(small)[::-1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_top_eigenvalues_of_a_tiny_mlp_match_eigvalsh(activation):
    model, x, y = tiny_mlp(activation, d=4, hidden=(6, 5), classes=3)
    loss_fn = SoftmaxCrossEntropy()
    n = n_params(model)
    H = full_hessian(make_hvp(model, loss_fn, x, y), n)
    exact = np.linalg.eigvalsh(H)[::-1]
    rng = np.random.default_rng(6)
    top = sharpness(model, loss_fn, x, y, rng, iters=40)
    assert abs(top - exact[0]) < 1e-6 * abs(exact[0])
    ritz = lanczos(make_hvp(model, loss_fn, x, y), n, rng, iters=n)
    np.testing.assert_allclose(ritz[:5], exact[:5], rtol=1e-6)
    # power iteration finds the same top eigenvalue when it dominates in magnitude
    if exact[0] > abs(exact[-1]):
        lam, _ = power_iteration(make_hvp(model, loss_fn, x, y), n, rng, iters=2000, tol=1e-13)
        assert abs(lam - exact[0]) < 1e-6 * abs(exact[0])
