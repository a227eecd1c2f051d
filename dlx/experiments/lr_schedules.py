"""lr_schedules: the same run under several learning-rate schedules — the LR curves above,
the losses below (mean ± sd over seeds), on one step axis."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from dlx.plots.style import STEP_LABEL, save, y_label
from dlx.plots.sweep import curve_stats, draw_band, seeds_note, setting_stats


def schedule_of(run) -> str:
    """The schedule's name, with its warmup (warmup_cosine is cosine with 50 warmup steps)."""
    s = run.config["schedule"]
    return s["name"] + (f" + {s['warmup_steps']} warmup steps" if s.get("warmup_steps") else "")


def final_losses(runs) -> pd.DataFrame:
    """Per schedule (in sweep order), over its seeds: final full-train-set and validation loss."""
    return setting_stats(runs, schedule_of, {
        "final_train_loss": lambda r: r.summary["final"].get("train/loss"),
        "final_val_loss": lambda r: r.summary["final"].get("val/loss")}).rename(
            columns={"setting": "schedule"})


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    stats = final_losses(runs)
    fig = Figure(figsize=(8, 7.5), dpi=110, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    fig.suptitle("learning-rate schedules: the LR and the loss it gives "
                 f"(loss: {seeds_note(stats['n'])})", fontsize=11)
    for i, row in stats.iterrows():
        members = [r for r in runs if schedule_of(r) == row["schedule"]]
        label = f"{row['schedule']} (final {row['final_train_loss_mean']:.3f} ± " \
                f"{row['final_train_loss_sd']:.3f})"
        lr = members[0].series("batch", "lr")  # a schedule does not depend on the seed
        top.plot(lr["step"], lr["value"], color=f"C{i}", lw=1.8, label=row["schedule"])
        loss = curve_stats([r.series("train", "loss") for r in members])
        draw_band(bottom, loss, color=f"C{i}", log=True, marker="o", ms=2.5, lw=1.4, label=label)
    top.set_ylabel(y_label("lr"))
    top.legend(fontsize=8, title="schedule", title_fontsize=8)
    bottom.set_ylabel("train " + y_label("loss") + " (log scale)")
    bottom.set_yscale("log")
    bottom.set_xlabel(STEP_LABEL)
    bottom.legend(fontsize=7, title="final train loss, mean ± sd", title_fontsize=7, ncol=2)
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    return [save(fig, out / f"schedules.{fmt}")]
