"""grad_flow: per-layer gradient norms during training of deep sigmoid, tanh and ReLU nets —
a layer x step heat map of ‖∂L/∂z‖ for each, and the per-layer profile at the start and end."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlx.experiments.layers import FLOOR, STAT_LABELS, at_step, heatmap, read
from dlx.plots.style import panels, save
from dlx.plots.sweep import n_seeds


def first_last_ratio(stats, step: int = 0, stat: str = "grad_z_norm") -> float:
    """‖∂L/∂z‖ at the first hidden layer over the last hidden layer: << 1 means vanishing."""
    layers, values = at_step(stats, step, stat)
    return float(values[0] / values[-2])


def report_numbers(run) -> dict:
    stats = read(run)
    if stats is None:
        return {}
    return {"‖∂L/∂z‖ first / last hidden layer, at init": first_last_ratio(stats),
            "... at the end": first_last_ratio(stats, int(stats["step"].max()))}


def _title(run) -> str:
    m = run.config["model"]
    return f"{m['activation']}, {len(m['hidden'])} hidden layers, init {run.config['init']['name']}"


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    stats = read(run)
    if stats is None or stats["step"].nunique() < 2:
        return []
    fig, axes = panels(f"gradient flow — {_title(run)}", 2, size=(12, 4.6))
    heatmap(fig, axes[0], stats, "grad_z_norm", "log₁₀ ‖∂L/∂z‖ per layer over training")
    _profiles(axes[1], stats)
    return [save(fig, out / f"grad_flow.{fmt}")]


def _profiles(ax, stats) -> None:
    steps = sorted(stats["step"].unique())
    for step, style in ((steps[0], "-o"), (steps[len(steps) // 2], "--s"), (steps[-1], ":^")):
        for stat, color in (("grad_z_norm", "tab:blue"), ("grad_W_norm", "tab:orange")):
            layers, values = at_step(stats, step, stat)
            ax.plot(layers, values, style, ms=4, color=color,
                    label=f"{STAT_LABELS[stat].split(' (')[0]}, step {step}")
    ax.set_yscale("log")
    ax.set_xlabel("layer (1 = nearest the input)")
    ax.set_ylabel("gradient norm (log scale)")
    ax.legend(fontsize=7)


def _by_activation(runs) -> dict[str, list]:
    groups: dict[str, list] = {}
    for run in runs:
        groups.setdefault(run.config["model"]["activation"], []).append(run)
    return groups


def geometric_mean_stats(runs):
    """The members' layer_stats as one table: each (layer, step, stat) the geometric mean over
    the seeds (norms span decades: their logs are what varies like a normal)."""
    import pandas as pd

    table = pd.concat([read(r) for r in runs])
    table["value"] = np.log10(np.maximum(table["value"], FLOOR))
    mean = table.groupby(["step", "layer", "stat"], as_index=False)["value"].mean()
    mean["value"] = 10.0 ** mean["value"]
    return mean


def ratio_spread(runs, step: int | None = None) -> tuple[float, float]:
    """First / last hidden layer's ‖∂L/∂z‖ over the seeds: (geometric mean, ×/÷ factor, the
    geometric sd)."""
    logs = [np.log10(first_last_ratio(read(r), 0 if step is None else step)) for r in runs]
    return 10.0 ** float(np.mean(logs)), 10.0 ** float(np.std(logs, ddof=1) if len(logs) > 1 else 0)


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    groups = _by_activation([r for r in runs if read(r) is not None])
    n = max(len(g) for g in groups.values())
    fig, axes = panels(f"gradient flow: log₁₀ ‖∂L/∂z‖, layer x step (geometric mean of "
                       f"{n_seeds(n)})", len(groups), size=(5.2 * len(groups), 4.4))
    means = {act: geometric_mean_stats(members) for act, members in groups.items()}
    logs = [np.log10(m.query("stat == 'grad_z_norm'")["value"]) for m in means.values()]
    lo, hi = min(v.min() for v in logs), max(v.max() for v in logs)  # one scale for all
    for ax, (act, members) in zip(np.atleast_1d(axes), groups.items()):
        ratio, spread = ratio_spread(members)
        heatmap(fig, ax, means[act], "grad_z_norm",
                f"{_title(members[0])}\nfirst/last hidden layer at init: {ratio:.2g} ×/÷ "
                f"{spread:.2f} ({n_seeds(len(members))})", vmin=lo, vmax=hi)
    written = [save(fig, out / f"grad_flow_heatmaps.{fmt}")]

    fig, axes = panels(f"per-layer ‖∂L/∂z‖ at initialization and at the end (geometric mean, "
                       f"bars ×/÷ sd over {n} seeds)", 2, size=(12, 4.6))
    for i, members in enumerate(groups.values()):
        for ax, last in zip(axes, (False, True)):
            per_seed = []
            for r in members:
                stats = read(r)
                layers, values = at_step(stats, stats["step"].max() if last else 0, "grad_z_norm")
                per_seed.append(np.log10(values))
            logs = np.array(per_seed)
            mean, sd = logs.mean(axis=0), logs.std(axis=0, ddof=1) if len(logs) > 1 else 0 * logs[0]
            ax.errorbar(layers, 10 ** mean, yerr=[10 ** mean - 10 ** (mean - sd),
                                                  10 ** (mean + sd) - 10 ** mean],
                        fmt="-o", ms=4, capsize=3, color=f"C{i}", label=_title(members[0]))
            ax.set_title("at the end" if last else "at initialization (step 0)", fontsize=10)
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("layer (1 = nearest the input)")
        ax.set_ylabel(STAT_LABELS["grad_z_norm"] + " (log scale)")
    axes[0].legend(fontsize=8)
    written.append(save(fig, out / f"grad_flow_profiles.{fmt}"))
    return written
