"""gd_variants: batch vs stochastic vs mini-batch gradient descent for the same epochs — loss
against epochs (equal work: every variant sees every example once per epoch) and against
gradient steps (updates), where the stochastic step losses show their noise. Each variant runs
several seeds; curves are their mean with a ±1 sd band."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlx.plots.style import panels, save, y_label
from dlx.plots.sweep import curve_stats, draw_band, seeds_note, setting_stats


def variant(run) -> str:
    b = run.config.get("batch_size")
    if b is None or run.summary.get("steps") == run.config.get("epochs"):
        return "batch GD (whole training set per step)"
    return "stochastic GD (1 example per step)" if b == 1 else f"mini-batch GD ({b} per step)"


def final_losses(runs) -> pd.DataFrame:
    """Per variant (in sweep order), over its seeds: final full-train-set loss and the noise of
    the step losses (sd of the last 100 step-to-step changes)."""
    def noise(r):
        return r.series("batch", "loss")["value"].diff().iloc[-100:].std()

    return setting_stats(runs, variant, {
        "final_train_loss": lambda r: r.summary["final"].get("train/loss"),
        "step_noise": noise}).rename(columns={"setting": "variant"})


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    stats = final_losses(runs)
    fig, axes = panels("batch vs stochastic vs mini-batch gradient descent, same epochs "
                       f"({seeds_note(stats['n'])})", 2, size=(12, 4.8))
    for i, row in stats.iterrows():
        name, color = row["variant"], f"C{i}"
        members = [r for r in runs if variant(r) == name]
        full = curve_stats([r.series("train", "loss") for r in members], "epoch")
        draw_band(axes[0], full, "epoch", color=color, log=True, marker="o", ms=3,
                  label=f"{name}: final {row['final_train_loss_mean']:.3f} ± "
                        f"{row['final_train_loss_sd']:.3f}")
        window = max(1, members[0].summary["steps"] // members[0].config["epochs"] // 10)
        smooth = [r.series("batch", "loss") for r in members]
        for b in smooth:
            b["value"] = b["value"].rolling(window, min_periods=1).mean()
        batch = curve_stats(smooth)  # 1/10 epoch running mean, then over seeds
        axes[1].plot(batch["step"], batch["mean"], color=color, lw=0.8, alpha=0.5)
        steps = curve_stats([r.series("train", "loss") for r in members])
        steps["step"] = steps["step"].clip(lower=1)
        draw_band(axes[1], steps, color=color, marker="o", ms=3, label=name)
    axes[0].set_xlabel("epoch (passes over the training set)")
    axes[0].set_ylabel("train " + y_label("loss") + ", full training set (log scale)")
    axes[1].set_xlabel("gradient steps (updates, log scale)")
    axes[1].set_ylabel(y_label("loss"))
    axes[1].set_title("thin: step losses (mean over 1/10 epoch and seeds); dots: full training "
                      "set, band ±1 sd", fontsize=9)
    axes[1].set_xscale("log")
    start = runs[0].series("train", "loss")["value"].iloc[0]
    axes[1].set_ylim(0, 1.4 * start)  # a single example's loss ranges over decades: clip
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8, title="final train loss, mean ± sd", title_fontsize=8)
    return [save(fig, out / f"gd_variants.{fmt}")]
