"""resnet: plain against residual networks at increasing depth (He et al. 2016, Fig. 1 and 6).

Two things are measured for each depth 6n + 2 and each family (``model=plain``: the same
convolutions and BatchNorms without the shortcuts), over seeds:

* the degradation problem: after the same number of updates the deep plain net has a higher
  training loss and error than the shallow one, while the deeper residual net is as good or
  better — an optimization difficulty, since the training set is what is fitted;
* per-layer ||dL/dz_l|| at initialization (z_l the output of weight layer l, the probe of
  :mod:`dlx.nn.probe` on the first ``probe_batch`` training images, BatchNorm on the batch's
  statistics as training uses it): its profile from the input to the output. A plain stack
  multiplies one Jacobian per layer, so its gradient changes by a constant factor per layer:
  with ReLU + BN it grows towards the input, by sqrt(pi / (pi - 1)) = 1.21 per layer in Yang
  et al.'s (2019) mean-field theory (measured here: 1.20 at 56 layers). A residual stream
  x_{l+1} = x_l + F(x_l) passes dL/dx_{l+1} on unchanged and adds the branch's term; the
  measured profile still grows towards the input, but far more slowly than geometrically
  (1.08 per layer on average at 56 layers, 95 from the stem to the last conv against 1.6e4).

The run trains without the official test set: the result is about fitting the training set, and
10,000 test images through a 56-layer net would cost more than training it here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

LAYERS = "layers.csv"  # layer index -> weight layer name (which are projections, which is fc)


# --- the run ------------------------------------------------------------------------------------

def weight_layers(model) -> list[str]:
    """Names of the weight layers (Conv2d, Linear) in the order the forward pass meets them —
    the probe's layer numbering (a residual block runs its body, then its shortcut)."""
    from dlx.nn.probe import WEIGHTED

    return [m.W.name.rsplit(".", 1)[0] for m in model.modules() if isinstance(m, WEIGHTED)]


def run(cfg, rec, run_dir: Path):
    from dlx.assemble import build_data
    from dlx.records.files import LAYER_STATS
    from dlx.training import train
    from dlx.training.backend import NumpyBackend, make_backend

    data = dataclasses.replace(build_data(cfg), X_test=None, y_test=None)
    backend = make_backend(cfg, data)
    if isinstance(backend, NumpyBackend):  # the probe reads the NumPy layers
        from dlx.nn.probe import layer_stats

        n = cfg.get("probe_batch", 512)
        rows = layer_stats(backend.model, backend.loss_fn, data.X_train[:n], data.y_train[:n],
                           batch_stats=True)
        with open(run_dir / LAYER_STATS, "w") as f:
            f.write("step,layer,stat,value\n")
            for row in rows:
                for stat in ("z_std", "act_std", "grad_z_norm", "grad_W_norm"):
                    if stat in row:
                        f.write(f"0,{row['layer']},{stat},{row[stat]!r}\n")
        names = weight_layers(backend.model)
        (run_dir / LAYERS).write_text(
            "layer,name\n" + "".join(f"{i + 1},{name}\n" for i, name in enumerate(names)))
    return train(cfg, rec, cfg["progress"], run_dir, backend=backend,
                 checkpoint=cfg.get("checkpoint", True))


# --- reading a run back -------------------------------------------------------------------------

def family(run) -> str:
    return "residual" if run.config["model"]["name"] == "resnet" else "plain"


def depth(run) -> int:
    return int(run.config["model"]["depth"])


def profile(run) -> tuple[np.ndarray, np.ndarray] | None:
    """||dL/dz_l|| at initialization along the main path: every conv from the stem to the last
    block's second conv (the projection shortcuts and the output layer left out), position 1 =
    nearest the input. None if the run has no probe."""
    import pandas as pd

    from dlx.experiments.layers import at_step, read

    stats, names = read(run), run.path / LAYERS
    if stats is None or not names.is_file():
        return None
    names = pd.read_csv(names)
    keep = names[~names["name"].str.endswith(".proj") & (names["name"] != "fc")]["layer"]
    layers, values = at_step(stats, 0, "grad_z_norm")
    values = values[np.isin(layers, keep.to_numpy())]
    return np.arange(1, len(values) + 1), values


def first_last_ratio(run) -> float | None:
    """||dL/dz|| at the stem conv over that at the last conv, at initialization: 1 is a flat
    profile; >> 1 grows towards the input, << 1 vanishes towards it."""
    p = profile(run)
    return None if p is None else float(p[1][0] / p[1][-1])


def growth_per_layer(run) -> float | None:
    """exp(-slope) of the least-squares line through log ||dL/dz_l|| against position l: the
    factor by which the gradient grows per layer towards the input (a constant factor is
    geometric growth: Yang et al. 2019 predict sqrt(pi / (pi - 1)) = 1.21 for ReLU + BN)."""
    p = profile(run)
    if p is None or len(p[1]) < 2:
        return None
    return float(np.exp(-np.polyfit(p[0], np.log(p[1]), 1)[0]))


def final(run, key: str) -> float | None:
    return run.summary.get("final", {}).get(key)


