"""function_approx: MLPs of growing width and depth fitted to 1-D functions (series topic 2) —
sin, a cubic, |x| and a step on [-π, π] (``dataset=function``, ``dataset.target``).

Each member (one target, one seed) trains, besides its own model (the configured MLP, whose
curves are the run's metrics.csv), many small nets, each a full training by dlx's loop,
optimizer and MLP (:func:`fit`), on the same samples:

* the capacity series (``capacity.csv``): one hidden layer of each width in
  ``function_approx.widths``, and ``depths`` hidden layers of ``depth_width`` units, for each
  activation in ``activations`` (ReLU, tanh), and the linear model (``linreg``) as capacity 0;
  per fit, the parameter count, train/validation RMSE and the test RMSE and R^2 on the
  noise-free test grid of the interval (the approximation error), and how it extrapolates:
  the share of the grid outside the interval where the second difference of the fitted
  function is zero (a ReLU net is piecewise linear: zero except on cells holding a kink) and
  the slope at the ends of the wider range against the slope at the interval's edges (tanh
  saturates: the ratio falls to ~0; ReLU continues linearly);
* the predictions of every fit on ``extrapolate`` × the interval (``predictions.csv``);
* the bias-variance series (``bias_variance.csv``): few noisy samples (``noisy``), one hidden
  ReLU layer of growing width trained towards interpolation (:func:`fit_to_tolerance`:
  full-batch Adam at a constant lr until the training RMSE is below ``noisy.tol`` or
  ``noisy.steps`` are spent: a cosine schedule's shrinking steps stop short of fitting the
  noise and hid the variance side), and as the textbook reference least squares on Legendre
  polynomials of growing degree (min-norm beyond n - 1 parameters: :func:`poly_fit`);
  training against validation RMSE (and the noise-free test RMSE) as capacity grows.

The sweep (targets × seeds) draws error against parameters per target (mean ± sd over seeds),
the fitted functions over the data, extrapolation, and the bias-variance curves.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np

from dlx.errors import UsageError

CAPACITY, PREDICTIONS, BIAS_VARIANCE = "capacity.csv", "predictions.csv", "bias_variance.csv"
CAP_COLUMNS = ("fit", "series", "activation", "width", "depth", "params", "train_rmse",
               "val_rmse", "test_rmse", "test_r2", "linear_outside", "slope_ratio")
BV_COLUMNS = ("model", "capacity", "params", "steps", "train_rmse", "val_rmse", "test_rmse")
ACTIVATIONS = ("relu", "tanh", "leaky_relu", "gelu", "elu", "silu", "softplus", "sigmoid")


def _ints(value, name: str, low: int = 1) -> list[int]:
    if not (isinstance(value, list) and value and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= low for v in value)):
        raise UsageError(f"function_approx.{name} must be a non-empty list of integers >= {low}, "
                         f"got {value!r}")
    return value


def validate(cfg) -> None:
    s = cfg.get("function_approx")
    if not isinstance(s, dict):
        raise UsageError("function_approx: missing the `function_approx` settings")
    if cfg["dataset"].get("name") != "function":
        raise UsageError("experiment=function_approx needs dataset=function (a 1-D function)")
    _ints(s.get("widths"), "widths")
    _ints(s.get("depths"), "depths")
    w = s.get("depth_width")
    if isinstance(w, bool) or not isinstance(w, int) or w < 1:
        raise UsageError(f"function_approx.depth_width must be an integer >= 1, got {w!r}")
    acts = s.get("activations")
    if not (isinstance(acts, list) and acts and all(a in ACTIVATIONS for a in acts)):
        raise UsageError(f"function_approx.activations must be a list of {', '.join(ACTIVATIONS)}"
                         f", got {acts!r}")
    init = s.get("init_for") or {}
    if any(a not in init for a in acts):
        raise UsageError(f"function_approx.init_for must name an init for each activation "
                         f"({', '.join(acts)}), got {init!r}")
    e = s.get("extrapolate")
    if isinstance(e, bool) or not isinstance(e, (int, float)) or e <= 1:
        raise UsageError(f"function_approx.extrapolate must be a number > 1, got {e!r}")
    n = s.get("noisy")
    if not isinstance(n, dict):
        raise UsageError("function_approx.noisy: missing the bias-variance settings")
    for key in ("n_train", "n_val", "steps"):
        v = n.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UsageError(f"function_approx.noisy.{key} must be an integer >= 1, got {v!r}")
    if not (isinstance(n.get("noise"), (int, float)) and n["noise"] > 0):
        raise UsageError(f"function_approx.noisy.noise must be > 0, got {n.get('noise')!r}")
    _ints(n.get("widths"), "noisy.widths")
    _ints(n.get("degrees"), "noisy.degrees", low=0)
    for key in ("lr", "tol"):
        v = n.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise UsageError(f"function_approx.noisy.{key} must be a number > 0, got {v!r}")


# --- one fit ----------------------------------------------------------------------------------

def model_node(activation: str | None, hidden: list[int]) -> dict:
    """An MLP node (or linreg for no hidden layer) as conf/model/*.yaml would give it."""
    if not hidden:
        return {"name": "linreg"}
    return {"name": "mlp", "hidden": list(hidden), "activation": activation, "keep_prob": 1.0,
            "dropconnect": False, "norm": "none", "residual": False}


def fit(cfg, data, model: dict, init: dict | None = None, **overrides):
    """Train ``model`` on ``data`` as ``cfg`` says (its optimizer, schedule, seed, steps; with
    ``overrides`` of top-level keys) by dlx's own loop, recording nothing but the final values.

    Returns (backend, final): the trained NumPy backend (its ``model``) and the last value of
    each ``split/metric`` (``test/rmse``: the noise-free grid)."""
    from dlx.records.metrics import MetricsWriter
    from dlx.training import NumpyBackend, train

    sub = copy.deepcopy(dict(cfg))
    sub.update(model=model, init=init or sub["init"], probe_every=None, checkpoint=False,
               early_stopping={**sub["early_stopping"], "patience": None}, **overrides)
    backend = NumpyBackend(sub, data)
    rec = MetricsWriter(os.devnull)
    try:
        train(sub, rec, "none", None, backend=backend)
    finally:
        rec.close()
    backend.model.eval()
    return backend, dict(rec.final)


def fit_to_tolerance(cfg, data, model: dict, init: dict, lr: float, steps: int, tol: float,
                     check_every: int = 100):
    """Full-batch training of ``model`` with cfg's optimizer (dlx's MLP, backward and update)
    at a constant ``lr`` until the training RMSE (f's units) is below ``tol``, checked every
    ``check_every`` steps, or ``steps`` updates are made. The loop is bare — no per-step
    records or per-epoch evaluation, which cost 4x the update on 20 samples — so that the
    bias-variance nets can be trained to (near) interpolation in the CPU budget.

    Returns (backend, final, steps made): ``final`` holds ``{train,val,test}/rmse``."""
    from dlx.training import NumpyBackend

    sub = copy.deepcopy(dict(cfg))
    sub.update(model=model, init=init, batch_size=None, max_steps=None, probe_every=None)
    backend = NumpyBackend(sub, data)
    done = 0
    with np.errstate(all="ignore"):
        while done < steps:
            if done % check_every == 0 and backend.evaluate(data.X_train, data.y_train)[1] < tol:
                break
            backend.model.train()  # evaluate() left it in eval mode
            loss, _ = backend.forward(data.X_train, data.y_train)
            if not np.isfinite(loss):
                break
            backend.update(lr)
            done += 1
        final = {f"{split}/rmse": float(backend.evaluate(X, y)[1]) for split, X, y in (
            ("train", data.X_train, data.y_train), ("val", data.X_val, data.y_val),
            ("test", data.X_test, data.y_test))}
    backend.model.eval()
    return backend, final, done


def poly_fit(data, degree: int, interval) -> dict:
    """Least squares on the Legendre polynomials P_0..P_degree of x mapped to [-1, 1] (well
    conditioned where monomials are not); beyond n - 1 degrees the system is underdetermined
    and lstsq gives the minimum-norm interpolant (the second descent of Belkin et al. 2019).
    Returns ``{train,val,test}/rmse`` in f's units."""
    low, high = interval

    def features(X):  # (N, 1) -> (N, degree + 1)
        return np.polynomial.legendre.legvander((2 * X[:, 0] - low - high) / (high - low), degree)

    def target(y):
        return data.in_units(y)[:, 0]

    coef = np.linalg.lstsq(features(data.X_train), target(data.y_train), rcond=None)[0]
    return {f"{split}/rmse": float(np.sqrt(np.mean((features(X) @ coef - target(y)) ** 2)))
            for split, X, y in (("train", data.X_train, data.y_train),
                                ("val", data.X_val, data.y_val), ("test", data.X_test, data.y_test))}


def predict(model, data, x: np.ndarray) -> np.ndarray:
    """f-hat(x) in f's units: (N,) inputs -> (N,) predictions."""
    with np.errstate(all="ignore"):
        out = model.forward(x[:, None].astype(data.X_train.dtype)).astype(np.float64)
    return data.in_units(out)[:, 0]


def extrapolation_grid(interval, factor: float, points: int = 801) -> np.ndarray:
    low, high = interval
    mid, half = (low + high) / 2, (high - low) / 2
    return np.linspace(mid - factor * half, mid + factor * half, points)


def extrapolation(x: np.ndarray, y: np.ndarray, interval) -> tuple[float, float]:
    """How a fitted function continues outside [low, high], from its values y on an even grid x:

    * the share of grid points outside the interval where the second difference
      y[i-1] - 2 y[i] + y[i+1] is zero (to round-off, 1e-9 of y's range): 1 for a function
      linear there; a ReLU net is piecewise linear, so only cells holding a kink count against;
    * the mean |slope| over the outer 5% of the grid on both sides, over the mean |slope| at
      the interval's edges: ~1 when the function goes on linearly, ~0 when it saturates (nan
      when it is flat at the edges, e.g. a single dead ReLU unit).
    """
    low, high = interval
    d2 = np.abs(y[:-2] - 2 * y[1:-1] + y[2:])
    xi = x[1:-1]
    outside = (xi < low) | (xi > high)
    tol = 1e-9 * max(float(np.ptp(y)), 1e-12)
    linear = float(np.mean(d2[outside] <= tol))
    slope = np.abs(np.gradient(y, x))
    k = max(2, len(x) // 20)
    far = np.concatenate([slope[:k], slope[-k:]]).mean()
    edges = [np.argmin(np.abs(x - low)), np.argmin(np.abs(x - high))]
    near = np.mean([slope[i - 2:i + 3].mean() for i in edges])
    if near <= 1e-6 * max(float(np.ptp(y)), 1e-12) / (high - low):  # flat at the edges: no ratio
        return linear, float("nan")
    return linear, float(far / near)


def capacity_fits(s: dict) -> list[tuple[str, str | None, list[int]]]:
    """(series, activation, hidden) of every fit, linreg first; a net in both series (one
    hidden layer of depth_width) is trained once, listed under ``width``."""
    fits, seen = [("linear", None, [])], set()
    for act in s["activations"]:
        for series, hidden in ([("width", [w]) for w in s["widths"]]
                               + [("depth", [s["depth_width"]] * d) for d in s["depths"]]):
            key = (act, tuple(hidden))
            if key not in seen:
                seen.add(key)
                fits.append((series, act, hidden))
    return fits


# --- the run ----------------------------------------------------------------------------------

def run(cfg, rec, run_dir: Path):
    from dlx.assemble import build_data, build_dataset, rngs
    from dlx.training import train
    from dlx.training.backend import make_backend

    s = cfg["function_approx"]
    data = build_data(cfg)
    result = train(cfg, rec, cfg["progress"], run_dir, backend=make_backend(cfg, data))
    interval = data.description["interval"]
    grid = extrapolation_grid(interval, s["extrapolate"])
    rows, curves = [], []
    for i, (series, act, hidden) in enumerate(capacity_fits(s)):
        init = {"name": s["init_for"][act]} if act else None
        backend, final = fit(cfg, data, model_node(act, hidden), init)
        y = predict(backend.model, data, grid)
        linear, ratio = extrapolation(grid, y, interval)
        rows.append((i, series, act or "none", hidden[0] if hidden else 0, len(hidden),
                     backend.sizes()["params"], final["train/rmse"],
                     final["val/rmse"], final["test/rmse"], final["test/r2"], linear, ratio))
        curves.append(y)
    _write(run_dir / CAPACITY, CAP_COLUMNS, rows)
    with open(run_dir / PREDICTIONS, "w", encoding="utf-8", newline="\n") as f:
        f.write("x," + ",".join(f"fit{i}" for i in range(len(curves))) + "\n")
        for j, x in enumerate(grid):
            f.write(f"{float(x)!r}," + ",".join(repr(float(c[j])) for c in curves) + "\n")

    n = s["noisy"]
    node = {**cfg["dataset"], "n_samples": n["n_train"] + n["n_val"], "noise": n["noise"],
            "val_fraction": n["n_val"] / (n["n_train"] + n["n_val"])}
    noisy = build_dataset(node, rngs(cfg["seed"])["data"], np.dtype(cfg["dtype"]))
    bv = []
    for w in n["widths"]:
        backend, final, steps = fit_to_tolerance(
            cfg, noisy, model_node("relu", [w]), {"name": s["init_for"]["relu"]},
            n["lr"], n["steps"], n["tol"])
        bv.append(("mlp", w, backend.sizes()["params"], steps, final["train/rmse"],
                   final["val/rmse"], final["test/rmse"]))
    for d in n["degrees"]:
        final = poly_fit(noisy, d, interval)
        bv.append(("poly", d, d + 1, 0, final["train/rmse"], final["val/rmse"],
                   final["test/rmse"]))
    _write(run_dir / BIAS_VARIANCE, BV_COLUMNS, bv)
    result.extra["function_approx"] = {"fits": len(rows), "noisy_fits": len(bv),
                                       "noisy_train": len(noisy.X_train),
                                       "noisy_val": len(noisy.X_val)}
    return result


def _write(path: Path, columns, rows) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(",".join(columns) + "\n")
        for row in rows:
            f.write(",".join(v if isinstance(v, str) else repr(v) for v in row) + "\n")


# --- reading runs back ------------------------------------------------------------------------

NAMES = {"sin": "sin x", "poly": "0.2x³ − x", "abs": "|x|", "step": "step 1[x > 0]"}
ORDER = tuple(NAMES)
SERIES_STYLE = {("width", "relu"): dict(color="tab:blue", marker="o",
                                        label="ReLU, 1 hidden layer, width {w}"),
                ("width", "tanh"): dict(color="tab:orange", marker="s",
                                        label="tanh, 1 hidden layer, width {w}"),
                ("depth", "relu"): dict(color="tab:green", marker="^", ls="--",
                                        label="ReLU, depth {d} × {dw} units"),
                ("depth", "tanh"): dict(color="tab:red", marker="v", ls="--",
                                        label="tanh, depth {d} × {dw} units")}


def target_of(run) -> str:
    return run.config["dataset"]["target"]


def read(run, name: str):
    import pandas as pd

    path = run.path / name
    return pd.read_csv(path) if path.is_file() else None


def capacity_table(runs):
    """Every fit of every run: capacity.csv's rows with the run's target and seed."""
    import pandas as pd

    parts = []
    for r in runs:
        t = read(r, CAPACITY)
        if t is not None:
            parts.append(t.assign(target=target_of(r), seed=r.config["seed"]))
    return pd.concat(parts, ignore_index=True)


def series_rows(table, series: str, activation: str, depth_width: int):
    """The rows of one series: the width series (depth 1), or the depth series at depth_width
    (its depth-1 net is the width series' one of that width)."""
    t = table[table["activation"] == activation]
    if series == "width":
        return t[t["depth"] == 1]
    return t[(t["width"] == depth_width)]


def stats(table, by: list[str], columns=("test_rmse",)):
    """Mean, sd (n - 1) and n over seeds of ``columns`` per ``by``."""
    agg = table.groupby(by)[list(columns)].agg(["mean", "std", "count"])
    agg.columns = [f"{c}_{s.replace('std', 'sd').replace('count', 'n')}" for c, s in agg.columns]
    return agg.reset_index()


def summary_table(runs):
    """Per target, series, activation and net: mean, sd, n over seeds of the test RMSE and R^2
    and the two extrapolation measures (the sweep's function_approx.csv)."""
    t = capacity_table(runs)
    return stats(t, ["target", "series", "activation", "width", "depth", "params"],
                 ("test_rmse", "test_r2", "train_rmse", "linear_outside", "slope_ratio"))


# --- figures ----------------------------------------------------------------------------------

def _capacity_panel(ax, table, target: str, s: dict) -> None:
    from dlx.plots.sweep import draw_band

    depth_width = s["depth_width"]
    spans = {"w": f"{min(s['widths'])}–{max(s['widths'])}",
             "d": f"{min(s['depths'])}–{max(s['depths'])}", "dw": depth_width}
    t = table[table["target"] == target]
    lin = t[t["series"] == "linear"]["test_rmse"]
    for (series, act), style in SERIES_STYLE.items():
        rows = series_rows(t, series, act, depth_width)
        if rows.empty:
            continue
        s = stats(rows, ["params"]).rename(columns={"test_rmse_mean": "mean", "test_rmse_sd": "sd",
                                                    "test_rmse_n": "n"})
        style = dict(style, label=style["label"].format(**spans))
        color = style.pop("color")
        draw_band(ax, s, x="params", color=color, log=True, ms=4, **style)
    if len(lin):
        ax.axhline(lin.mean(), color="k", ls=":", lw=1.2,
                   label=f"linear model (linreg), {lin.mean():.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(f"f(x) = {NAMES.get(target, target)}", fontsize=10)
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("test RMSE on the interval (f's units, log)")


def _truth(run, x):
    from dlx.data.synthetic import TARGETS

    return TARGETS[target_of(run)](x)


def _curves(run):
    """(x grid, {fit: prediction}) from predictions.csv, and capacity.csv."""
    p, c = read(run, PREDICTIONS), read(run, CAPACITY)
    return p["x"].to_numpy(), p, c


def _fit_column(cap, series, act, width, depth):
    hit = cap[(cap["activation"] == act) & (cap["width"] == width) & (cap["depth"] == depth)]
    return None if hit.empty else f"fit{int(hit['fit'].iloc[0])}"


def _fits_panel(ax, run, widths=(2, 4, 8, 32)) -> None:
    from dlx.assemble import build_data

    x, p, cap = _curves(run)
    low, high = run.summary["data"]["interval"]
    inside = (x >= low) & (x <= high)
    data = build_data(run.config)
    ax.scatter(data.X_train[:, 0], data.in_units(data.y_train)[:, 0], s=6, color="0.6",
               label=f"{len(data.X_train)} training samples", zorder=1)
    ax.plot(x[inside], _truth(run, x[inside]), color="k", lw=1.2, label="f(x)")
    for i, w in enumerate(widths):
        col = _fit_column(cap, "width", "relu", w, 1)
        if col is not None:
            ax.plot(x[inside], p[col][inside], color=f"C{i}", lw=1.4,
                    label=f"ReLU, width {w}")
    ax.set_title(f"f(x) = {NAMES.get(target_of(run), target_of(run))}, seed "
                 f"{run.config['seed']}", fontsize=10)
    ax.set_xlabel("x (training interval)")
    ax.set_ylabel("f(x), fitted f̂(x)")


def _extrapolation_panel(ax, run, depth_width: int) -> None:
    x, p, cap = _curves(run)
    low, high = run.summary["data"]["interval"]
    ax.axvspan(low, high, color="0.92", zorder=0, label="training interval")
    ax.plot(x, _truth(run, x), color="k", lw=1.2, label="f(x)")
    # per activation, the widest one-layer net and the deepest net of depth_width that were
    # trained (function_approx.widths / depths may be overridden: draw what exists)
    nets = []
    for act, (wide, deep) in (("relu", ("tab:blue", "tab:green")),
                              ("tanh", ("tab:orange", "tab:red"))):
        mine = cap[cap["activation"] == act]
        one = mine[mine["depth"] == 1]
        if len(one):
            nets.append((act, int(one["width"].max()), 1, wide, "-"))
        stacked = mine[(mine["depth"] > 1) & (mine["width"] == depth_width)]
        if len(stacked):
            nets.append((act, depth_width, int(stacked["depth"].max()), deep, "--"))
    for act, w, d, color, ls in nets:
        col = _fit_column(cap, None, act, w, d)
        if col is not None:
            ax.plot(x, p[col], color=color, ls=ls, lw=1.4,
                    label=f"{'ReLU' if act == 'relu' else act}, {d} × {w}")
    truth = _truth(run, x)
    span = float(np.ptp(truth[(x >= low) & (x <= high)])) or 1.0
    mid = float(np.mean(truth[(x >= low) & (x <= high)]))
    ax.set_ylim(mid - 1.6 * span, mid + 1.6 * span)
    ax.set_title(f"f(x) = {NAMES.get(target_of(run), target_of(run))}, seed "
                 f"{run.config['seed']}", fontsize=10)
    ax.set_xlabel("x (shaded: the training interval)")
    ax.set_ylabel("f(x), fitted f̂(x)")


def bias_variance_table(runs, target: str):
    """The bias-variance rows of ``target``'s runs (seed added); None if none has them."""
    import pandas as pd

    tables = [(r, read(r, BIAS_VARIANCE)) for r in runs if target_of(r) == target]
    parts = [t.assign(seed=r.config["seed"]) for r, t in tables
             if t is not None and "model" in t]  # runs before the degree axis: no panel
    return pd.concat(parts, ignore_index=True) if parts else None


BV_LINES = (("train_rmse", "tab:blue", "o", "training ({n} noisy samples)"),
            ("val_rmse", "tab:orange", "s", "validation (200 noisy, held out)"),
            ("test_rmse", "tab:green", "^", "test: f, noise-free"))


def _bias_variance_panel(ax, runs, target: str, model: str = "mlp") -> None:
    """Training, validation and test RMSE (mean ± sd over seeds) against capacity: the MLP's
    parameters (``mlp``), or the polynomial's degree (``poly``, log RMSE: it spans decades)."""
    from dlx.plots.sweep import draw_band

    t = bias_variance_table(runs, target)
    if t is None:
        return
    t = t[t["model"] == model]
    n = runs[0].config["function_approx"]["noisy"]
    x = "params" if model == "mlp" else "capacity"
    for col, color, marker, label in BV_LINES:
        label = label.format(n=n["n_train"])
        if model == "poly":  # spans 1e-15..1e6: geometric mean, band ±1 sd of log10 RMSE
            g = t.assign(lg=np.log10(t[col].clip(lower=1e-16))).groupby(x)["lg"]
            m, sd = g.mean(), g.std().fillna(0)
            ax.plot(m.index, 10 ** m, color=color, marker=marker, ms=3, label=label)
            ax.fill_between(m.index, 10 ** (m - sd), 10 ** (m + sd), color=color, alpha=0.2, lw=0)
            continue
        s = stats(t, [x], (col,)).rename(columns={f"{col}_mean": "mean", f"{col}_sd": "sd",
                                                  f"{col}_n": "n"})
        draw_band(ax, s, x=x, color=color, marker=marker, ms=3, label=label)
    ax.axhline(n["noise"], color="k", ls=":", lw=1.2, label=f"noise sd {n['noise']:g}")
    ax.set_title(f"f(x) = {NAMES.get(target, target)}", fontsize=10)
    if model == "mlp":
        ax.set_xscale("log")
        ax.set_ylim(0, None)
        ax.set_xlabel("parameters, 1 hidden ReLU layer of width 1–"
                      f"{max(n['widths'])} (log scale)")
        ax.set_ylabel("RMSE (f's units)")
    else:
        ax.axvline(n["n_train"] - 1, color="0.4", ls="--", lw=1,
                   label=f"degree {n['n_train'] - 1}: as many coefficients as samples")
        ax.set_yscale("log")
        ax.set_ylim(1e-2, None)  # training RMSE drops to round-off (1e-10..1e-15) from 19 on
        ax.set_xlabel("polynomial degree (least squares; min-norm beyond "
                      f"{n['n_train'] - 1})")
        ax.set_ylabel("RMSE (f's units, log; geometric mean over seeds;\n"
                      "training falls off the axis to round-off at degree 19)")


def _grid(title: str, n: int, rows: int = 1):
    """A titled row (or ``rows`` rows: a (rows, n) array) of ``n`` panels (plots.style.panels
    needs two or more)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6 * n + 0.8, 4.6 * rows + 0.2), dpi=110, layout="tight")
    axes = fig.subplots(rows, n, squeeze=False)
    fig.suptitle(title, fontsize=11)
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
    return fig, (axes[0] if rows == 1 else axes)


def figures(runs, out: Path, fmt: str, suffix: str = "") -> list[Path]:
    """The experiment's four figures for ``runs`` (one or several targets; seeds pooled)."""
    from dlx.plots.style import save
    from dlx.plots.sweep import seeds_note

    s = runs[0].config["function_approx"]
    targets = [t for t in ORDER if any(target_of(r) == t for r in runs)]
    table = capacity_table(runs)
    counts = [sum(target_of(r) == t for r in runs) for t in targets]
    note = seeds_note(counts)
    c = runs[0].config
    trained = (f"Adam lr {c['optimizer']['lr']:g}, {c['schedule']['name']} schedule, "
               f"{c['epochs']} epochs of batch {c['batch_size']}")
    written = []
    fig, axes = _grid(f"test error against parameters ({trained}; {note})", len(targets))
    for ax, t in zip(axes, targets):
        _capacity_panel(ax, table, t, s)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))  # off the data
    written.append(save(fig, out / f"error_vs_params{suffix}.{fmt}"))

    first = {t: min((r for r in runs if target_of(r) == t), key=lambda r: r.config["seed"])
             for t in targets}
    fig, axes = _grid("fitted functions over the training data: one hidden ReLU layer of "
                      "growing width", len(targets))
    for ax, t in zip(axes, targets):
        _fits_panel(ax, first[t])
    axes[0].legend(fontsize=7)
    written.append(save(fig, out / f"fits{suffix}.{fmt}"))

    lo, hi = first[targets[0]].summary["data"]["interval"]
    fig, axes = _grid(f"extrapolation: trained on [{lo:.3g}, {hi:.3g}], drawn on "
                      f"{s['extrapolate']:g}× the interval (ReLU continues linearly, tanh "
                      f"saturates)", len(targets))
    for ax, t in zip(axes, targets):
        _extrapolation_panel(ax, first[t], s["depth_width"])
    axes[0].legend(fontsize=7)
    written.append(save(fig, out / f"extrapolation{suffix}.{fmt}"))

    n = s["noisy"]
    fig, axes = _grid(f"bias-variance on {n['n_train']} noisy samples (sd {n['noise']:g}): top, "
                      f"one hidden ReLU layer, full-batch Adam lr {n['lr']:g} until training "
                      f"RMSE < {n['tol']:g} or {n['steps']:,} steps; bottom, least squares on "
                      f"Legendre polynomials; {note}", len(targets), rows=2)
    for ax, bottom, t in zip(axes[0], axes[1], targets):
        _bias_variance_panel(ax, runs, t, "mlp")
        _bias_variance_panel(bottom, runs, t, "poly")
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7, loc="upper right")
    written.append(save(fig, out / f"bias_variance{suffix}.{fmt}"))
    return written


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    """One member's four panels: error against parameters, the fits, extrapolation, and the
    bias-variance curves (the sweep draws each across the targets, seeds pooled)."""
    from dlx.plots.style import save

    if read(run, CAPACITY) is None:
        return []
    s, t = run.config["function_approx"], target_of(run)
    fig, axes = _grid(f"function approximation of {NAMES.get(t, t)}, seed {run.config['seed']}: "
                      f"test error against parameters, fitted functions, extrapolation, and "
                      f"bias-variance on {s['noisy']['n_train']} noisy samples (MLP width, "
                      f"polynomial degree)", 5)
    _capacity_panel(axes[0], capacity_table([run]), t, s)
    _fits_panel(axes[1], run)
    _extrapolation_panel(axes[2], run, s["depth_width"])
    _bias_variance_panel(axes[3], [run], t, "mlp")
    _bias_variance_panel(axes[4], [run], t, "poly")
    for ax in axes:
        ax.legend(fontsize=7)
    return [save(fig, out / f"function_approx.{fmt}")]


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    runs = [r for r in runs if read(r, CAPACITY) is not None]
    if not runs:
        return []
    out.mkdir(parents=True, exist_ok=True)
    table = summary_table(runs)
    table.to_csv(out / "function_approx.csv", index=False)
    return [*figures(runs, out, fmt), out / "function_approx.csv"]


def report_numbers(run) -> dict:
    cap = read(run, CAPACITY)
    if cap is None:
        return {}
    lin = cap[cap["series"] == "linear"].iloc[0]
    relu = cap[(cap["activation"] == "relu") & (cap["depth"] == 1)].sort_values("width")
    best = relu.iloc[relu["test_rmse"].argmin()]
    return {"target": target_of(run), "linear model: test R²": lin["test_r2"],
            "best 1-layer ReLU: width": int(best["width"]),
            "best 1-layer ReLU: test RMSE": best["test_rmse"],
            "best 1-layer ReLU: test R²": best["test_r2"]}
