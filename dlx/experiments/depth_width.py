"""depth_width: at a fixed budget of non-embedding parameters, deeper-narrower against
shallower-wider transformers — final loss against depth and the loss curves, each depth over
several seeds (mean ± sd).

There is no "loss against compute" panel: every member has the same parameters (within 5%) and
sees the same tokens, so its training compute C ≈ 6·N·tokens is the same by design (the column
``train_flops`` of depth_width.csv shows it); loss against compute is the scaling experiment's
question."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from dlx.plots.style import STEP_LABEL, panels, save
from dlx.plots.sweep import curve_stats, draw_band, seeds_note, setting_stats


def compute(run) -> float:
    """Training FLOPs ~ 6 x non-embedding parameters x tokens seen (Kaplan et al. 2020)."""
    s, c = run.summary, run.config
    tokens = s.get("steps", 0) * c["batch_size"] * run.config["dataset"].get("length", 8) * 2
    return 6.0 * (s.get("non_embedding_params") or 0) * tokens


def depth(run) -> int:
    return run.config["model"]["n_layers"]


def rows(runs) -> pd.DataFrame:
    """Per depth (ascending), over its seeds: width, non-embedding parameters, training FLOPs,
    and mean, sd and n of the final validation loss and accuracy."""
    stats = setting_stats(runs, depth, {
        "final_val_loss": lambda r: r.summary["final"].get("val/loss"),
        "final_val_acc": lambda r: r.summary["final"].get("val/acc"),
        "train_flops": compute}).rename(columns={"setting": "depth"})
    first = {depth(r): r for r in reversed(runs)}  # width and parameters do not vary by seed
    stats.insert(1, "width", [first[d].config["model"]["d_model"] for d in stats["depth"]])
    stats.insert(2, "non_embedding_params",
                 [first[d].summary.get("non_embedding_params") for d in stats["depth"]])
    return stats.drop(columns=["train_flops_sd", "train_flops_n"]).sort_values(
        "depth", ignore_index=True)


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    table = rows(runs)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "depth_width.csv", index=False, quoting=csv.QUOTE_MINIMAL)
    budget = runs[0].config.get("param_budget")
    fig, axes = panels(f"depth vs width at ~{budget:,} non-embedding parameters and equal "
                       f"tokens ({seeds_note(table['n'])})", 2)
    axes[0].errorbar(table["depth"], table["final_val_loss_mean"],
                     yerr=table["final_val_loss_sd"].fillna(0), fmt="-o", ms=7, capsize=4)
    for _, r in table.iterrows():
        axes[0].annotate(f"d_model {int(r['width'])}\nN = {int(r['non_embedding_params']):,}",
                         (r["depth"], r["final_val_loss_mean"]), textcoords="offset points",
                         xytext=(6, 4), fontsize=7)
    axes[0].set_xscale("log", base=2)
    axes[0].set_xticks(table["depth"], [str(d) for d in table["depth"]])
    axes[0].set_xlabel("layers (log₂ scale; the width shrinks as depth grows)")
    axes[0].set_ylabel("final validation loss (nats), mean ± sd")
    for i, d in enumerate(table["depth"]):
        curve = curve_stats([r.series("val", "loss") for r in runs if depth(r) == d])
        draw_band(axes[1], curve, color=f"C{i}", log=True, lw=1.4, marker="o", ms=3,
                  label=f"{d} layer{'s' * (d > 1)}, d_model {table['width'][i]}")
    axes[1].set_xlabel(STEP_LABEL + "; dots: where validation was measured")
    axes[1].set_ylabel("validation loss (nats, log scale)")
    axes[1].set_yscale("log")
    axes[1].legend(fontsize=8, title="band ±1 sd over seeds", title_fontsize=8)
    return [save(fig, out / f"depth_width.{fmt}"), out / "depth_width.csv"]
