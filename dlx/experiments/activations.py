"""activations: each activation and its derivative, and the same deep MLP trained with each
(its usual initialization), over seeds — how many units saturate (sigmoid, tanh) or die (the
ReLU family), how the gradient reaches the first layer, and the final validation accuracy.

Recorded per layer every ``activations.every`` steps on a fixed probe batch (activations.csv):

* ``saturated``: the fraction of (example, unit) activations in the flat tails, |tanh| > 0.97
  (where tanh' < 0.06) or sigmoid < 0.03 or > 0.97 (sigmoid' < 0.03); NaN for activations
  without two flat tails;
* ``dead``: the fraction of units whose pre-activation z is <= 0 on every probe example — for a
  ReLU a unit that passes no gradient for any of them (a dead ReLU);
* ``act_mean``, ``act_std``: of the layer's activations (SELU's self-normalization keeps them
  near 0 and 1 through depth, Klambauer et al. 2017).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlx.errors import UsageError
from dlx.experiments.layers import at_step
from dlx.experiments.layers import read as read_layer_stats
from dlx.plots.style import STEP_LABEL, panels, save
from dlx.plots.sweep import curve_stats, draw_band, seeds_note, setting_stats

TABLE = "activations.csv"
COLUMNS = ("step", "layer", "saturated", "dead", "act_mean", "act_std")
ORDER = ("sigmoid", "tanh", "relu", "elu", "selu", "silu", "softplus")


def validate(cfg) -> None:
    c = cfg.get("activations") or {}
    for key in ("every", "probe_size"):
        v = c.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UsageError(f"activations.{key} must be an integer >= 1, got {v!r}")
    if cfg["model"]["name"] != "mlp" or not isinstance(cfg["model"]["activation"], str):
        raise UsageError("experiment=activations needs model=mlp with one model.activation")


def saturated_fraction(name: str, y: np.ndarray) -> float:
    """Fraction of activations in a flat tail (NaN for activations without two)."""
    if name == "tanh":
        return float(np.mean(np.abs(y) > 0.97))
    if name == "sigmoid":
        return float(np.mean((y < 0.03) | (y > 0.97)))
    return float("nan")


def layer_activations(model, X: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(z, activation) of each hidden layer on X, in eval mode: the MLP's Sequential run layer
    by layer, a pair for each module that follows a Linear and is not the last layer."""
    from dlx.nn.layers import Linear

    was_training = model.training
    model.eval()
    pairs, h, z = [], X, None
    try:
        for layer in model.layers:
            out = layer.forward(h)
            if isinstance(layer, Linear):
                z = out
            elif z is not None:  # the activation right after a Linear
                pairs.append((z, out))
                z = None
            h = out
    finally:
        model.train(was_training)
    return pairs


def rows(name: str, model, X: np.ndarray, step: int) -> list[tuple]:
    out = []
    for i, (z, y) in enumerate(layer_activations(model, X), start=1):
        dead = float(np.mean(np.all(z <= 0, axis=0)))  # (B, H) -> per unit, then the fraction
        y64 = y.astype(np.float64)
        out.append((step, i, saturated_fraction(name, y), dead, float(y64.mean()),
                    float(y64.std())))
    return out


class Recorder:
    """hook(step, backend): the rows of activations.csv every ``every`` steps."""

    def __init__(self, name: str, X: np.ndarray, every: int, run_dir: Path):
        self.name, self.X, self.every, self.last = name, X, every, None
        self.file = open(run_dir / TABLE, "w", buffering=1)
        self.file.write(",".join(COLUMNS) + "\n")

    def __call__(self, step: int, backend, force: bool = False) -> None:
        if (step % self.every and not force) or step == self.last:
            return
        self.last = step
        with np.errstate(all="ignore"):
            for row in rows(self.name, backend.model, self.X, step):
                self.file.write(",".join(repr(v) for v in row) + "\n")

    def close(self) -> None:
        self.file.close()


def run(cfg, rec, run_dir: Path):
    from dlx.assemble import build_data
    from dlx.training import NumpyBackend, train

    data = build_data(cfg)
    backend = NumpyBackend(cfg, data)
    c = cfg["activations"]
    recorder = Recorder(cfg["model"]["activation"], data.X_val[:c["probe_size"]], c["every"],
                        run_dir)
    try:
        result = train(cfg, rec, cfg["progress"], run_dir, hooks=[recorder], backend=backend)
        recorder(result.steps, backend, force=True)  # the trained network too
    finally:
        recorder.close()
    return result


# --- reading runs back ------------------------------------------------------------------------

