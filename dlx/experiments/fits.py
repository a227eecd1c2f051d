"""Fitting scaling laws without scipy, on log loss, with intervals from resampling seeds.

Two forms, both fitted by least squares on log L (scaling laws are judged on log axes, and the
seed noise of a loss is roughly a constant fraction of it):

* the pure power law of Kaplan et al. (2020), ``L = A x^-alpha``: a straight line in log-log,
  fitted by linear regression of log L on log x;
* the saturating law of Hoffmann et al. (2022), ``L = E + A x^-alpha``, with an irreducible
  floor E >= 0, fitted by Levenberg-Marquardt on ``log L = log(E + A x^-alpha)`` in the
  parameters (log A, alpha, log E) from several starting floors, keeping the best.

Intervals (:func:`seed_bootstrap`): every run is one observation (x, L) of one seed; a resample
draws, for each distinct x, as many observations as it has from its own seeds with replacement,
and refits. The 2.5 and 97.5 percentiles are the 95% interval: it measures how much the fit
moves with the seeds (init, batch order), not how wrong the functional form is.
"""

from __future__ import annotations

import numpy as np


def r2_log(L, pred) -> float:
    """R^2 of the prediction on log L."""
    y, p = np.log(np.asarray(L, float)), np.log(np.maximum(np.asarray(pred, float), 1e-300))
    return float(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))


def fit_power(x, L) -> dict:
    """L = A x^-alpha by linear regression of log L on log x."""
    x, L = np.asarray(x, float), np.asarray(L, float)
    slope, intercept = np.polyfit(np.log(x), np.log(L), 1)
    return {"A": float(np.exp(intercept)), "alpha": float(-slope),
            "r2_log": r2_log(L, np.exp(intercept) * x ** slope)}


def _levenberg_marquardt(u, y, theta, iters: int = 200):
    """Minimize sum (log(exp(c) + exp(a - alpha u)) - y)^2 over theta = (a, alpha, c), where
    u = log(x / x0): the update is delta = -(J^T J + lam diag(J^T J))^-1 J^T r, lam shrinking
    after a step that lowers the sum and growing after one that does not."""
    def residual(t):
        return np.logaddexp(t[2], t[0] - t[1] * u) - y

    r, lam = residual(theta), 1e-3
    sse = r @ r
    for _ in range(iters):
        w = 1 / (1 + np.exp(theta[2] - theta[0] + theta[1] * u))  # A x^-alpha / (E + A x^-alpha)
        J = np.stack([w, -u * w, 1 - w], axis=1)
        g, H = J.T @ r, J.T @ J
        while True:
            step = np.linalg.solve(H + lam * np.diag(np.diag(H) + 1e-12), -g)
            trial = theta + step
            r_new = residual(trial)
            if r_new @ r_new < sse:
                gain = sse - r_new @ r_new
                theta, r, sse, lam = trial, r_new, r_new @ r_new, lam / 3
                break
            lam *= 10
            if lam > 1e10:  # no step lowers the sum: a minimum
                return theta, sse
        if gain < 1e-12 * (1e-12 + sse) or np.abs(step).max() < 1e-10:
            break
    return theta, sse


def fit_saturating(x, L) -> dict:
    """L = E + A x^-alpha by least squares on log L (see the module docstring); E >= 0."""
    x, L = np.asarray(x, float), np.asarray(L, float)
    x0 = float(np.exp(np.log(x).mean()))  # x / x0 near 1: a well-conditioned fit
    u, y = np.log(x / x0), np.log(L)
    best = None
    for frac in (1e-4, 0.3, 0.6, 0.9):  # starting floors, as fractions of the lowest loss
        E0 = frac * L.min()
        slope, a0 = np.polyfit(u, np.log(L - E0), 1)
        theta, sse = _levenberg_marquardt(u, y, np.array([a0, -slope, np.log(E0)]))
        if best is None or sse < best[1]:
            best = (theta, sse)
    (a, alpha, c), _ = best
    E, A = float(np.exp(c)), float(np.exp(a) * x0 ** alpha)
    return {"E": E, "A": A, "alpha": float(alpha), "r2_log": r2_log(L, E + A * x ** -alpha)}


def resample_fits(fit, x, L, n: int = 1000, seed: int = 0) -> list[dict]:
    """``fit`` refitted to ``n`` seed-resampled copies of the observations: for each distinct x,
    as many of its own observations as it has, drawn with replacement."""
    x, L = np.asarray(x, float), np.asarray(L, float)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(x == v) for v in np.unique(x)]
    fitted = []
    for _ in range(n):
        idx = np.concatenate([rng.choice(g, len(g)) for g in groups])
        fitted.append(fit(x[idx], L[idx]))
    return fitted


