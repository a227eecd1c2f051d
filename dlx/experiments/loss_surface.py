"""loss_surface: the loss over two directions, as a 3-D surface and a contour map, with the
paths optimizers take across it.

Two kinds of problem (``loss_surface.problem``):

* exact two-parameter losses — ``quadratic`` (ill-conditioned, rotated), ``rosenbrock``,
  ``logreg2d`` (logistic regression with two weights and no bias on overlapping blobs): the
  surface is the loss itself; SGD, momentum and Adam start from the same point;
* ``mlp`` — the run's MLP is trained, then the loss is sliced through its weights along two
  random *filter-normalized* directions (Li et al. 2018: each unit's incoming weights in a
  direction are scaled to the norm of that unit's weights; biases get no direction). The
  training path is projected onto that plane (random directions are nearly orthogonal to it,
  so the projection is short: the picture is the surface, not the path).

Writes ``surface.csv`` (the grid), ``trajectories.csv``; summary.json gets the centre check.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np

from dlx import learner
from dlx.assemble import build_data, build_dataset, build_optimizer, rngs
from dlx.errors import UsageError
from dlx.nn import Parameter
from dlx.training import TrainResult, train

GENERIC_RUN_PLOTS = False
PROBLEMS = ("quadratic", "rosenbrock", "logreg2d", "mlp")
_ANGLE = math.radians(30)
_R = np.array([[math.cos(_ANGLE), -math.sin(_ANGLE)], [math.sin(_ANGLE), math.cos(_ANGLE)]])
_A = _R @ np.diag([1.0, 20.0]) @ _R.T  # condition number 20


def validate(cfg) -> None:
    c = cfg.get("loss_surface") or {}
    if c.get("problem") not in PROBLEMS:
        raise UsageError(f"loss_surface.problem must be one of {', '.join(PROBLEMS)}, "
                         f"got {c.get('problem')!r}")
    if not (isinstance(c.get("grid"), int) and c["grid"] >= 5):
        raise UsageError(f"loss_surface.grid must be an integer >= 5, got {c.get('grid')!r}")


def exact_problem(name: str, cfg):
    """(loss(w), grad(w), start, extent, optimizer configs, steps) of a 2-parameter problem."""
    if name == "quadratic":
        return (lambda w: 0.5 * w @ _A @ w, lambda w: _A @ w, np.array([-2.0, 1.2]),
                (-2.5, 2.5, -2.5, 2.5), {"sgd": 0.09, "momentum": 0.02, "adam": 0.1}, 150)
    if name == "rosenbrock":
        def f(w):
            return (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2

        def g(w):
            return np.array([-2 * (1 - w[0]) - 400 * w[0] * (w[1] - w[0] ** 2),
                             200 * (w[1] - w[0] ** 2)])
        return (f, g, np.array([-1.5, 2.0]), (-2.0, 2.0, -1.0, 3.0),
                {"sgd": 1e-3, "momentum": 2e-4, "adam": 0.05}, 1500)
    # logreg2d: overlapping 2-D blobs (a finite optimum), centred so that no bias is needed
    data = build_dataset({"name": "blobs", "n_samples": 400, "std": 1.5},
                         rngs(cfg["seed"])["data"], np.float64)
    X = data.X_train
    X = X - X.mean(axis=0)
    y = data.y_train.astype(np.float64)

    def f(w):
        z = X @ w
        return float(np.mean(np.logaddexp(0, z) - y * z))

    def g(w):
        z = X @ w
        return X.T @ (0.5 * (1 + np.tanh(z / 2)) - y) / len(X)
    return f, g, np.array([1.5, 2.5]), (-4.0, 2.0, -3.0, 3.0), \
        {"sgd": 1.0, "momentum": 0.1, "adam": 0.1}, 200


def run_exact(cfg, c, rec) -> tuple[list, list, dict]:
    f, g, start, extent, lrs, steps = exact_problem(c["problem"], cfg)
    steps = c.get("steps") or steps
    paths = []
    nodes = {name: {"name": name, "lr": lrs[name] * c["lr_scale"],
                    **({"momentum": 0.9} if name == "momentum" else {})}
             for name in ("sgd", "momentum", "adam")}
    mine = cfg["optimizer"]
    if learner.is_learner(mine):  # the learner's optimizer from the same start, beside dlx's
        preset = lrs.get(mine.get("reference"))  # the preset of the one it implements
        lr = preset * c["lr_scale"] if preset is not None else mine.get("lr")
        nodes[str(mine.get("name"))] = {**mine, **({"lr": lr} if lr is not None else {})}
    for name, node in nodes.items():
        p = Parameter(start.copy())
        opt = build_optimizer(node, [p])
        for t in range(steps + 1):
            value = float(f(p.data))
            paths.append((name, t, float(p.data[0]), float(p.data[1]), value))
            rec.log(t, 0, name, "loss", value)
            if t == steps or not math.isfinite(value):
                break
            p.grad[...] = g(p.data)
            opt.step()
    # the grid covers the preset window and every finite point of every path
    pts = np.array([(x, y) for _, _, x, y, v in paths if math.isfinite(v)])
    pad = 0.05 * max(extent[1] - extent[0], extent[3] - extent[2])
    x0, x1 = min(extent[0], pts[:, 0].min() - pad), max(extent[1], pts[:, 0].max() + pad)
    y0, y1 = min(extent[2], pts[:, 1].min() - pad), max(extent[3], pts[:, 1].max() + pad)
    xs = np.linspace(x0, x1, c["grid"])
    ys = np.linspace(y0, y1, c["grid"])
    grid = [(float(x), float(y), float(f(np.array([x, y])))) for y in ys for x in xs]
    return grid, paths, {"start": start.tolist(), "steps": steps}


def filter_normalized(params, rng) -> list[np.ndarray]:
    """A random direction per parameter; a weight's per-unit columns scaled to its norms."""
    out = []
    for p in params:
        if not p.decay:
            out.append(np.zeros_like(p.data, dtype=np.float64))
            continue
        d = rng.standard_normal(p.data.shape)
        w = p.data.astype(np.float64)
        d *= np.linalg.norm(w, axis=0, keepdims=True) / np.maximum(
            np.linalg.norm(d, axis=0, keepdims=True), 1e-12)
        out.append(d)
    return out


