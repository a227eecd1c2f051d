"""learning_rate: too low crawls, a good one converges, too high diverges (drawn as such) —
each learning rate over several seeds, its loss curve drawn as the mean with a ±1 sd band."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dlx.plots.style import STEP_LABEL, figure, save, y_label
from dlx.plots.sweep import curve_stats, draw_band, seeds_note, setting_stats


def final_losses(runs) -> pd.DataFrame:
    """Per learning rate (ascending), over its seeds: final full-train-set loss of the seeds
    that did not diverge (``final_train_loss_n`` of ``n``) and how many diverged."""
    stats = setting_stats(runs, lambda r: r.config["optimizer"]["lr"], {
        "final_train_loss": lambda r: None if r.summary["status"] == "diverged"
        else r.summary["final"].get("train/loss"),
        "diverged": lambda r: float(r.summary["status"] == "diverged")})
    stats = stats.rename(columns={"setting": "lr"}).sort_values("lr", ignore_index=True)
    stats["diverged"] = (stats.pop("diverged_mean") * stats["n"]).round().astype(int)
    return stats.drop(columns=["diverged_sd", "diverged_n"])


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    stats = final_losses(runs)
    fig, ax = figure(f"learning rate: too low, good, too high ({seeds_note(stats['n'])})",
                     STEP_LABEL + " (log scale)", y_label("loss") + " (log scale)")
    for i, row in stats.iterrows():
        color, lr = f"C{i}", row["lr"]
        members = [r for r in runs if r.config["optimizer"]["lr"] == lr]
        batch = curve_stats([r.series("batch", "loss") for r in members])
        ax.plot(batch["step"], batch["mean"], color=color, lw=0.6, alpha=0.4)
        full = curve_stats([r.series("train", "loss") for r in members])
        text = f"lr = {lr:g}"
        if row["diverged"]:
            steps = [r.summary["diverged_at_step"] for r in members
                     if r.summary["status"] == "diverged"]
            text += (f" — diverged in {int(row['diverged'])} of {int(row['n'])} seeds "
                     f"(step {', '.join(map(str, steps))})")
        draw_band(ax, full[full["step"] > 0], color=color, log=True, marker="o", ms=3,
                  label=text + " (dots: full set, mean ± sd)")
        for run in members:
            if run.summary["status"] != "diverged":
                continue
            b = run.series("batch", "loss")
            finite = b["value"][np.isfinite(b["value"])]
            if not len(b) or not len(finite):
                continue
            last = b.iloc[-1]
            value = last["value"] if np.isfinite(last["value"]) else finite.max()
            ax.plot([last["step"]], [value], "X", color=color, ms=14, mec="k")
            ax.annotate("diverged", (last["step"], value), textcoords="offset points",
                        xytext=(10, -4), color="tab:red")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=8, loc="center right")
    return [save(fig, out / f"learning_rates.{fmt}")]
