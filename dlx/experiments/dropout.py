"""dropout: the generalization gap and the validation accuracy against the keep probability,
for dropout on activations and DropConnect on weights — each point a mean ± sd over seeds, and
the gain in validation accuracy paired by seed (the same data split and initial weights
without dropout), since a gain smaller than the seed spread is no gain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dlx.plots.style import panels, save
from dlx.plots.sweep import seeds_note, setting_stats


def gap(run) -> tuple[float, float]:
    """(train accuracy - validation accuracy, validation loss - train loss) at the end."""
    f = run.summary.get("final", {})
    return f["train/acc"] - f["val/acc"], f["val/loss"] - f["train/loss"]


def report_numbers(run) -> dict:
    acc_gap, loss_gap = gap(run)
    return {"train − val accuracy": acc_gap, "val − train loss": loss_gap}


def kind(run) -> str:
    return "DropConnect (weights)" if run.config["model"].get("dropconnect") \
        else "dropout (activations)"


def gain(run, runs) -> float | None:
    """Validation accuracy minus that of the same kind and seed at keep_prob 1.0 (None if the
    sweep has no such member)."""
    base = [r for r in runs if kind(r) == kind(run) and r.config["seed"] == run.config["seed"]
            and r.config["model"]["keep_prob"] == 1.0]
    return run.summary["final"]["val/acc"] - base[0].summary["final"]["val/acc"] if base else None


def gaps(runs) -> pd.DataFrame:
    """Per (kind, keep_prob), kinds in sweep order and keep_prob descending, over the seeds:
    mean, sd and n of the accuracy gap, the loss gap, the validation accuracy and its gain."""
    stats = setting_stats(runs, lambda r: (kind(r), r.config["model"]["keep_prob"]), {
        "acc_gap": lambda r: gap(r)[0], "loss_gap": lambda r: gap(r)[1],
        "val_acc": lambda r: r.summary["final"]["val/acc"], "gain": lambda r: gain(r, runs)})
    stats.insert(0, "kind", [s[0] for s in stats["setting"]])
    stats.insert(1, "keep_prob", [s[1] for s in stats["setting"]])
    order = {k: i for i, k in enumerate(dict.fromkeys(stats["kind"]))}
    stats = stats.drop(columns="setting").assign(o=stats["kind"].map(order))
    return stats.sort_values(["o", "keep_prob"], ascending=[True, False],
                             ignore_index=True).drop(columns="o")


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    table = gaps(runs)
    fig, axes = panels("dropout on an overfitting MLP (1000 training images), final values "
                       f"({seeds_note(table['n'])}, as error bars)", 3, size=(15, 4.6))
    panels_of = (("acc_gap", "train accuracy − validation accuracy"),
                 ("loss_gap", "validation loss − train loss (nats)"),
                 ("gain", "validation accuracy gain over keep_prob 1.0\n"
                          "(same seed; fraction correct)"))
    for j, (name, marker) in enumerate(zip(dict.fromkeys(table["kind"]), "os")):
        t = table[table["kind"] == name]
        shift = (j - 0.5) * 0.006  # side by side, so the error bars do not hide each other
        for ax, (column, _) in zip(axes, panels_of):
            ax.errorbar(t["keep_prob"] + shift, t[f"{column}_mean"],
                        yerr=t[f"{column}_sd"].fillna(0), fmt="-" + marker, capsize=3,
                        label=name)
    axes[2].axhline(0, color="k", lw=0.8)
    for ax, (_, label) in zip(axes, panels_of):
        ax.set_ylabel(label)
        ax.set_xlabel("keep probability (1.0 = no dropout)")
        ax.invert_xaxis()
        ax.legend(fontsize=9)
    if not np.isfinite(table["gain_mean"]).any():
        axes[2].set_title("no keep_prob 1.0 member to compare with", fontsize=9)
    return [save(fig, out / f"dropout_gap.{fmt}")]