def batch_loss_end(run) -> float | None:
    """The mini-batch loss averaged over the last quarter of the updates: the training loss the
    optimizer sees (BatchNorm on batch statistics). The end-of-run evaluation (eval mode) uses
    the running estimates instead, which after ~100 fast-moving updates can lag the weights —
    most in the deepest nets."""
    s = run.series("batch", "loss")["value"].to_numpy()
    return float(s[-max(len(s) // 4, 1):].mean()) if len(s) else None


def train_error(run) -> float | None:
    acc = final(run, "train/acc")
    return None if acc is None else 1.0 - acc


def report_numbers(run) -> dict:
    numbers = {"training loss at the end": final(run, "train/loss"),
               "training error at the end": train_error(run),
               "mini-batch loss, last quarter of the updates": batch_loss_end(run)}
    ratio = first_last_ratio(run)
    if ratio is not None:
        numbers["‖∂L/∂z‖ stem conv / last conv, at init"] = ratio
        numbers["‖∂L/∂z‖ growth per layer towards the input, at init"] = growth_per_layer(run)
    return numbers


# --- figures ------------------------------------------------------------------------------------

COLORS = {"plain": "tab:red", "residual": "tab:blue"}


def table(runs):
    """Per (family, depth), over seeds: mean, sd, n of the final training loss and error (eval
    mode), of the mini-batch loss over the last quarter of the updates, of the validation
    error, of log10 of the first/last gradient ratio at init and of the gradient's growth per
    layer (sorted by family, then depth)."""
    from dlx.plots.sweep import setting_stats

    stats = setting_stats(runs, lambda r: (family(r), depth(r)), {
        "train_loss": lambda r: final(r, "train/loss"), "train_err": train_error,
        "batch_loss": batch_loss_end,
        "val_err": lambda r: None if final(r, "val/acc") is None else 1 - final(r, "val/acc"),
        "log10_ratio": lambda r: None if first_last_ratio(r) is None
        else np.log10(first_last_ratio(r)), "growth": growth_per_layer})
    stats.insert(0, "family", [s[0] for s in stats["setting"]])
    stats.insert(1, "depth", [s[1] for s in stats["setting"]])
    return stats.drop(columns="setting").sort_values(["family", "depth"], ignore_index=True)


def _setup(runs) -> str:
    c = runs[0].config
    return (f"width {c['model']['width']}, {c['dataset']['name']} subset {c['dataset']['subset']}, "
            f"batch {c['batch_size']}, {c['optimizer']['name']} lr {c['optimizer']['lr']:g}")


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    from matplotlib.ticker import MaxNLocator

    from dlx.plots.style import figure, save

    p = profile(run)
    if p is None:
        return []
    fig, ax = figure(f"{family(run)}-{depth(run)}: ‖∂L/∂z‖ per layer at initialization "
                     "(BatchNorm on batch statistics)",
                     "conv layer along the main path (1 = nearest the input)",
                     "‖∂L/∂z‖ (log scale)")
    ax.plot(*p, "-o", ms=3, color=COLORS[family(run)])
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return [save(fig, out / f"grad_profile.{fmt}")]


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    runs = [r for r in runs if r.summary.get("status") == "completed"]
    if not runs:
        return []
    stats = table(runs)
    written = [_degradation(out, fmt, runs, stats), _curves(out, fmt, runs)]
    if any(profile(r) is not None for r in runs):
        written.append(_profiles(out, fmt, runs, stats))
    out.mkdir(parents=True, exist_ok=True)
    stats.to_csv(out / "resnet.csv", index=False)
    return written


def _degradation(out, fmt, runs, stats) -> Path:
    """He et al.'s Fig. 6 as final values: training error and loss against depth (eval mode), and
    the mini-batch loss at the end of training (train mode)."""
    from dlx.plots.style import log_scale_if_wide, panels, save
    from dlx.plots.sweep import seeds_note

    steps = int(max(r.summary.get("steps", 0) for r in runs))
    fig, axes = panels(f"degradation: training error and loss against depth after {steps} updates"
                       f"\n({seeds_note(stats['n'])}; {_setup(runs)})", 3, size=(16, 4.8))
    for fam, t in stats.groupby("family", sort=False):
        for ax, col in zip(axes, ("train_err", "train_loss", "batch_loss")):
            mean, sd = t[f"{col}_mean"].to_numpy(), t[f"{col}_sd"].fillna(0).to_numpy()
            # the lower bar stops short of zero, so that it can be drawn on a log axis
            ax.errorbar(t["depth"], mean, yerr=[np.minimum(sd, 0.9 * mean), sd], fmt="-o",
                        capsize=4, color=COLORS[fam], label=f"{fam} networks")
    # one diverging member's eval-mode loss (BN's running estimates) can span decades
    log_scale_if_wide(axes[1], stats["train_loss_mean"])
    axes[0].set_ylabel("training error (fraction of the training set)")
    axes[1].set_ylabel("training loss (cross-entropy, nats)")
    axes[2].set_ylabel("mini-batch loss (nats)")
    axes[0].set_title("at the end, eval mode (BN running estimates)", fontsize=10)
    axes[1].set_title("at the end, eval mode (BN running estimates)", fontsize=10)
    axes[2].set_title("mean over the last quarter of the updates\n(train mode: what the "
                      "optimizer sees)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("depth (weight layers, 6n + 2)")
        ax.set_xticks(sorted(stats["depth"].unique()))
        ax.legend(fontsize=9)
    return save(fig, out / f"degradation.{fmt}")


def _curves(out, fmt, runs) -> Path:
    """He et al.'s Fig. 1/6 as curves: the mini-batch loss against the step, one panel per
    family, one line per depth (EMA-smoothed, mean over seeds with a ±1 sd band)."""
    import pandas as pd

    from dlx.plots.style import panels, save
    from dlx.plots.sweep import curve_stats, draw_band, smooth

    depths = sorted({depth(r) for r in runs})
    cmap = {d: f"C{i}" for i, d in enumerate(depths)}
    longest = max(len(r.series("batch", "loss")) for r in runs)
    span = max(longest // 20, 1)
    fig, axes = panels(f"mini-batch training loss (EMA over {span} steps; mean ± 1 sd over seeds)"
                       f"\n{_setup(runs)}", 2, size=(13, 5))
    for ax, fam in zip(axes, ("plain", "residual")):
        for d in depths:
            members = [r for r in runs if family(r) == fam and depth(r) == d]
            if not members:
                continue
            series = []
            for r in members:
                s = r.series("batch", "loss")
                series.append(pd.DataFrame({"step": s["step"].to_numpy(),
                                            "value": smooth(s["value"], span).to_numpy()}))
            draw_band(ax, curve_stats(series), color=cmap[d], log=True,
                      label=f"{fam}-{d} ({len(members)} seeds)")
        ax.set_title(f"{fam} networks", fontsize=10)
        ax.set_xlabel("step (parameter updates)")
        ax.set_ylabel("mini-batch training loss (nats, log scale)")
        ax.set_yscale("log")
        if ax.lines:
            ax.legend(fontsize=8)
    lo = min(a.get_ylim()[0] for a in axes)
    hi = max(a.get_ylim()[1] for a in axes)
    for ax in axes:  # one scale: the panels compare
        ax.set_ylim(lo, hi)
    return save(fig, out / f"training_curves.{fmt}")


def _profiles(out, fmt, runs, stats) -> Path:
    """||dL/dz|| at init against layer position, one panel per family, one line per depth:
    geometric mean over seeds with ×/÷ sd bars; a third panel the stem/last ratio by depth."""
    from matplotlib.ticker import MaxNLocator

    from dlx.plots.style import panels, save

    depths = sorted({depth(r) for r in runs})
    cmap = {d: f"C{i}" for i, d in enumerate(depths)}
    fig, axes = panels("per-layer ‖∂L/∂z‖ at initialization (BatchNorm on batch statistics, "
                       "geometric mean, bars ×/÷ sd over seeds)", 3, size=(16, 4.8))
    for ax, fam in zip(axes, ("plain", "residual")):
        for d in depths:
            logs = [np.log10(p[1]) for r in runs if family(r) == fam and depth(r) == d
                    for p in [profile(r)] if p is not None]
            if not logs:
                continue
            logs = np.array(logs)
            mean = logs.mean(axis=0)
            sd = logs.std(axis=0, ddof=1) if len(logs) > 1 else 0 * mean
            x = np.arange(1, len(mean) + 1)
            ax.errorbar(x, 10 ** mean, yerr=[10 ** mean - 10 ** (mean - sd),
                                             10 ** (mean + sd) - 10 ** mean],
                        fmt="-o", ms=2.5, capsize=2, color=cmap[d],
                        label=f"{fam}-{d} ({len(logs)} seeds)")
        ax.set_title(f"{fam} networks", fontsize=10)
        ax.set_xlabel("conv layer along the main path (1 = nearest the input)")
        ax.set_ylabel("‖∂L/∂z‖ (log scale)")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.lines:
            ax.legend(fontsize=8)
    lo = min(a.get_ylim()[0] for a in axes[:2])
    hi = max(a.get_ylim()[1] for a in axes[:2])
    for ax in axes[:2]:
        ax.set_ylim(lo, hi)
    ax = axes[2]
    for fam, t in stats.groupby("family", sort=False):
        mean, sd = t["log10_ratio_mean"].to_numpy(), t["log10_ratio_sd"].fillna(0).to_numpy()
        ax.errorbar(t["depth"], 10 ** mean, yerr=[10 ** mean - 10 ** (mean - sd),
                                                  10 ** (mean + sd) - 10 ** mean],
                    fmt="-o", capsize=4, color=COLORS[fam], label=fam)
    ax.axhline(1, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(depths)
    ax.set_xlabel("depth (weight layers, 6n + 2)")
    ax.set_ylabel("‖∂L/∂z‖ first conv / last conv (log scale)")
    ax.set_title("first over last layer at init (1 = flat)", fontsize=10)
    ax.legend(fontsize=9)
    return save(fig, out / f"grad_profiles.{fmt}")
