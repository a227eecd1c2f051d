"""Conditioning: how the condition number kappa = L/mu of the Hessian sets the speed of descent.

On quadratics f(x) = x^T A x / 2 with eigenvalues spread over [mu, L] = [1, kappa]:
gradient descent with step 2/(L + mu) contracts the error by (kappa - 1)/(kappa + 1) per step,
so it needs ~ kappa/2 * ln(1/tol) steps (slope 1 on log-log axes); heavy-ball momentum with
the optimal alpha = 4/(sqrt(L) + sqrt(mu))^2, beta = ((sqrt(kappa) - 1)/(sqrt(kappa) + 1))^2
contracts by (sqrt(kappa) - 1)/(sqrt(kappa) + 1): ~ sqrt(kappa)/2 * ln(1/tol) steps (slope 1/2).
A step just above 2/L diverges, just below converges. And for logistic regression, standardizing
the features shrinks the Hessian's condition number and with it the number of GD steps.

The learner's code joins in where it stands for a piece: their optimizer (``optimizer=my_sgd``)
walks each quadratic beside GD and heavy ball from the same start, at the step of the method it
implements (``reference: momentum``: the optimal alpha, and beta as its ``momentum`` option;
otherwise GD's 2/(L + mu)); their model and loss (``model=my_logreg``, ``loss=my_bce``) take the
standardization's place of dlx's Linear and BCE, from the same initial weights.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np

from dlx import learner
from dlx.assemble import build_dataset, build_loss, build_model, build_optimizer, rngs
from dlx.errors import UsageError
from dlx.nn import BCEWithLogits, Linear, Parameter
from dlx.training import TrainResult

GENERIC_RUN_PLOTS = False
METHODS = ("gd", "momentum")


def validate(cfg) -> None:
    c = cfg.get("conditioning") or {}
    kappas = c.get("kappas")
    if not (isinstance(kappas, list) and len(kappas) >= 2
            and all(isinstance(k, (int, float)) and k > 1 for k in kappas)):
        raise UsageError(f"conditioning.kappas must list >= 2 numbers > 1, got {kappas!r}")
    if not (isinstance(c.get("tol"), float) and 0 < c["tol"] < 1):
        raise UsageError(f"conditioning.tol must be in (0, 1), got {c.get('tol')!r}")
    if not (isinstance(c.get("dim"), int) and c["dim"] >= 2):
        raise UsageError(f"conditioning.dim must be an integer >= 2, got {c.get('dim')!r}")


def rates(kappa: float) -> dict[str, float]:
    """Worst-case contraction factor per step, from theory."""
    return {"gd": (kappa - 1) / (kappa + 1),
            "momentum": (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)}


def descend(eig: np.ndarray, method: str, tol: float, max_iter: int, step: float | None = None):
    """Run GD or heavy ball on diag(eig) from x0 = 1; return (iterations, curve of ||x||/||x0||).

    ``iterations`` is None if ``max_iter`` passed first, and -1 if the iterate blew up.
    """
    L, mu = eig.max(), eig.min()
    if method == "gd":
        alpha, beta = (2.0 / (L + mu) if step is None else step), 0.0
    else:
        alpha = 4.0 / (math.sqrt(L) + math.sqrt(mu)) ** 2
        beta = ((math.sqrt(L) - math.sqrt(mu)) / (math.sqrt(L) + math.sqrt(mu))) ** 2
    x = [np.ones_like(eig), np.ones_like(eig)]  # x_t, x_{t-1}

    def advance() -> np.ndarray:
        x[0], x[1] = x[0] - alpha * eig * x[0] + beta * (x[0] - x[1]), x[0]
        return x[0]

    return _until(x[0], advance, tol, max_iter)


def descend_with(make, eig: np.ndarray, tol: float, max_iter: int):
    """:func:`descend` with an optimizer object: ``make(params)`` built over x (from x0 = 1)
    on diag(eig), the gradient eig * x given to it at each step."""
    p = Parameter(np.ones_like(eig), "x", decay=False)
    opt = make([p])

    def advance() -> np.ndarray:
        p.grad[...] = eig * p.data
        opt.step()
        return p.data

    return _until(p.data, advance, tol, max_iter)


def _until(x0: np.ndarray, advance, tol: float, max_iter: int):
    """Iterate ``advance() -> x_t`` until ||x_t|| <= tol ||x_0||: (t, the curve of ratios);
    t is None if ``max_iter`` passed first, -1 if the iterate blew up."""
    norm0 = float(np.linalg.norm(x0))
    curve = [1.0]
    for t in range(1, max_iter + 1):
        ratio = float(np.linalg.norm(advance())) / norm0
        curve.append(ratio)
        if ratio <= tol:
            return t, curve
        if not math.isfinite(ratio) or ratio > 1e6:
            return -1, curve
    return None, curve


def learners_step(node: dict, eig: np.ndarray) -> dict:
    """The learner's optimizer node at the step of the method it implements on diag(eig)."""
    L, mu = float(eig.max()), float(eig.min())
    if node.get("reference") in ("momentum", "nesterov"):
        beta = ((math.sqrt(L) - math.sqrt(mu)) / (math.sqrt(L) + math.sqrt(mu))) ** 2
        return {**node, "lr": 4.0 / (math.sqrt(L) + math.sqrt(mu)) ** 2,
                **({"momentum": beta} if "momentum" in node else {})}
    return {**node, "lr": 2.0 / (L + mu)}


