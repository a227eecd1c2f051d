"""house_prices: linear regression on California housing three ways, and an MLP beside it.

Every member trains its model (``linreg`` or ``mlp``) with the configured optimizer and writes
the usual curves, in dollars. A ``linreg`` member also:

* solves least squares in closed form, theta* = argmin ||A theta - t||^2 with the standardized
  design and a bias column, A = [X 1] (:func:`closed_form`, numpy.linalg.lstsq);
* runs full-batch gradient descent from zero on the same linear model (dlx's Linear, MSE and
  SGD) with lr = 1/L, L the largest eigenvalue of the loss's Hessian H = (2/n) A^T A, until the
  weights are within ``gd_tol`` of theta* (:func:`gradient_descent`); on a quadratic the error
  shrinks at least by (1 - 1/kappa) per step, kappa = cond(H), so about kappa ln(1/tol) steps;
* draws learning curves: the closed form fitted on the first m training districts, training and
  validation RMSE against m (Géron ch. 4's picture of an underfitting model).

``gd_vs_closed_form.csv`` and ``learning_curve.csv`` hold the curves; summary.json's
``house_prices`` the numbers. The sweep's figure compares test RMSE in dollars, linear against
MLP, mean ± sd over seeds, with the closed form's.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dlx.errors import UsageError

GD_CSV, CURVE_CSV = "gd_vs_closed_form.csv", "learning_curve.csv"


def validate(cfg) -> None:
    s = cfg.get("house_prices") or {}
    # (the model and data are checked by dlx.config: on california_housing, a regression data
    # set, only linreg and mlp can be built)
    tol = s.get("gd_tol")
    if not (isinstance(tol, (int, float)) and 0 < tol < 1):
        raise UsageError(f"house_prices.gd_tol must be in (0, 1), got {tol!r}")
    steps = s.get("gd_max_steps")
    if not (isinstance(steps, int) and steps >= 1):
        raise UsageError(f"house_prices.gd_max_steps must be an integer >= 1, got {steps!r}")
    every = s.get("gd_every")
    if not (isinstance(every, int) and every >= 1):
        raise UsageError(f"house_prices.gd_every must be an integer >= 1, got {every!r}")
    sizes = s.get("curve_points")
    if not (isinstance(sizes, int) and sizes >= 2):
        raise UsageError(f"house_prices.curve_points must be an integer >= 2, got {sizes!r}")


# --- the maths --------------------------------------------------------------------------------

def design(X: np.ndarray) -> np.ndarray:
    """A = [X 1]: (N, D + 1) float64, the bias as the last column."""
    return np.hstack([X.astype(np.float64), np.ones((len(X), 1))])


def closed_form(X: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares with a bias: (W (D, K), b (K,)) minimizing mean ||X W + b - t||^2.

    theta* = argmin ||A theta - t||^2 = (A^T A)^-1 A^T t for A = [X 1] of full column rank,
    computed by numpy.linalg.lstsq (an SVD: no normal equations, whose condition number is
    cond(A)^2)."""
    theta = np.linalg.lstsq(design(X), t.reshape(len(t), -1).astype(np.float64), rcond=None)[0]
    return theta[:-1], theta[-1]


def hessian_spectrum(X: np.ndarray) -> np.ndarray:
    """Eigenvalues (ascending) of the MSE loss's Hessian in (W, b): H = (2/n) A^T A."""
    A = design(X)
    return np.linalg.eigvalsh(2.0 / len(A) * (A.T @ A))


