"""optimizers: nine optimizers on one problem, each over several seeds — loss against steps and
against wall time, the steps each needs to reach a target loss, and the memory its state costs.
Every number is a mean ± sd over the seeds: the ranking of the adaptive methods changes from
seed to seed, so only differences larger than that spread are results."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from dlx.plots.style import panels, save, y_label
from dlx.plots.sweep import curve_stats, draw_band, seeds_note, setting_stats


def steps_to(run, target: float) -> int | None:
    """The first step at which the full-train-set loss is <= target (None if never)."""
    s = run.series("train", "loss")
    hit = s[s["value"] <= target]
    return int(hit["step"].iloc[0]) if len(hit) else None


def state_x_params(run) -> float | None:
    s = run.summary
    param = s.get("param_bytes") or 0
    return (s.get("optimizer_state_bytes") or 0) / param if param else None


def arms(runs) -> dict[int, str]:
    """Each run's arm: its optimizer, and whatever else its sweep varies apart from the seed
    (``sgd (schedule=cosine)``): runs of one arm differ by seed only, so their spread is the
    seeds'."""
    from dlx.records.store import differing

    diffs = differing([[o for o in r.overrides if not o.startswith(("seed=", "optimizer="))]
                       for r in runs])
    return {id(r): r.config["optimizer"]["name"] + (f" ({', '.join(d)})" if d else "")
            for r, d in zip(runs, diffs)}


def table(runs) -> pd.DataFrame:
    """Per arm (optimizer, and what else the sweep varies; in sweep order), over its seeds:
    steps to the target loss (``_n``: how many seeds reached it), final validation loss,
    training seconds, state memory."""
    target = runs[0].config.get("target_loss", 0.15)
    arm = arms(runs)
    stats = setting_stats(runs, lambda r: arm[id(r)], {
        "steps_to_target": lambda r: steps_to(r, target),
        "final_val_loss": lambda r: (r.summary.get("final") or {}).get("val/loss"),
        "seconds": lambda r: r.summary.get("wall_time_s"),
        "state_x_params": state_x_params})
    stats = stats.rename(columns={"setting": "optimizer"})
    lrs = {arm[id(r)]: r.config["optimizer"]["lr"] for r in runs}
    stats.insert(1, "lr", [lrs[o] for o in stats["optimizer"]])
    stats.insert(2, "target_loss", target)
    return stats


def _time_curves(runs, arm: dict[int, str], split: str, optimizer: str) -> pd.DataFrame | None:
    """Loss against wall time, mean ± sd over seeds: per epoch, the seeds' mean time and loss
    (``arm``: each run's arm, :func:`arms`)."""
    members = [r for r in runs if arm[id(r)] == optimizer]
    curves, times = [], []
    for run in members:
        timing = run.timing()
        if timing is None:
            return None
        curves.append(run.series(split, "loss"))
        times.append(timing[["epoch", "seconds"]].rename(columns={"seconds": "value"}))
    loss, seconds = curve_stats(curves, "epoch"), curve_stats(times, "epoch")
    return loss.merge(seconds[["epoch", "mean"]].rename(columns={"mean": "seconds"}), on="epoch")


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    out.mkdir(parents=True, exist_ok=True)
    stats = table(runs)
    written, note, arm = [], seeds_note(stats["n"]), arms(runs)
    fig, axes = panels(f"optimizers: loss against wall-clock time (band: {note})", 2)
    for ax, split in zip(axes, ("train", "val")):
        for i, name in enumerate(stats["optimizer"]):
            curve = _time_curves(runs, arm, split, name)
            if curve is not None:
                draw_band(ax, curve, "seconds", color=f"C{i}", label=name, log=True, lw=1.6)
        ax.set_xlabel("wall-clock time (s, training only; mean over seeds)")
        ax.set_ylabel(f"{split} " + y_label("loss") + " (log scale)")
        ax.set_yscale("log")
    axes[1].legend(fontsize=7, title="optimizer", title_fontsize=7)
    written.append(save(fig, out / f"loss_vs_time.{fmt}"))

    stats.to_csv(out / "optimizers_table.csv", index=False, quoting=csv.QUOTE_MINIMAL)
    written.append(out / "optimizers_table.csv")

    target = stats["target_loss"].iloc[0]
    fig, axes = panels(f"steps to train loss <= {target:g} ({note}), and optimizer memory", 2)
    names, colors = list(stats["optimizer"]), [f"C{i}" for i in range(len(stats))]
    mean = stats["steps_to_target_mean"].fillna(0)
    axes[0].barh(names, mean, xerr=stats["steps_to_target_sd"].fillna(0), color=colors,
                 capsize=3)
    for y, r in stats.iterrows():
        reached = int(r["steps_to_target_n"])
        text = (f" {r['steps_to_target_mean']:.0f} ± {r['steps_to_target_sd']:.0f}"
                if reached > 1 else f" {r['steps_to_target_mean']:.0f}" if reached else " never")
        if 0 < reached < r["n"]:
            text += f"\n ({reached} of {r['n']} seeds reached it)"
        axes[0].text(mean[y] + (r["steps_to_target_sd"] if reached > 1 else 0), y, text,
                     va="center", fontsize=8)
    # room for the labels; no optimizer reached the target (an interrupted sweep): the steps run
    widest = (mean + stats["steps_to_target_sd"].fillna(0)).max()
    if not widest > 0:
        widest = max((r.metrics["step"].max() for r in runs if not r.metrics.empty), default=1)
    axes[0].set_xlim(0, 1.45 * max(float(widest), 1.0))
    axes[0].set_xlabel("steps (parameter updates) to reach the target, mean ± sd")
    axes[0].invert_yaxis()
    axes[1].barh(names, stats["state_x_params_mean"].fillna(0), color=colors)
    axes[1].set_xlabel("optimizer state (multiples of the parameters' memory)")
    axes[1].invert_yaxis()
    written.append(save(fig, out / f"steps_and_memory.{fmt}"))
    return written
