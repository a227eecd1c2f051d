"""optimizers: nine optimizers on one problem — loss against steps and against wall time, the
steps each needs to reach a target loss, and the memory its state costs."""

from __future__ import annotations

import csv
from pathlib import Path

from dlx.plots.style import panels, save, y_label


def steps_to(run, target: float) -> int | None:
    """The first step at which the full-train-set loss is <= target (None if never)."""
    s = run.series("train", "loss")
    hit = s[s["value"] <= target]
    return int(hit["step"].iloc[0]) if len(hit) else None


def table(runs, labels) -> list[dict]:
    rows = []
    for run, label in zip(runs, labels):
        s = run.summary
        target = run.config.get("target_loss", 0.15)
        param = s.get("param_bytes") or 0
        rows.append({"optimizer": run.config["optimizer"]["name"], "label": label,
                     "lr": run.config["optimizer"]["lr"], "status": s["status"],
                     "target_loss": target, "steps_to_target": steps_to(run, target),
                     "state_bytes": s.get("optimizer_state_bytes"),
                     "state_x_params": (s.get("optimizer_state_bytes") or 0) / param if param else None,
                     "final_val_loss": (s.get("final") or {}).get("val/loss"),
                     "seconds": s.get("wall_time_s")})
    return rows


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    written = []
    fig, axes = panels("optimizers: loss against wall-clock time", 2)
    for ax, split in zip(axes, ("train", "val")):
        for i, (run, label) in enumerate(zip(runs, labels)):
            timing = run.timing()
            if timing is None:
                continue
            s = run.series(split, "loss").merge(timing[["epoch", "seconds"]], on="epoch")
            ax.plot(s["seconds"], s["value"], color=f"C{i}", lw=1.6, label=label)
        ax.set_xlabel("wall-clock time (s, training only)")
        ax.set_ylabel(f"{split} " + y_label("loss"))
        ax.set_yscale("log")
    axes[1].legend(fontsize=7, title="differs", title_fontsize=7)
    written.append(save(fig, out / f"loss_vs_time.{fmt}"))

    rows = table(runs, labels)
    with open(out / "optimizers_table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    written.append(out / "optimizers_table.csv")

    fig, axes = panels(f"steps to train loss <= {rows[0]['target_loss']:g}, and optimizer memory",
                       2)
    names = [r["optimizer"] for r in rows]
    steps = [r["steps_to_target"] or 0 for r in rows]
    axes[0].barh(names, steps, color=[f"C{i}" for i in range(len(rows))])
    for y, r in enumerate(rows):
        axes[0].text(steps[y], y, f" {r['steps_to_target']}" if r["steps_to_target"] else " never",
                     va="center", fontsize=8)
    axes[0].set_xlabel("steps (parameter updates) to reach the target")
    axes[0].invert_yaxis()
    axes[1].barh(names, [r["state_x_params"] or 0 for r in rows],
                 color=[f"C{i}" for i in range(len(rows))])
    axes[1].set_xlabel("optimizer state (multiples of the parameters' memory)")
    axes[1].invert_yaxis()
    written.append(save(fig, out / f"steps_and_memory.{fmt}"))
    return written