def gradient_descent(X: np.ndarray, t: np.ndarray, lr: float, steps: int, tol: float = 0.0,
                     every: int = 10, target: tuple | None = None) -> dict:
    """Full-batch gradient descent from zero weights on dlx's linear model (Linear, MSE, SGD),
    float64: theta <- theta - lr * grad L(theta), L = mean (x W + b - t)^2.

    Args:
        lr: the step size (1/L is the largest that contracts every direction monotonically;
            above 2/L it diverges).
        steps: the most steps taken.
        tol: stop once max |theta - theta*| <= tol (0: take every step).
        every: a row of the trajectory every this many steps (and the first and last).
        target: (W*, b*) to measure the distance to (default: the closed form).

    Returns:
        {"W", "b", "steps", "rows": [(step, max |theta - theta*|, loss)]}.
    """
    from dlx.data.spec import DataSpec
    from dlx.nn.losses import MSE
    from dlx.nn.models import linreg
    from dlx.optim import SGD

    X, t = X.astype(np.float64), t.reshape(len(t), -1).astype(np.float64)
    W_star, b_star = closed_form(X, t) if target is None else target
    model = linreg(DataSpec.regression(X.shape[1], t.shape[1]), dtype=np.float64)
    for p in model.parameters():
        p.data[...] = 0.0
    loss_fn, opt = MSE(), SGD(model.parameters(), lr=lr)
    rows, step = [], 0

    def distance() -> float:
        return float(max(np.abs(model.W.data - W_star).max(), np.abs(model.b.data - b_star).max()))

    while True:
        opt.zero_grad()
        loss = loss_fn.forward(model.forward(X), t)
        err = distance()
        done = err <= tol or step == steps
        if step % every == 0 or done:
            rows.append((step, err, loss))
        if done:
            break
        model.backward(loss_fn.backward())
        opt.step()
        step += 1
    return {"W": model.W.data.copy(), "b": model.b.data.copy(), "steps": step, "rows": rows}


def rmse_dollars(X, t, W, b, scale: float) -> float:
    """RMSE of x W + b against standardized t, in dollars (x the target's std)."""
    r = X.astype(np.float64) @ W + b - t.reshape(len(t), -1)
    return float(scale * np.sqrt(np.mean(r**2)))


def learning_curve(data, points: int) -> list[tuple[int, float, float]]:
    """(m, train RMSE, validation RMSE) in dollars of the closed form fitted on the first m
    training districts, m log-spaced from D + 2 (just determined) to all of them."""
    n, d = data.X_train.shape
    scale = float(data.target_scale[0])
    sizes = np.unique(np.geomspace(d + 2, n, points).round().astype(int))
    rows = []
    for m in sizes:
        X, t = data.X_train[:m], data.y_train[:m]
        W, b = closed_form(X, t)
        rows.append((int(m), rmse_dollars(X, t, W, b, scale),
                     rmse_dollars(data.X_val, data.y_val, W, b, scale)))
    return rows


# --- the run ----------------------------------------------------------------------------------

def analysis(cfg, data, run_dir: Path | None) -> dict:
    """Closed form, full-batch GD against it, learning curves: numbers for summary.json, and
    the curves as CSV files in ``run_dir``."""
    s, scale = cfg["house_prices"], float(data.target_scale[0])
    W, b = closed_form(data.X_train, data.y_train)
    eig = hessian_spectrum(data.X_train)
    L, mu = float(eig[-1]), float(eig[0])
    kappa = L / mu
    # error_k <= (1 - 1/kappa)^k error_0 at lr = 1/L: the steps this bound asks for
    start = float(max(np.abs(W).max(), np.abs(b).max()))
    bound = math.ceil(math.log(start / s["gd_tol"]) / -math.log1p(-1.0 / kappa))
    gd = gradient_descent(data.X_train, data.y_train, 1.0 / L, s["gd_max_steps"], s["gd_tol"],
                          every=s["gd_every"], target=(W, b))
    curve = learning_curve(data, s["curve_points"])
    if run_dir is not None:
        with open(run_dir / GD_CSV, "w", encoding="utf-8", newline="\n") as f:
            f.write("step,max_abs_error,loss\n")
            f.writelines(f"{k},{e!r},{loss!r}\n" for k, e, loss in gd["rows"])
        with open(run_dir / CURVE_CSV, "w", encoding="utf-8", newline="\n") as f:
            f.write("train_size,train_rmse,val_rmse\n")
            f.writelines(f"{m},{tr!r},{va!r}\n" for m, tr, va in curve)
    err = float(max(np.abs(gd["W"] - W).max(), np.abs(gd["b"] - b).max()))
    return {
        "closed_form": {split: rmse_dollars(X, t, W, b, scale) for split, X, t in
                        (("train_rmse", data.X_train, data.y_train),
                         ("val_rmse", data.X_val, data.y_val),
                         ("test_rmse", data.X_test, data.y_test))},
        "weights": dict(zip([*data.description["features"], "bias"],
                            [*map(float, W[:, 0]), float(b[0])])),
        "hessian": {"L": L, "mu": mu, "kappa": kappa},
        "gd": {"lr": 1.0 / L, "tol": s["gd_tol"], "steps": gd["steps"], "bound_steps": bound,
               "max_abs_error": err, "converged": err <= s["gd_tol"]},
    }