def logistic_gd(X: np.ndarray, y: np.ndarray, tol: float, max_iter: int, model=None,
                loss_fn=None) -> dict:
    """Full-batch GD with step 1/L (L = lambda_max of the loss Hessian's bound X^T X / 4n) on
    logistic regression; iterations until ||grad|| <= tol * ||grad_0||, and the condition
    number of that bound (features with a bias column). ``model`` and ``loss_fn`` (the
    learner's) stand in for dlx's Linear and BCE, starting from the Linear's initial weights
    where their parameters' shapes agree."""
    Xb = np.hstack([X, np.ones((len(X), 1))])
    H = Xb.T @ Xb / (4 * len(X))
    eig = np.linalg.eigvalsh(H)
    layer = Linear(X.shape[1], 1, dtype=np.float64)
    if model is not None:
        for mine, ref in zip(model.parameters(), layer.parameters()):
            if mine.data.shape == ref.data.shape:
                mine.data[...] = ref.data
        layer = model
    loss_fn = loss_fn or BCEWithLogits()
    params = layer.parameters()
    lr = 1.0 / eig.max()
    g0 = None
    for t in range(1, max_iter + 1):
        layer.zero_grad()
        loss_fn.forward(layer.forward(X), y)
        layer.backward(loss_fn.backward())
        g = math.sqrt(sum(float((p.grad ** 2).sum()) for p in params))
        g0 = g0 or g
        if g <= tol * g0:
            return {"kappa": float(eig.max() / eig.min()), "iterations": t}
        for p in params:
            p.data -= lr * p.grad
    return {"kappa": float(eig.max() / eig.min()), "iterations": None}


