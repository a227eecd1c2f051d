"""grad_flow: per-layer gradient norms during training of deep sigmoid, tanh and ReLU nets —
a layer x step heat map of ‖∂L/∂z‖ for each, and the per-layer profile at the start and end."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlx.experiments.layers import STAT_LABELS, at_step, heatmap, read
from dlx.plots.style import panels, save


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


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    runs = [r for r in runs if read(r) is not None]
    fig, axes = panels("gradient flow: log₁₀ ‖∂L/∂z‖, layer x step", len(runs),
                       size=(5.2 * len(runs), 4.4))
    logs = [np.log10(np.maximum(read(r).query("stat == 'grad_z_norm'")["value"], 1e-12))
            for r in runs]
    lo, hi = min(v.min() for v in logs), max(v.max() for v in logs)  # one scale for all
    for ax, run in zip(np.atleast_1d(axes), runs):
        stats = read(run)
        heatmap(fig, ax, stats, "grad_z_norm",
                f"{_title(run)}\nfirst/last hidden layer: {first_last_ratio(stats):.2g} at init",
                vmin=lo, vmax=hi)
    written = [save(fig, out / f"grad_flow_heatmaps.{fmt}")]

    fig, axes = panels("per-layer ‖∂L/∂z‖ at initialization and at the end", 2, size=(12, 4.6))
    for i, run in enumerate(runs):
        stats = read(run)
        for ax, step in zip(axes, (0, stats["step"].max())):
            layers, values = at_step(stats, step, "grad_z_norm")
            ax.plot(layers, values, "-o", ms=4, color=f"C{i}", label=_title(run))
            ax.set_title(f"step {step}", fontsize=10)
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("layer (1 = nearest the input)")
        ax.set_ylabel(STAT_LABELS["grad_z_norm"] + " (log scale)")
    axes[0].legend(fontsize=8)
    written.append(save(fig, out / f"grad_flow_profiles.{fmt}"))
    return written
