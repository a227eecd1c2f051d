"""logreg: the decision boundary of logistic regression, and its weight norm, which on
separable data grows without bound (the loss keeps falling by scaling w up: ||w|| ~ log t)."""

from __future__ import annotations

from pathlib import Path

from dlx.plots.run import draw_decision_boundary
from dlx.plots.style import STEP_LABEL, figure, save, y_label


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    import numpy as np
    from matplotlib.figure import Figure

    out = sweep_dir / "plots" if out is None else out
    fig, ax = figure("logistic regression: the weight norm grows without bound on separable data",
                     STEP_LABEL + " (linear to 1, log above)", y_label("weight_norm"))
    for i, (run, label) in enumerate(zip(runs, labels)):
        m = run.metrics
        s = m[(m["split"] == "model") & (m["metric"] == "weight_norm")]
        ax.plot(s["step"], s["value"], "-o", ms=3, color=f"C{i}", lw=2, label=label)
    ax.set_xscale("symlog", linthresh=1)  # step 0 (the initial weights) stays on the axis
    ax.set_xlim(left=0)
    ax.legend(title="differs", fontsize=9)
    written = [save(fig, out / f"weight_norm_log_steps.{fmt}")]

    cols = min(3, len(runs))  # a grid, not one very wide row
    rows = -(-len(runs) // cols)
    fig = Figure(figsize=(5.2 * cols, 4.8 * rows), dpi=110, layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    fig.suptitle("decision boundaries of the final weights", fontsize=11)
    for ax, run, label in zip(axes, runs, labels):
        draw_decision_boundary(fig, ax, run, colorbar=False)
        ax.set_title(label, fontsize=10)
    for ax in axes[len(runs):]:
        ax.axis("off")
    written.append(save(fig, out / f"decision_boundaries.{fmt}"))
    return written
