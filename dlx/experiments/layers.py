"""Reading and drawing layer_stats.csv (the per-layer probe of the init and grad_flow
experiments)."""

from __future__ import annotations

import numpy as np

from dlx.records.files import LAYER_STATS

FLOOR = 1e-12  # a statistic that is exactly 0 (zeros init) is drawn here on log axes

STAT_LABELS = {"act_std": "std of the activations", "z_std": "std of the pre-activations z",
               "grad_z_norm": "‖∂L/∂z‖ (gradient at the pre-activations)",
               "grad_W_norm": "‖∂L/∂W‖ (weight gradient)"}


def read(run):
    import pandas as pd

    path = run.path / LAYER_STATS
    return pd.read_csv(path) if path.is_file() else None


def at_step(stats, step: int, stat: str):
    s = stats[(stats["step"] == step) & (stats["stat"] == stat)].sort_values("layer")
    return s["layer"].to_numpy(), np.maximum(s["value"].to_numpy(), FLOOR)


def heatmap(fig, ax, stats, stat: str, title: str, vmin=None, vmax=None):
    """log10 of ``stat`` as a layer x step image (one colour scale if vmin/vmax are given)."""
    table = stats[stats["stat"] == stat].pivot(index="layer", columns="step", values="value")
    values = np.log10(np.maximum(table.to_numpy(), FLOOR))
    steps = table.columns.to_numpy()
    ax.grid(False)
    im = ax.imshow(values, aspect="auto", origin="lower", cmap="magma", vmin=vmin, vmax=vmax,
                   extent=(steps.min(), steps.max(), table.index.min() - 0.5,
                           table.index.max() + 0.5))
    ax.set_xlabel("step (parameter updates)")
    ax.set_ylabel("layer (1 = nearest the input)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label=f"log₁₀ {STAT_LABELS[stat].split(' (')[0]}")