def intervals(fitted: list[dict]) -> dict:
    """95% percentile intervals of each fitted parameter (R^2 aside; NaN fits left out)."""
    keys = [k for k in fitted[0] if k != "r2_log"]
    return {k: [float(np.nanpercentile([f[k] for f in fitted], q)) for q in (2.5, 97.5)]
            for k in keys}


def seed_bootstrap(fit, x, L, n: int = 1000, seed: int = 0) -> dict:
    """95% intervals of each fitted parameter over refits to seed-resampled observations."""
    return intervals(resample_fits(fit, x, L, n, seed))


def parabola_minimum(N, L) -> dict:
    """The N at the minimum of an IsoFLOP profile (Hoffmann et al.): a parabola in log N,
    L ~ a u^2 + b u + c with u = log N, fitted to the observations of the size with the lowest
    mean loss and of its neighbours on either side (near the minimum, where a parabola holds;
    the far sizes, starved of steps or of capacity, bend the profile), minimum at u* = -b / 2a.
    NaN when the lowest mean is at an end of the sizes (the optimum lies outside them) or the
    parabola opens downwards."""
    N, L = np.asarray(N, float), np.asarray(L, float)
    sizes = np.unique(N)
    k = int(np.argmin([L[N == v].mean() for v in sizes]))
    nan = {"N_opt": float("nan"), "L_opt": float("nan"), "coef": [float("nan")] * 3,
           "window": [float(sizes[max(k - 1, 0)]), float(sizes[min(k + 1, len(sizes) - 1)])]}
    if k in (0, len(sizes) - 1):
        return nan
    keep = (N >= sizes[k - 1]) & (N <= sizes[k + 1])
    a, b, c = np.polyfit(np.log(N[keep]), L[keep], 2)
    if a <= 0:
        return {**nan, "coef": [float(a), float(b), float(c)]}
    return {**nan, "N_opt": float(np.exp(-b / (2 * a))), "L_opt": float(c - b * b / (4 * a)),
            "coef": [float(a), float(b), float(c)]}


def summarize(x, L) -> dict:
    """Per distinct x: the mean and sample sd of L over its observations (seeds), and how many."""
    x, L = np.asarray(x, float), np.asarray(L, float)
    xs = np.unique(x)
    return {"x": xs.tolist(),
            "mean": [float(L[x == v].mean()) for v in xs],
            "sd": [float(L[x == v].std(ddof=1)) if (x == v).sum() > 1 else 0.0 for v in xs],
            "n": [int((x == v).sum()) for v in xs]}


def isoflop(C, N, L, n: int = 1000, seed: int = 0) -> dict:
    """Hoffmann et al.'s IsoFLOP analysis: for each compute budget C, the compute-optimal N (the
    minimum of a parabola in log N, :func:`parabola_minimum`) and D = C / 6N; then the exponent
    a of N_opt ~ C^a across budgets (a line in log-log). Intervals resample the seeds of every
    (C, N) cell (see :func:`resample_fits`)."""
    C, N, L = (np.asarray(v, float) for v in (C, N, L))
    budgets = np.unique(C)

    def optima(idx):
        return np.array([parabola_minimum(N[idx][C[idx] == c], L[idx][C[idx] == c])["N_opt"]
                         for c in budgets])

    def exponent(opt):
        ok = np.isfinite(opt)
        return float(np.polyfit(np.log(budgets[ok]), np.log(opt[ok]), 1)[0]) if ok.sum() >= 2 \
            else float("nan")

    point = optima(np.arange(len(L)))
    rng = np.random.default_rng(seed)
    cells = [np.flatnonzero((C == c) & (N == v)) for c in budgets for v in np.unique(N[C == c])]
    draws = np.array([optima(np.concatenate([rng.choice(g, len(g)) for g in cells]))
                      for _ in range(n)])
    slopes = [exponent(row) for row in draws]
    per_budget = [{"C": float(c), "N_opt": float(point[i]),
                   # no interval for a budget whose profile has no minimum
                   "N_opt_ci95": [float(np.nanpercentile(draws[:, i], q)) if np.isfinite(point[i])
                                  else float("nan") for q in (2.5, 97.5)],
                   "D_opt": float(c / (6 * point[i])),
                   "tokens_per_param": float(c / (6 * point[i] ** 2)),
                   "profile": parabola_minimum(N[C == c], L[C == c]),
                   "no_minimum_fraction": float(np.mean(~np.isfinite(draws[:, i])))}
                  for i, c in enumerate(budgets)]
    return {"budgets": per_budget, "a": exponent(point),
            "a_ci95": [float(np.nanpercentile(slopes, q)) for q in (2.5, 97.5)]}
