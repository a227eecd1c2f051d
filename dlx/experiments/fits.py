"""Fitting scaling laws without scipy: L(N) = E + A N^-alpha (and the pure power law A N^-alpha),
with bootstrap confidence intervals and R^2 on log L."""

from __future__ import annotations

import numpy as np


def _linear(N: np.ndarray, L: np.ndarray, alpha: float) -> tuple[float, float, float]:
    """Best E >= 0, A >= 0 for a fixed alpha by least squares on L; returns (E, A, sse)."""
    X = np.stack([np.ones_like(N), N ** -alpha], axis=1)
    (E, A), *_ = np.linalg.lstsq(X, L, rcond=None)
    if E < 0:  # the constraint binds: fit A alone
        E, A = 0.0, float(np.dot(X[:, 1], L) / np.dot(X[:, 1], X[:, 1]))
    A = max(A, 0.0)
    r = L - (E + A * N ** -alpha)
    return float(E), float(A), float(r @ r)


def fit_saturating(N, L) -> dict:
    """alpha by a fine grid then golden-section refinement; E and A linear given alpha."""
    N, L = np.asarray(N, float), np.asarray(L, float)
    grid = np.linspace(0.01, 3.0, 300)
    sse = [_linear(N, L, a)[2] for a in grid]
    i = int(np.argmin(sse))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    g = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if _linear(N, L, a)[2] < _linear(N, L, b)[2]:
            hi = b
        else:
            lo = a
    alpha = (lo + hi) / 2
    E, A, _ = _linear(N, L, alpha)
    return {"E": E, "A": A, "alpha": float(alpha), "r2_log": r2_log(L, E + A * N ** -alpha)}


def fit_power(N, L) -> dict:
    N, L = np.asarray(N, float), np.asarray(L, float)
    slope, intercept = np.polyfit(np.log(N), np.log(L), 1)
    return {"A": float(np.exp(intercept)), "alpha": float(-slope),
            "r2_log": r2_log(L, np.exp(intercept) * N ** slope)}


def r2_log(L: np.ndarray, pred: np.ndarray) -> float:
    """R^2 of the prediction on log L (scaling laws are judged on log axes)."""
    y, p = np.log(L), np.log(np.maximum(pred, 1e-300))
    return float(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))


def bootstrap(fit, N, L, n: int = 500, seed: int = 0) -> dict:
    """95% intervals of each fitted parameter over fits to resampled points."""
    N, L = np.asarray(N, float), np.asarray(L, float)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(n):
        idx = rng.integers(0, len(N), len(N))
        if len(np.unique(N[idx])) < 3:
            continue
        for k, v in fit(N[idx], L[idx]).items():
            if k != "r2_log":
                samples.setdefault(k, []).append(v)
    return {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]
            for k, v in samples.items()}