def read(run):
    import pandas as pd

    path = run.path / TABLE
    return pd.read_csv(path) if path.is_file() else None


def activation_of(run) -> str:
    return run.config["model"]["activation"]


def over_layers(run, column: str):
    """(step, value): ``column`` averaged over the hidden layers at each recorded step."""
    t = read(run)
    return t.groupby("step", as_index=False)[column].mean().rename(columns={column: "value"})


def at(run, column: str, step: int | None = None, layer: int | None = None) -> float:
    """``column`` at ``step`` (default the last), of ``layer`` (default: mean over layers)."""
    t = read(run)
    t = t[t["step"] == (t["step"].max() if step is None else step)]
    return float((t if layer is None else t[t["layer"] == layer])[column].mean())


def first_layer_grad(run, step: int = 0) -> float:
    """‖∂L/∂z‖ of the first hidden layer (the existing probe's layer_stats.csv)."""
    _, values = at_step(read_layer_stats(run), step, "grad_z_norm")
    return float(values[0])


def report_numbers(run) -> dict:
    t = read(run)
    if t is None:
        return {}
    last = len(t["layer"].unique())
    return {"saturated fraction, mean over layers, end": at(run, "saturated"),
            "dead fraction, mean over layers, end": at(run, "dead"),
            "activation std, first / last hidden layer, init":
                at(run, "act_std", 0, 1) / at(run, "act_std", 0, last),
            "‖∂L/∂z‖ first hidden layer, init": first_layer_grad(run),
            "final validation accuracy": run.summary.get("final", {}).get("val/acc")}


def table(runs):
    """Per activation over seeds: mean, sd, n of the saturated and dead fractions (end, mean
    over layers), the last hidden layer's activation std at init, the first layer's ‖∂L/∂z‖
    at init, and the final validation accuracy."""
    def last_std(r):
        t = read(r)
        return at(r, "act_std", 0, int(t["layer"].max()))

    return setting_stats(runs, activation_of, {
        "saturated": lambda r: at(r, "saturated"), "dead": lambda r: at(r, "dead"),
        "dead_init": lambda r: at(r, "dead", 0), "last_std_init": last_std,
        "grad1": first_layer_grad, "val_acc": lambda r: r.summary["final"].get("val/acc")})


# --- figures ----------------------------------------------------------------------------------

