"""regularization: L1 / L2 / elastic net along lambda — the regularization path (validation
accuracy and sparsity against lambda), the weight histograms, and the weight norm."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlx.plots.style import panels, save
from dlx.records.files import MODEL

ZERO = 1e-6  # |w| below this counts as zero (the proximal step puts weights exactly at 0)


def weights(run) -> np.ndarray:
    """All weights (no biases) of the run's final model, flattened."""
    with np.load(run.path / MODEL, allow_pickle=False) as arrays:
        return np.concatenate([arrays[k].ravel() for k in arrays.files if k.endswith(".W")])


def sparsity(run) -> float:
    w = weights(run)
    return float((np.abs(w) < ZERO).mean())


def report_numbers(run) -> dict:
    if not (run.path / MODEL).is_file():
        return {}
    return {f"fraction of weights with |w| < {ZERO:g}": sparsity(run)}


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    runs = [r for r in runs if (r.path / MODEL).is_file()]
    kinds = list(dict.fromkeys(r.config["regularizer"]["name"] for r in runs))
    lams = sorted({r.config["regularizer"]["lam"] for r in runs})
    floor = min((lam for lam in lams if lam > 0), default=1e-4) / 10  # where lambda = 0 is drawn
    fig, axes = panels("regularization path (λ = 0, no regularization, drawn at the left edge)",
                       3, size=(16, 4.6))
    for i, kind in enumerate(kinds):
        members = sorted((r for r in runs if r.config["regularizer"]["name"] == kind),
                         key=lambda r: r.config["regularizer"]["lam"])
        x = [max(r.config["regularizer"]["lam"], floor) for r in members]
        axes[0].plot(x, [r.summary["final"]["val/acc"] for r in members], "-o", color=f"C{i}",
                     label=kind)
        axes[1].plot(x, [sparsity(r) for r in members], "-o", color=f"C{i}", label=kind)
        axes[2].plot(x, [r.summary["final"]["model/weight_norm"] for r in members], "-o",
                     color=f"C{i}", label=kind)
    axes[0].set_ylabel("validation accuracy")
    axes[1].set_ylabel(f"fraction of weights with |w| < {ZERO:g}")
    axes[2].set_ylabel("weight norm ‖w‖₂")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("λ (log scale)")
        ax.legend(fontsize=9)
    written = [save(fig, out / f"regularization_path.{fmt}")]

    top = max(lams)
    fig, axes = panels(f"weight histograms at λ = {top:g} (and without regularization)",
                       len(kinds), size=(5.5 * len(kinds), 4.4))
    for ax, kind in zip(np.atleast_1d(axes), kinds):
        for lam, color in ((0.0, "tab:gray"), (top, "tab:blue")):
            match = [r for r in runs if r.config["regularizer"]["name"] == kind
                     and r.config["regularizer"]["lam"] == lam]
            if match:
                w = weights(match[0])
                ax.hist(w, bins=101, range=(-0.15, 0.15), color=color, alpha=0.6, log=True,
                        label=f"λ = {lam:g}: {(np.abs(w) < ZERO).mean():.0%} zero")
        ax.set_title(kind, fontsize=10)
        ax.set_xlabel("weight value")
        ax.set_ylabel("count (log scale)")
        ax.legend(fontsize=8)
    written.append(save(fig, out / f"weight_histograms.{fmt}"))
    return written
