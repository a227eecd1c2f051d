"""Curvature of a model's loss: Hessian-vector products, the full Hessian of a small model, and
its top eigenvalues by power iteration and by Lanczos.

All parameters are seen as one flat vector w (``model.parameters()`` in order, each raveled), so
H = d^2 L / dw dw^T is (P, P) for P parameters. Nothing here forms H for a real network: a
Hessian-vector product costs two gradients, by centred differences of the hand-written
backward::

    H v = (g(w + eps v) - g(w - eps v)) / (2 eps) + O(eps^2 |v|^3 |d^3 L|)

and the eigen-solvers only ever ask for H v. Use float64: in float32 the differences are noise.

    hvp = make_hvp(model, loss_fn, x, y)      # v (P,) -> H v (P,)
    top = lanczos(hvp, n_params(model), iters=20, rng=rng)[0]    # the sharpness
"""

from __future__ import annotations

from typing import Callable

import numpy as np

HVP = Callable[[np.ndarray], np.ndarray]


def n_params(model) -> int:
    return sum(p.data.size for p in model.parameters())


def get_flat(model) -> np.ndarray:
    """The parameters as one vector (P,) (a copy)."""
    return np.concatenate([p.data.ravel() for p in model.parameters()])


def set_flat(model, w: np.ndarray) -> None:
    """Write the vector w (P,) back into the parameters, in place."""
    i = 0
    for p in model.parameters():
        p.data[...] = w[i:i + p.data.size].reshape(p.data.shape)
        i += p.data.size