def run(cfg, rec, run_dir):
    from dlx.assemble import build_data
    from dlx.training import train
    from dlx.training.backend import make_backend

    data = build_data(cfg)  # built once: the training and the analysis read the same arrays
    result = train(cfg, rec, cfg["progress"], run_dir, backend=make_backend(cfg, data))
    if cfg["model"]["name"] == "linreg":
        result.extra["house_prices"] = analysis(cfg, data, run_dir)
    return result


def report_numbers(run) -> dict:
    final = run.summary.get("final", {})
    numbers = {"test RMSE ($)": final.get("test/rmse"), "test R²": final.get("test/r2")}
    hp = run.summary.get("house_prices")
    if hp:
        numbers.update({"closed form test RMSE ($)": hp["closed_form"]["test_rmse"],
                        "κ of the Hessian": hp["hessian"]["kappa"],
                        "GD steps to the closed form": hp["gd"]["steps"]})
    return numbers


# --- figures ----------------------------------------------------------------------------------

def plot_run(run, out: Path, fmt: str) -> list[Path]:
    """A linreg member's GD-against-closed-form and learning-curve figure."""
    import pandas as pd

    from dlx.plots.style import panels, save

    hp = run.summary.get("house_prices")
    if not hp or not (run.path / GD_CSV).is_file():
        return []
    gd, curve = pd.read_csv(run.path / GD_CSV), pd.read_csv(run.path / CURVE_CSV)
    fig, (ax1, ax2) = panels("linear regression on California housing: gradient descent "
                             "against the closed form, and learning curves", 2, size=(13, 5))
    ax1.semilogy(gd["step"], gd["max_abs_error"], color="tab:blue",
                 label=f"full-batch GD, lr = 1/L = {hp['gd']['lr']:.3g}")
    k = np.asarray(gd["step"], dtype=float)
    ax1.semilogy(k, gd["max_abs_error"].iloc[0] * (1 - 1 / hp["hessian"]["kappa"]) ** k,
                 color="tab:gray", ls="--", label=f"(1 − 1/κ)^k, κ = {hp['hessian']['kappa']:.3g}")
    ax1.axhline(hp["gd"]["tol"], color="tab:red", lw=1, label=f"tolerance {hp['gd']['tol']:g}")
    ax1.set_xlabel("step (full-batch updates)")
    ax1.set_ylabel("max |θ − θ*| over weights and bias\n(standardized units)")
    ax1.set_title(f"GD reaches the lstsq solution in {hp['gd']['steps']:,} steps", fontsize=10)
    ax1.legend(fontsize=9)
    ax2.semilogx(curve["train_size"], curve["train_rmse"], "-o", ms=3, label="training districts")
    ax2.semilogx(curve["train_size"], curve["val_rmse"], "-s", ms=3,
                 label="validation districts")
    ax2.set_ylim(0, min(float(curve["val_rmse"].max()), 3 * float(curve["train_rmse"].max())) * 1.1)
    ax2.set_xlabel("training districts m (log scale; closed form fitted on the first m)")
    ax2.set_ylabel("RMSE (US dollars)")
    ax2.set_title("learning curves of the linear model", fontsize=10)
    ax2.legend(fontsize=9)
    return [save(fig, out / f"gd_vs_closed_form.{fmt}")]


