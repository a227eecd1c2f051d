"""learning_rate: too low crawls, a good one converges, too high diverges (drawn as such)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlx.plots.style import STEP_LABEL, figure, save, y_label


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str) -> list[Path]:
    out = sweep_dir / "plots"
    fig, ax = figure("learning rate: too low, good, too high", STEP_LABEL,
                     "train " + y_label("loss") + " (log scale)")
    for i, run in enumerate(runs):
        s = run.series("train", "loss")
        lr = run.config["optimizer"]["lr"]
        status = run.summary["status"]
        text = f"lr = {lr:g}" + (f" — diverged at step {run.summary['diverged_at_step']}"
                                 if status == "diverged" else "")
        ax.plot(s["step"], s["value"], "-o", ms=3, color=f"C{i}", label=text)
        if status == "diverged":
            b = run.series("batch", "loss")
            last = b.iloc[-1]
            value = last["value"] if np.isfinite(last["value"]) else ax.get_ylim()[1]
            ax.plot([last["step"]], [value], "X", color="tab:red", ms=14, mec="k")
            ax.annotate("diverged", (last["step"], value), textcoords="offset points",
                        xytext=(8, -4), color="tab:red")
    ax.set_yscale("log")
    ax.legend(fontsize=9)
    return [save(fig, out / f"learning_rates.{fmt}")]
