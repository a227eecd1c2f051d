"""gd_variants: batch vs stochastic vs mini-batch gradient descent for the same epochs — loss
against epochs (equal work: every variant sees every example once per epoch) and against
gradient steps (updates), where the stochastic step losses show their noise."""

from __future__ import annotations

from pathlib import Path

from dlx.plots.style import panels, save, y_label


def variant(run) -> str:
    b = run.config.get("batch_size")
    if b is None or run.summary.get("steps") == run.config.get("epochs"):
        return "batch GD (whole training set per step)"
    return "stochastic GD (1 example per step)" if b == 1 else f"mini-batch GD ({b} per step)"


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    fig, axes = panels("batch vs stochastic vs mini-batch gradient descent, same epochs", 2,
                       size=(12, 4.8))
    for i, run in enumerate(runs):
        name, color = variant(run), f"C{i}"
        s = run.series("train", "loss")
        axes[0].plot(s["epoch"], s["value"], "-o", ms=3, color=color, label=name)
        b = run.series("batch", "loss")
        window = max(1, run.summary["steps"] // run.config["epochs"] // 10)  # 1/10 epoch
        axes[1].plot(b["step"], b["value"].rolling(window, min_periods=1).mean(), color=color,
                     lw=0.8, alpha=0.5)
        axes[1].plot(s["step"].clip(lower=1), s["value"], "-o", ms=3, color=color, label=name)
    axes[0].set_xlabel("epoch (passes over the training set)")
    axes[0].set_ylabel("train " + y_label("loss") + ", full training set")
    axes[1].set_xlabel("gradient steps (updates, log scale)")
    axes[1].set_ylabel(y_label("loss"))
    axes[1].set_title("thin: step losses (mean over 1/10 epoch); dots: full training set",
                      fontsize=9)
    axes[1].set_xscale("log")
    start = runs[0].series("train", "loss")["value"].iloc[0]
    axes[1].set_ylim(0, 1.4 * start)  # a single example's loss ranges over decades: clip
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    return [save(fig, out / f"gd_variants.{fmt}")]