def run_mlp(cfg, c, rec, run_dir: Path):
    from dlx.training import NumpyBackend

    result = train(cfg, rec, cfg["progress"], run_dir)
    data = build_data(cfg)
    backend = NumpyBackend(cfg, data)
    backend.load_state_dict(result.weights)
    params = backend.params
    centre = [p.data.astype(np.float64).copy() for p in params]
    trained = backend.evaluate(data.X_train, data.y_train)[0]
    rng = np.random.default_rng(rngs(cfg["seed"])["init"].integers(2**32))
    d1, d2 = filter_normalized(params, rng), filter_normalized(params, rng)
    alphas = np.linspace(-c["span"], c["span"], c["grid"])

    def loss_at(a: float, b: float) -> float:
        for p, w, u, v in zip(params, centre, d1, d2):
            p.data[...] = w + a * u + b * v
        return backend.evaluate(data.X_train, data.y_train)[0]

    grid = [(float(a), float(b), loss_at(a, b)) for b in alphas for a in alphas]
    return grid, [], {"centre_loss": loss_at(0.0, 0.0), "trained_loss": trained,
                      "directions": "random, filter-normalized (Li et al. 2018)",
                      "span": c["span"], "weights": result.weights}


def run(cfg, rec, run_dir: Path) -> TrainResult:
    c = cfg["loss_surface"]
    start = time.perf_counter()
    if c["problem"] == "mlp":
        grid, paths, info = run_mlp(cfg, c, rec, run_dir)
        weights = info.pop("weights")
    else:
        grid, paths, info = run_exact(cfg, c, rec)
        weights = {}
    values = np.array([v for _, _, v in grid])
    i_min = int(np.nanargmin(values))
    n = c["grid"]
    row, col = divmod(i_min, n)
    info.update(problem=c["problem"], grid_min=grid[i_min][2],
                grid_argmin=[grid[i_min][0], grid[i_min][1]],
                argmin_cells_from_centre=max(abs(row - n // 2), abs(col - n // 2)))
    with open(run_dir / "surface.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["x", "y", "loss"])
        w.writerows(grid)
    with open(run_dir / "trajectories.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["optimizer", "step", "x", "y", "loss"])
        w.writerows(paths)
    return TrainResult(len(paths), time.perf_counter() - start, None, None, 0, 0, weights,
                       extra={"loss_surface": info})


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    import pandas as pd
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    from dlx.plots.style import save

    grid = pd.read_csv(run.path / "surface.csv")
    paths = pd.read_csv(run.path / "trajectories.csv")
    info = run.summary.get("loss_surface", {})
    problem = info.get("problem", "?")
    xs, ys = np.sort(grid["x"].unique()), np.sort(grid["y"].unique())
    Z = grid.pivot(index="y", columns="x", values="loss").loc[ys, xs].to_numpy()
    X, Y = np.meshgrid(xs, ys)
    mlp = problem == "mlp"
    xlabel, ylabel = ("α (direction 1)", "β (direction 2)") if mlp else ("w₁", "w₂")
    # losses spanning decades (Rosenbrock) get log colours; a floor keeps log(0) away
    floor = max(float(np.nanmin(Z)), 1e-4 * float(np.nanmax(Z)))
    norm = LogNorm(vmin=floor, vmax=np.nanmax(Z)) if np.nanmax(Z) / floor > 100 else None
    if norm is not None:
        Z = np.maximum(Z, floor)
    title = {"quadratic": "ill-conditioned quadratic (κ = 20, rotated)",
             "rosenbrock": "Rosenbrock function", "logreg2d": "logistic regression, 2 weights",
             "mlp": "MLP loss along two random filter-normalized directions"}[problem]
    colors = {"sgd": "tab:red", "momentum": "tab:orange", "adam": "tab:green"}  # yours: blue, dashed

    fig = Figure(figsize=(8.5, 6.5), dpi=110, layout="constrained")
    ax = fig.add_subplot(projection="3d")
    Zplot = np.log10(Z) if norm is not None else Z
    ax.plot_surface(X, Y, Zplot, cmap="viridis", alpha=0.75, linewidth=0, antialiased=True)
    widths = {"sgd": 3.5, "momentum": 2.5, "adam": 1.5}  # overlapping paths stay visible
    for name, p in paths.groupby("optimizer", sort=False):
        z = np.log10(np.maximum(p["loss"], floor)) if norm is not None else p["loss"]
        ax.plot(p["x"], p["y"], z, color=colors.get(name, "tab:blue"), lw=widths.get(name, 2),
                ls="-" if name in colors else "--", label=name, zorder=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_zlabel("log₁₀ loss" if norm is not None else "loss (nats)" if problem != "quadratic"
                  and problem != "rosenbrock" else "loss")
    ax.set_title(f"{title}: loss surface", fontsize=11)
    if len(paths):
        ax.legend(fontsize=9)
    written = [save(fig, out / f"surface_3d.{fmt}")]

    fig = Figure(figsize=(7.5, 6.2), dpi=110, layout="constrained")
    ax = fig.subplots()
    levels = np.geomspace(np.nanmin(Z), np.nanmax(Z), 30) if norm is not None else 30
    cs = ax.contourf(X, Y, Z, levels=levels, cmap="viridis", norm=norm)
    ax.contour(X, Y, Z, levels=levels, colors="k", linewidths=0.3, alpha=0.4, norm=norm)
    bar = fig.colorbar(cs, ax=ax, label="loss" + (" (log colour scale)" if norm is not None
                                                  else ""))
    bar.set_ticks(_round_ticks(float(np.nanmin(Z)), float(np.nanmax(Z)), norm is not None))
    for name, p in paths.groupby("optimizer", sort=False):
        ax.plot(p["x"], p["y"], "-" if name in colors else "--", color=colors.get(name, "tab:blue"),
                lw=widths.get(name, 2),
                label=f"{name} ({len(p) - 1} steps, final loss {p['loss'].iloc[-1]:.3g})")
        ax.plot(p["x"].iloc[0], p["y"].iloc[0], "o", color="white", mec="k")
    if mlp:
        ax.plot(0, 0, "*", color="white", mec="k", ms=15, label="trained weights (centre)")
    else:
        ax.plot(*info.get("grid_argmin", [np.nan, np.nan]), "*", color="white", mec="k", ms=15,
                label="grid minimum")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    # the MLP slice is centred on the trained weights: its training path (in a space of
    # thousands of dimensions) is not in the plane of two random directions, so none is drawn
    ax.set_title(f"{title}: contours" + (" around the trained weights" if mlp else
                                         " and optimizer paths"), fontsize=11)
    ax.legend(fontsize=8, loc="upper right")
    written.append(save(fig, out / f"contour.{fmt}"))
    return written


def _round_ticks(low: float, high: float, log: bool) -> list[float]:
    """Colour-bar ticks at round values (decades on a log scale) instead of the contour levels,
    which are arbitrary numbers such as 1.32935e3."""
    from matplotlib.ticker import MaxNLocator

    if log:
        return [10.0 ** k for k in range(math.ceil(math.log10(low)), math.floor(math.log10(high)) + 1)]
    return [t for t in MaxNLocator(8).tick_values(low, high) if low <= t <= high]
