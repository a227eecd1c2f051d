"""transformer: a tiny transformer learns a toy sequence task — curves, and the attention map
of every head on one validation example (for `reverse`, an anti-diagonal: answer token j looks
at prompt token L-1-j)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from dlx.plots.style import save
from dlx.records.files import MODEL


def attention_example(run, index: int = 0):
    """(tokens of the example, list of (H, T, T) attention maps per layer)."""
    from dlx.assemble import trained_model

    model, data = trained_model(run)
    tokens = data.X_val[index: index + 1]
    model.forward(tokens)
    return tokens[0], [a[0] for a in model.attention_maps()], data.n_classes - 1


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    if not (run.path / MODEL).is_file() or run.config["model"]["name"] != "transformer":
        return []
    tokens, maps, sep = attention_example(run)
    labels = ["|" if t == sep else str(t) for t in tokens]
    layers, heads = len(maps), maps[0].shape[0]
    fig = Figure(figsize=(2.6 * heads + 1, 2.6 * layers + 0.8), dpi=110, layout="constrained")
    axes = np.atleast_2d(fig.subplots(layers, heads, squeeze=False))
    for i, layer in enumerate(maps):
        for h in range(heads):
            ax = axes[i, h]
            im = ax.imshow(layer[h], cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(len(labels)), labels, fontsize=6)
            ax.set_yticks(range(len(labels)), labels, fontsize=6)
            ax.set_title(f"layer {i + 1}, head {h + 1}", fontsize=8)
            if h == 0:
                ax.set_ylabel("query position (token)", fontsize=7)
            if i == layers - 1:
                ax.set_xlabel("key position (token)", fontsize=7)
    fig.colorbar(im, ax=axes, shrink=0.6, label="attention weight")
    task = run.config["dataset"]["name"]
    fig.suptitle(f"attention of every head on a validation example ({task}; '|' separates "
                 "prompt and answer)", fontsize=10)
    return [save(fig, out / f"attention_maps.{fmt}")]
