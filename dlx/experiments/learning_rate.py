"""learning_rate: too low crawls, a good one converges, too high diverges (drawn as such)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlx.plots.style import STEP_LABEL, figure, save, y_label


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    fig, ax = figure("learning rate: too low, good, too high", STEP_LABEL + " (log scale)",
                     y_label("loss") + " (log scale)")
    for i, run in enumerate(runs):
        color = f"C{i}"
        lr = run.config["optimizer"]["lr"]
        status = run.summary["status"]
        text = f"lr = {lr:g}" + (f" — diverged at step {run.summary['diverged_at_step']}"
                                 if status == "diverged" else "")
        b = run.series("batch", "loss")
        ax.plot(b["step"], b["value"], color=color, lw=0.6, alpha=0.4)
        s = run.series("train", "loss")
        s = s[s["step"] > 0]
        ax.plot(s["step"], s["value"], "-o", ms=3, color=color, label=text + " (dots: full set)")
        if status == "diverged" and len(b):
            last = b.iloc[-1]
            value = last["value"] if np.isfinite(last["value"]) else b["value"][np.isfinite(
                b["value"])].max()
            ax.plot([last["step"]], [value], "X", color=color, ms=14, mec="k")
            ax.annotate("diverged", (last["step"], value), textcoords="offset points",
                        xytext=(10, -4), color="tab:red")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=8, loc="center right")
    return [save(fig, out / f"learning_rates.{fmt}")]