def flat_grad(model, loss_fn, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """(L(w), dL/dw (P,)) at the model's current parameters, by its hand-written backward."""
    model.zero_grad()
    loss = loss_fn.forward(model.forward(x), y)
    model.backward(loss_fn.backward())
    return loss, np.concatenate([p.grad.ravel() for p in model.parameters()])


def make_hvp(model, loss_fn, x: np.ndarray, y: np.ndarray, eps: float = 1e-5) -> HVP:
    """v -> H v by centred differences of gradients along v, at the parameters the model has
    when ``make_hvp`` is called (they are restored after every product).

    Args:
        model: a Module in eval mode (dropout off: the loss must be a function of w alone).
        loss_fn: a loss with ``forward(out, y) -> float`` and ``backward() -> dout``.
        x, y: the batch the loss is averaged over (the full training set for full-batch GD).
        eps: the step along v / |v|; the error is O(eps^2) truncation + O(1e-16 / eps)
            rounding, balanced near 1e-5 in float64 (relative error ~1e-9 on smooth models).
    """
    w0 = get_flat(model)

    def hvp(v: np.ndarray) -> np.ndarray:
        norm = float(np.linalg.norm(v))
        if norm == 0.0:
            return np.zeros_like(w0)
        h = eps / norm  # a step of eps in w-space whatever the scale of v
        set_flat(model, w0 + h * v)
        g_plus = flat_grad(model, loss_fn, x, y)[1]
        set_flat(model, w0 - h * v)
        g_minus = flat_grad(model, loss_fn, x, y)[1]
        set_flat(model, w0)
        return (g_plus - g_minus) / (2 * h)

    return hvp


def logreg_hessian(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The exact Hessian of mean binary cross-entropy of sigmoid(x W + b), in the flat order
    (W (D, 1) raveled, then b (1,)):

        H = X~^T diag(p (1 - p)) X~ / N,  X~ = [X 1] (N, D+1),  p = sigmoid(X W + b)

    (the loss is convex: H is positive semi-definite). The closed form the finite differences
    are checked against."""
    Xb = np.hstack([X, np.ones((len(X), 1), dtype=X.dtype)])  # (N, D+1)
    p = 1.0 / (1.0 + np.exp(-(X @ W[:, 0] + b[0])))  # (N,)
    return Xb.T @ (Xb * (p * (1 - p))[:, None]) / len(X)


def full_hessian(hvp: HVP, n: int) -> np.ndarray:
    """H (n, n) column by column, H e_i = hvp(e_i), symmetrized ((H + H^T) / 2: the finite
    differences leave an asymmetry of their own error's size). n products: small models only."""
    H = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1.0
        H[:, i] = hvp(e)
    return (H + H.T) / 2


def power_iteration(hvp: HVP, n: int, rng: np.random.Generator, iters: int = 100,
                    tol: float = 1e-10) -> tuple[float, np.ndarray]:
    """The eigenvalue of largest magnitude and its unit eigenvector, by v <- H v / |H v|.

    The Rayleigh quotient lambda = v^T H v converges like (lambda_2 / lambda_1)^(2k): slowly
    when the top two are close, which is why :func:`lanczos` is the default estimator.

    Args:
        hvp: v (n,) -> H v (n,).
        n: the dimension.
        rng: draws the starting vector.
        iters: the most products made.
        tol: stop when lambda changes by less than tol * |lambda|.
    """
    v = rng.standard_normal(n)
    v /= np.linalg.norm(v)
    lam = 0.0
    for _ in range(iters):
        hv = hvp(v)
        new = float(v @ hv)
        norm = float(np.linalg.norm(hv))
        if norm == 0.0:
            return 0.0, v
        v = hv / norm
        if abs(new - lam) <= tol * abs(new):
            return new, v
        lam = new
    return lam, v


def lanczos(hvp: HVP, n: int, rng: np.random.Generator, iters: int = 20) -> np.ndarray:
    """Ritz values of H after ``iters`` Lanczos steps, largest first (``iters`` products).

    Builds an orthonormal basis Q_k of the Krylov space {v, Hv, ..., H^(k-1) v} and the
    tridiagonal T_k = Q_k^T H Q_k (alpha_j on the diagonal, beta_j beside it):

        beta_j q_(j+1) = H q_j - alpha_j q_j - beta_(j-1) q_(j-1)

    The extreme eigenvalues of T_k converge to H's far faster than power iteration's (a few
    dozen steps give the top one to ~1e-8 on a well-separated spectrum). Each new vector is
    re-orthogonalized against all earlier ones (twice, Gram-Schmidt): in floating point the
    three-term recurrence alone loses orthogonality and repeats converged eigenvalues.

    Args:
        hvp: v (n,) -> H v (n,), H symmetric.
        n: the dimension; at most n steps are taken (then T is H in another basis).
        rng: draws the starting vector.
        iters: the number of steps (= Hessian-vector products).
    """
    k = min(iters, n)
    Q = np.zeros((k, n))
    alpha, beta = np.zeros(k), np.zeros(k)
    q = rng.standard_normal(n)
    Q[0] = q / np.linalg.norm(q)
    for j in range(k):
        w = hvp(Q[j])
        alpha[j] = Q[j] @ w
        for _ in range(2):  # full re-orthogonalization against q_0..q_j
            w -= Q[:j + 1].T @ (Q[:j + 1] @ w)
        if j + 1 == k:
            break
        beta[j] = np.linalg.norm(w)
        if beta[j] < 1e-12 * max(abs(alpha[:j + 1]).max(), 1e-300):
            k = j + 1  # an invariant subspace: T is exact
            break
        Q[j + 1] = w / beta[j]
    T = np.diag(alpha[:k]) + np.diag(beta[:k - 1], 1) + np.diag(beta[:k - 1], -1)
    return np.linalg.eigvalsh(T)[::-1]


def sharpness(model, loss_fn, x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
              iters: int = 20, eps: float = 1e-5) -> float:
    """The top eigenvalue of the loss Hessian at the model's parameters (Lanczos, ``iters``
    products of two full-batch gradients each): the 'sharpness' that gradient descent with
    step eta keeps below 2 / eta on a quadratic."""
    return float(lanczos(make_hvp(model, loss_fn, x, y, eps), n_params(model), rng, iters)[0])
