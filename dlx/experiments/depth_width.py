"""depth_width: at a fixed budget of non-embedding parameters, deeper-narrower against
shallower-wider transformers — final loss against depth and against training compute."""

from __future__ import annotations

import csv
from pathlib import Path

from dlx.plots.style import panels, save


def compute(run) -> float:
    """Training FLOPs ~ 6 x non-embedding parameters x tokens seen (Kaplan et al. 2020)."""
    s, c = run.summary, run.config
    tokens = s.get("steps", 0) * c["batch_size"] * run.config["dataset"].get("length", 8) * 2
    return 6.0 * (s.get("non_embedding_params") or 0) * tokens


def rows(runs) -> list[dict]:
    out = []
    for r in sorted(runs, key=lambda r: r.config["model"]["n_layers"]):
        out.append({"depth": r.config["model"]["n_layers"], "width": r.config["model"]["d_model"],
                    "non_embedding_params": r.summary.get("non_embedding_params"),
                    "final_val_loss": r.summary["final"].get("val/loss"),
                    "final_val_acc": r.summary["final"].get("val/acc"),
                    "train_flops": compute(r), "status": r.summary.get("status")})
    return out


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    table = rows(runs)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "depth_width.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    budget = runs[0].config.get("param_budget")
    fig, axes = panels(f"depth vs width at ~{budget:,} non-embedding parameters", 2)
    depth = [r["depth"] for r in table]
    loss = [r["final_val_loss"] for r in table]
    axes[0].plot(depth, loss, "-o", ms=7)
    for r in table:
        axes[0].annotate(f"d={r['width']}\n{r['non_embedding_params']:,}",
                         (r["depth"], r["final_val_loss"]), textcoords="offset points",
                         xytext=(6, 4), fontsize=7)
    axes[0].set_xscale("log", base=2)
    axes[0].set_xlabel("layers (log₂ scale; the width shrinks as depth grows)")
    axes[0].set_ylabel("final validation loss (nats, log scale)")
    axes[1].plot([r["train_flops"] for r in table], loss, "-o", ms=7)
    for r in table:
        axes[1].annotate(f"{r['depth']} layers", (r["train_flops"], r["final_val_loss"]),
                         textcoords="offset points", xytext=(6, 4), fontsize=7)
    axes[1].set_xlabel("training compute (FLOPs ≈ 6·N·tokens)")
    axes[1].set_ylabel("final validation loss (nats, log scale)")
    for ax in axes:
        ax.set_yscale("log")
    return [save(fig, out / f"depth_width.{fmt}"),
            out / "depth_width.csv"]