def curves(name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An activation and its derivative at x (the module's own backward, dout = 1)."""
    from dlx.nn.activations import ACTIVATIONS

    act = ACTIVATIONS[name]()
    y = act.forward(x)
    return y, act.backward(np.ones_like(x))


def curves_figure(out: Path, fmt: str, names=ORDER) -> Path:
    x = np.linspace(-5, 5, 1001)
    fig, axes = panels("activations (left) and their derivatives (right), from each module's "
                       "forward and hand-written backward", 2, size=(12, 4.6))
    for i, name in enumerate(names):
        y, dy = curves(name, x)
        axes[0].plot(x, y, color=f"C{i}", label=name)
        axes[1].plot(x, dy, color=f"C{i}", label=name)
    axes[0].set_ylim(-2, 4)
    axes[0].set_ylabel("activation f(z)")
    axes[1].set_ylabel("derivative f'(z)")
    for ax in axes:
        ax.set_xlabel("pre-activation z")
        ax.axhline(0, color="k", lw=0.6)
        ax.legend(fontsize=8)
    return save(fig, out / f"activation_curves.{fmt}")


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    t = read(run)
    if t is None:
        return []
    name = activation_of(run)
    fig, axes = panels(f"{name}, {len(run.config['model']['hidden'])} hidden layers, init "
                       f"{run.config['init']['name']}: per layer over training", 2, size=(12, 4.4))
    for layer, g in t.groupby("layer"):
        color = plt_color(layer, t["layer"].max())
        if np.isfinite(g["saturated"]).any():
            axes[0].plot(g["step"], g["saturated"], color=color, label=f"layer {layer}")
        axes[1].plot(g["step"], g["dead"], color=color, label=f"layer {layer}")
    axes[0].set_ylabel("saturated fraction of activations")
    if not np.isfinite(t["saturated"]).any():
        axes[0].set_title(f"{name} has no two flat tails: no saturation", fontsize=9)
    axes[1].set_ylabel("dead fraction of units (z <= 0 on every probe example)")
    for ax in axes:
        ax.set_xlabel(STEP_LABEL)
        if ax.lines:
            ax.legend(fontsize=7, ncol=2)
    return [save(fig, out / f"activation_stats.{fmt}")]


def plt_color(layer: int, n: int):
    from matplotlib import colormaps

    return colormaps["viridis"]((layer - 1) / max(n - 1, 1))


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    runs = [r for r in runs if read(r) is not None]
    groups: dict[str, list] = {}
    for r in runs:
        groups.setdefault(activation_of(r), []).append(r)
    written = [curves_figure(out, fmt, [n for n in ORDER if n in groups] or ORDER)]
    stats = table(runs)
    note = seeds_note(stats["n"])
    fig, axes = panels(f"the same 8 x 64 MLP with each activation and its usual init ({note})",
                       3, size=(17, 4.8))
    for i, (name, members) in enumerate(groups.items()):
        color = f"C{ORDER.index(name) if name in ORDER else i}"
        if name in ("sigmoid", "tanh"):
            draw_band(axes[0], curve_stats([over_layers(r, "saturated") for r in members]),
                      color=color, label=name)
        if name not in ("sigmoid", "tanh"):  # z <= 0 everywhere kills only the ReLU family
            draw_band(axes[1], curve_stats([over_layers(r, "dead") for r in members]),
                      color=color, label=name)
        for last, style in ((False, "-o"), (True, "--")):
            per_seed = []
            for r in members:
                probe = read_layer_stats(r)
                layers, values = at_step(probe, int(probe["step"].max()) if last else 0,
                                         "grad_z_norm")
                per_seed.append(np.log10(values[:-1]))  # hidden layers (the output layer last)
            logs = np.array(per_seed)
            mean = logs.mean(axis=0)
            sd = logs.std(axis=0, ddof=1) if len(logs) > 1 else 0 * mean
            axes[2].errorbar(layers[:-1], 10 ** mean, yerr=[10 ** mean - 10 ** (mean - sd),
                             10 ** (mean + sd) - 10 ** mean], fmt=style, ms=3, capsize=2,
                             color=color, label=None if last else name)
    axes[0].set_title("saturated fraction (|tanh| > 0.97; sigmoid < 0.03 or > 0.97)", fontsize=9)
    axes[0].set_ylabel("fraction of activations, mean over layers")
    axes[1].set_title("units never active (z <= 0 on every probe example):\n"
                      "dead for ReLU (zero gradient), not for ELU/SELU/SiLU/softplus", fontsize=9)
    axes[1].set_ylabel("fraction of units, mean over layers")
    for ax in axes[:2]:
        ax.set_xlabel(STEP_LABEL)
        ax.legend(fontsize=8)
    axes[2].set_title("gradient flow: at init (solid), at the end (dashed);\n"
                      "geometric mean ×/÷ sd over seeds", fontsize=9)
    axes[2].set_yscale("log")
    axes[2].set_xlabel("hidden layer (1 = nearest the input)")
    axes[2].set_ylabel("‖∂L/∂z‖ (log scale)")
    axes[2].legend(fontsize=8)
    written.append(save(fig, out / f"activations_training.{fmt}"))

    fig, axes = panels(f"activation std per layer at init, and final validation accuracy ({note})",
                       2, size=(12, 4.6))
    for i, (name, members) in enumerate(groups.items()):
        color = f"C{ORDER.index(name) if name in ORDER else i}"
        s = curve_stats([read(r).query("step == 0")[["layer", "act_std"]].rename(
            columns={"act_std": "value"}) for r in members], x="layer")
        axes[0].errorbar(s["layer"], s["mean"], yerr=s["sd"].fillna(0), fmt="-o", ms=3,
                         capsize=2, color=color, label=name)
    axes[0].axhline(1.0, color="k", lw=0.7, ls=":")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("hidden layer (1 = nearest the input)")
    axes[0].set_ylabel("std of the activations at init (log scale)")
    axes[0].set_ylim(0.05, 4)
    axes[0].legend(fontsize=8, ncol=4, loc="lower center")  # below every curve
    x = np.arange(len(stats))
    axes[1].bar(x, stats["val_acc_mean"], yerr=stats["val_acc_sd"].fillna(0), capsize=4,
                color=[f"C{ORDER.index(s) if s in ORDER else i}"
                       for i, s in enumerate(stats["setting"])])
    axes[1].set_xticks(x, list(stats["setting"]))
    lo = float(np.nanmin(stats["val_acc_mean"] - stats["val_acc_sd"].fillna(0)))
    axes[1].set_ylim(max(0.0, lo - 0.05), 1.0)
    axes[1].set_ylabel("final validation accuracy (fraction correct)")
    axes[1].set_xlabel("activation")
    written.append(save(fig, out / f"activations_summary.{fmt}"))
    return written
