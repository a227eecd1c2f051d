"""logreg: the decision boundary of logistic regression, and its weight norm, which on
separable data grows without bound (the loss keeps falling by scaling w up: ||w|| ~ log t)."""

from __future__ import annotations

from pathlib import Path

from dlx.plots.run import draw_decision_boundary
from dlx.plots.style import STEP_LABEL, figure, panels, save, y_label


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    fig, ax = figure("logistic regression: the weight norm grows without bound on separable data",
                     STEP_LABEL + " (log scale)", y_label("weight_norm"))
    for i, (run, label) in enumerate(zip(runs, labels)):
        m = run.metrics
        s = m[(m["split"] == "model") & (m["metric"] == "weight_norm") & (m["step"] > 0)]
        ax.plot(s["step"], s["value"], color=f"C{i}", lw=2, label=label)
    ax.set_xscale("log")
    ax.legend(title="differs", fontsize=9)
    written = [save(fig, out / f"weight_norm_log_steps.{fmt}")]

    fig, axes = panels("decision boundaries", len(runs), size=(5.2 * len(runs), 4.8))
    for ax, run, label in zip(axes, runs, labels):
        draw_decision_boundary(fig, ax, run, colorbar=False)
        ax.set_title(label, fontsize=10)
    written.append(save(fig, out / f"decision_boundaries.{fmt}"))
    return written
