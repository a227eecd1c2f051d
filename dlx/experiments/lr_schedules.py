"""lr_schedules: the same run under several learning-rate schedules — the LR curves above,
the losses below, on one step axis."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from dlx.plots.style import STEP_LABEL, save, y_label


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    fig = Figure(figsize=(8, 7.5), dpi=110, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    fig.suptitle("learning-rate schedules: the LR and the loss it gives", fontsize=11)
    for i, (run, label) in enumerate(zip(runs, labels)):
        lr = run.series("batch", "lr")
        top.plot(lr["step"], lr["value"], color=f"C{i}", lw=1.8, label=label)
        loss = run.series("train", "loss")
        bottom.plot(loss["step"], loss["value"], "-o", ms=2.5, color=f"C{i}", lw=1.4, label=label)
    top.set_ylabel(y_label("lr"))
    top.legend(fontsize=8, title="differs", title_fontsize=8)
    bottom.set_ylabel("train " + y_label("loss") + " (log scale)")
    bottom.set_yscale("log")
    bottom.set_xlabel(STEP_LABEL)
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    return [save(fig, out / f"schedules.{fmt}")]