def run(cfg, rec, run_dir: Path) -> TrainResult:
    c = cfg["conditioning"]
    start = time.perf_counter()
    rows, curves, slopes = [], [], {}
    mine = cfg["optimizer"] if learner.is_learner(cfg["optimizer"]) else None
    methods = METHODS + ((str(mine["name"]),) if mine else ())
    for i, kappa in enumerate(c["kappas"]):
        eig = np.logspace(0, math.log10(kappa), c["dim"])
        for method in methods:
            if method in METHODS:
                iters, curve = descend(eig, method, c["tol"], c["max_iter"])
                rate = rates(kappa)[method]
            else:  # the learner's optimizer, at the step of the method it implements
                node = learners_step(mine, eig)
                iters, curve = descend_with(lambda ps, n=node: build_optimizer(n, ps), eig,
                                            c["tol"], c["max_iter"])
                rate = rates(kappa)["momentum" if mine.get("reference") in
                                    ("momentum", "nesterov") else "gd"]
            predicted = math.log(c["tol"]) / math.log(rate)
            rows.append({"method": method, "kappa": kappa, "iterations": iters,
                         "rate": rate, "predicted_iterations": predicted})
            rec.log(i, 0, method, f"iterations_kappa{kappa:g}", float(iters or math.nan))
            keep = np.unique(np.geomspace(1, len(curve), 300).astype(int) - 1)
            curves += [(method, kappa, int(t), curve[t]) for t in keep]
    for method in methods:
        pts = [(r["kappa"], r["iterations"]) for r in rows if r["method"] == method
               and r["iterations"] and r["iterations"] > 0]
        if len(pts) < 2:
            slopes[method] = math.nan
            continue
        slope = float(np.polyfit(np.log10([k for k, _ in pts]), np.log10([n for _, n in pts]), 1)[0])
        slopes[method] = slope
        rec.log(0, 0, method, "slope", slope)

    # a step just past the stability limit 2/L diverges; just below it converges
    eig = np.logspace(0, 2, c["dim"])
    margin = c["boundary_margin"]
    above, above_curve = descend(eig, "gd", c["tol"], 20000, step=2.0 / eig.max() * (1 + margin))
    below, below_curve = descend(eig, "gd", c["tol"], 20000, step=2.0 / eig.max() * (1 - margin))
    boundary = {"step_above_2_over_L": "diverged" if above == -1 else "converged",
                "step_below_2_over_L": "converged" if below and below > 0 else "diverged",
                "margin": margin}

    # standardization on logistic regression: one feature on a scale `feature_scale` times larger
    data = build_dataset(cfg["dataset"], rngs(cfg["seed"])["data"], np.float64)
    X = data.X_train.copy()
    X[:, 1] = X[:, 1] * c["feature_scale"] + 3 * c["feature_scale"]
    standardized = (X - X.mean(axis=0)) / X.std(axis=0)
    raw = logistic_gd(X, data.y_train, c["logreg_tol"], c["logreg_max_iter"], *yours(cfg, data))
    std = logistic_gd(standardized, data.y_train, c["logreg_tol"], c["logreg_max_iter"],
                      *yours(cfg, data))
    for name, r in (("raw", raw), ("standardized", std)):
        rec.log(0, 0, f"logreg_{name}", "hessian_kappa", r["kappa"])
        rec.log(0, 0, f"logreg_{name}", "iterations", float(r["iterations"] or math.nan))

    with open(run_dir / "conditioning.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with open(run_dir / "conditioning_curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "kappa", "iteration", "relative_error"])
        w.writerows(curves)
    with open(run_dir / "stability.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step_over_2_over_L", "iteration", "relative_error"])
        for factor, curve in ((1 + margin, above_curve), (1 - margin, below_curve)):
            w.writerows((factor, t, e) for t, e in enumerate(curve))
    seconds = time.perf_counter() - start
    steps = sum(r["iterations"] or 0 for r in rows)
    return TrainResult(steps, seconds, None, None, 0, 0,
                       extra={"conditioning": {"slopes": slopes, "boundary": boundary,
                                               "logreg": {"raw": raw, "standardized": std}}})