def table(runs):
    """Per model, over seeds: mean, sd, n of test/val RMSE in dollars and test R^2."""
    from dlx.plots.sweep import setting_stats

    return setting_stats(runs, lambda r: r.config["model"]["name"], {
        "test_rmse": lambda r: r.summary.get("final", {}).get("test/rmse"),
        "val_rmse": lambda r: r.summary.get("final", {}).get("val/rmse"),
        "test_r2": lambda r: r.summary.get("final", {}).get("test/r2"),
        "test_mae": lambda r: r.summary.get("final", {}).get("test/mae")})


def _layout(run) -> str:
    """'12 → 1' or '12 → 64 → 64 → 1': the model's widths."""
    d = len(run.summary.get("data", {}).get("features", [])) or "D"
    hidden = run.config["model"].get("hidden", []) if run.config["model"]["name"] == "mlp" else []
    return " → ".join(map(str, [d, *hidden, 1]))


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    from dlx.plots.style import panels, save
    from dlx.plots.sweep import seeds_note

    out = sweep_dir / "plots" if out is None else out
    stats = table(runs)
    out.mkdir(parents=True, exist_ok=True)
    stats.to_csv(out / "house_prices.csv", index=False)
    opt = runs[0].config["optimizer"]
    trained = (f"{opt['name']} lr={opt['lr']:g}, batch {runs[0].config['batch_size']}, "
               f"{runs[0].config['epochs']} epochs")
    fig, (ax1, ax2) = panels(f"California housing: linear regression against an MLP "
                             f"({trained}; {seeds_note(stats['n'])})", 2, size=(13, 5))
    names = [str(s) for s in stats["setting"]]
    x = np.arange(len(names))
    ax1.bar(x, stats["test_rmse_mean"], yerr=stats["test_rmse_sd"].fillna(0), capsize=5,
            color=["tab:blue" if n == "linreg" else "tab:orange" for n in names])
    closed = [r.summary["house_prices"]["closed_form"]["test_rmse"] for r in runs
              if r.summary.get("house_prices")]
    if closed:
        ax1.axhline(closed[0], color="k", ls="--", lw=1.2,
                    label=f"linear, closed form: ${closed[0]:,.0f}")
    for xi, m, sd in zip(x, stats["test_rmse_mean"], stats["test_rmse_sd"].fillna(0)):
        ax1.text(xi, m / 2, f"${m:,.0f}\n± {sd:,.0f}", ha="center", color="white", fontsize=10)
    ax1.set_xticks(x, [f"{n}\n({_layout(r)})" for n, r in
                       zip(names, [next(r for r in runs if r.config["model"]["name"] == n)
                                   for n in names])])
    ax1.set_xlabel("model")
    ax1.set_ylabel("test RMSE, 4,128 districts (US dollars)")
    ax1.set_title("test error (bars: mean ± sd over seeds)", fontsize=10)
    if closed:
        ax1.legend(fontsize=9, loc="lower right")
    for name, color in zip(names, ("tab:blue", "tab:orange", "tab:green")):
        members = [r for r in runs if r.config["model"]["name"] == name]
        curves = [r.metrics.query("split == 'val' and metric == 'rmse'") for r in members]
        epochs = min(len(c) for c in curves)
        values = np.array([c["value"].to_numpy()[:epochs] for c in curves])
        e = curves[0]["epoch"].to_numpy()[:epochs]
        ax2.plot(e, values.mean(axis=0), color=color, label=f"{name}, validation")
        if len(values) > 1:
            sd = values.std(axis=0, ddof=1)
            ax2.fill_between(e, values.mean(axis=0) - sd, values.mean(axis=0) + sd, color=color,
                             alpha=0.25)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation RMSE, 2,064 districts (US dollars)")
    ax2.set_title("learning curves (band: ± 1 sd over seeds)", fontsize=10)
    ax2.set_ylim(0.9 * min(stats["val_rmse_mean"]), None)
    ax2.legend(fontsize=9)
    return [save(fig, out / f"house_prices.{fmt}")]