def yours(cfg, data) -> tuple:
    """(model, loss) for the standardization: the learner's where the config names theirs,
    None for dlx's Linear and BCE."""
    model = loss = None
    if learner.is_learner(cfg["model"]):
        model = build_model(cfg["model"], cfg["init"], data.spec, rngs(cfg["seed"])["init"],
                            np.dtype(np.float64))
    if learner.is_learner(cfg.get("loss")):
        loss = build_loss(cfg["loss"], data.spec)
    return model, loss


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    import pandas as pd

    from dlx.plots.style import figure, panels, save

    table = pd.read_csv(run.path / "conditioning.csv")
    curves = pd.read_csv(run.path / "conditioning_curves.csv")
    info = run.summary.get("conditioning", {})
    slopes = info.get("slopes", {})
    tol = run.config["conditioning"]["tol"]
    written = []

    fig, ax = figure(f"iterations to reach ||x|| <= {tol:g} ||x0|| on quadratics",
                     "condition number κ = L/μ", "iterations (log scale)")
    names = {"gd": "gradient descent, step 2/(L+μ)", "momentum": "heavy ball, optimal α, β"}
    for method, color in (("gd", "tab:blue"), ("momentum", "tab:orange")):
        t = table[table["method"] == method]
        ax.plot(t["kappa"], t["iterations"], "o", color=color, ms=7,
                label=f"{names[method]}: fitted slope {slopes.get(method, float('nan')):.2f}")
        ax.plot(t["kappa"], t["predicted_iterations"], "--", color=color, alpha=0.7,
                label="theory: ln(tol)/ln(" + ("(κ−1)/(κ+1)" if method == "gd" else "(√κ−1)/(√κ+1)") + ")")
    heavy = (run.config.get("optimizer") or {}).get("reference") in ("momentum", "nesterov")
    for method in [m for m in table["method"].unique() if m not in METHODS]:  # the learner's
        t = table[(table["method"] == method) & (table["iterations"] > 0)]
        ax.plot(t["kappa"], t["iterations"], "x", color="black", ms=9, mew=2,
                label=f"yours: {method} at {'heavy ball’s α' if heavy else 'step 2/(L+μ)'}: "
                      f"fitted slope {slopes.get(method, float('nan')):.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    written.append(save(fig, out / f"iterations_vs_kappa.{fmt}"))

    fig, ax = figure("convergence on quadratics of growing condition number",
                     "iteration (log scale)", "relative error ||x_t|| / ||x_0|| (log scale)")
    kappas = sorted(curves["kappa"].unique())
    for method, ls in (("gd", "-"), ("momentum", "--")):  # dlx's: the learner's are in the table
        for i, kappa in enumerate(kappas):
            c = curves[(curves["method"] == method) & (curves["kappa"] == kappa)]
            ax.plot(c["iteration"] + 1, c["relative_error"], ls, color=f"C{i}",
                    label=f"{method}, κ={kappa:g}")
    ax.axhline(tol, color="gray", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)
    written.append(save(fig, out / f"convergence_curves.{fmt}"))

    if (run.path / "stability.csv").is_file():
        written.append(_stability_figure(run, out, fmt, tol))

    lr = info.get("logreg", {})
    if lr:
        fig, axes = panels("standardizing features: logistic regression, full-batch GD with "
                           "step 1/L", 2, size=(9, 4.4))
        labels = ["raw", "standardized"]
        for ax, key, ylabel in ((axes[0], "kappa", "condition number of XᵀX/4n (log scale)"),
                                (axes[1], "iterations", "GD iterations to ||∇|| ≤ 0.01 ||∇₀|| (log)")):
            values = [lr[name][key] or float("nan") for name in labels]
            ax.bar(labels, values, color=["tab:red", "tab:green"])
            ax.set_yscale("log")
            ax.set_ylabel(ylabel)
            ax.set_xlabel("features (one raw feature on a 10x scale and shifted)")
            for x, v in enumerate(values):
                ax.text(x, v, f"{v:,.0f}" if v >= 10 else f"{v:.2f}", ha="center", va="bottom")
        written.append(save(fig, out / f"standardization.{fmt}"))
    return written


def _stability_figure(run, out: Path, fmt: str, tol: float) -> Path:
    """The stability limit of gradient descent: on the quadratic with eigenvalues in [1, 100],
    a step (1 + margin) * 2/L grows the top eigendirection by |1 - step * L| > 1 per iteration
    and diverges; (1 - margin) * 2/L converges, slowly."""
    import pandas as pd

    from dlx.plots.style import figure, save

    table = pd.read_csv(run.path / "stability.csv")
    fig, ax = figure("gradient descent's stability limit 2/L (quadratic, κ = 100, L = 100)",
                     "iteration", "relative error ||x_t|| / ||x_0|| (log scale)")
    for (factor, rows), color in zip(table.groupby("step_over_2_over_L", sort=False),
                                     ("tab:red", "tab:green")):
        verdict = "diverges" if factor > 1 else "converges"
        ax.plot(rows["iteration"], rows["relative_error"], color=color, lw=1.8,
                label=f"step = {factor:g} × 2/L: {verdict}")
    ax.axhline(1.0, color="gray", lw=0.8, ls=":")
    ax.axhline(tol, color="gray", lw=0.8)
    ax.set_yscale("log")
    ax.legend(fontsize=9)
    return save(fig, out / f"stability_limit.{fmt}")
