"""regularization: L1 / L2 / elastic net along lambda — the regularization path (validation
accuracy, sparsity, weight norm and the training objective against lambda, mean ± sd over
seeds), and the weight histograms.

The objective is what the regularized training minimizes: the training set's mean data loss
at the final weights plus the penalty at those weights. Its reference is the all-zero net
(every weight and bias zero: uniform predictions, loss ln(classes), no penalty): a path whose
objective climbs to that value is over-regularized.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dlx.assemble import build_regularizer
from dlx.nn.core import Parameter
from dlx.plots.style import log_scale_if_wide, panels, save
from dlx.records.files import MODEL

ZERO = 1e-6  # |w| below this counts as zero (the proximal step puts weights exactly at 0)
ACC_COST = 0.01  # the weight histograms show the strongest lambda losing less accuracy than this


def _arrays(run) -> dict[str, np.ndarray]:
    with np.load(run.path / MODEL, allow_pickle=False) as arrays:
        return {k: arrays[k] for k in arrays.files}


def weights(run) -> np.ndarray:
    """All weights (no biases) of the run's final model, flattened."""
    return np.concatenate([v.ravel() for k, v in _arrays(run).items() if k.endswith(".W")])


def sparsity(run) -> float:
    w = weights(run)
    return float((np.abs(w) < ZERO).mean())


def penalty(run) -> float:
    """The run's own penalty at its final weights (biases are never penalized)."""
    params = [Parameter(v.astype(np.float64), k, decay=k.endswith(".W"))
              for k, v in _arrays(run).items()]
    return build_regularizer(run.config["regularizer"]).penalty(params)


def objective(run) -> float:
    """Training-set data loss at the final weights + the penalty there."""
    return run.summary["final"]["train/loss"] + penalty(run)


def zero_objective(run) -> float:
    """The all-zero net's objective: every logit 0, so ln(classes) (ln 2 for one logit)."""
    biases = [v for k, v in _arrays(run).items() if k.endswith(".b")]
    return math.log(max(biases[-1].size, 2))


def report_numbers(run) -> dict:
    if not (run.path / MODEL).is_file():
        return {}
    return {f"fraction of weights with |w| < {ZERO:g}": sparsity(run),
            "penalty at the final weights": penalty(run),
            "objective (train loss + penalty)": objective(run),
            "objective of the all-zero net": zero_objective(run)}


def _lam(run) -> float:
    return run.config["regularizer"]["lam"]


def path_table(runs) -> list[dict]:
    """One row per (regularizer, lambda): mean and sd over the seeds of each quantity."""
    measures = {"val_acc": lambda r: r.summary["final"]["val/acc"], "zeros": sparsity,
                "weight_norm": lambda r: r.summary["final"]["model/weight_norm"],
                "objective": objective}
    groups: dict[tuple[str, float], list] = {}
    for r in runs:
        groups.setdefault((r.config["regularizer"]["name"], _lam(r)), []).append(r)
    rows = []
    for (kind, lam), members in groups.items():
        row = {"regularizer": kind, "lam": lam, "seeds": len(members)}
        for name, fn in measures.items():
            values = np.array([fn(r) for r in members])
            row[f"{name}_mean"] = float(values.mean())
            row[f"{name}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    import pandas as pd

    out = sweep_dir / "plots" if out is None else out
    runs = [r for r in runs if (r.path / MODEL).is_file()]
    table = pd.DataFrame(path_table(runs)).sort_values(["regularizer", "lam"])
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "regularization_path.csv", index=False, float_format="%.6g")
    kinds = list(dict.fromkeys(r.config["regularizer"]["name"] for r in runs))
    lams = sorted(table["lam"].unique())
    floor = min((lam for lam in lams if lam > 0), default=1e-4) / 10  # where lambda = 0 is drawn
    seeds = int(table["seeds"].min())
    fig, axes = panels(f"regularization path: final values, mean ± sd over {seeds} seeds",
                       4, size=(20, 4.8))
    panel = {"val_acc": "validation accuracy (fraction correct)",
             "zeros": f"fraction of weights with |w| < {ZERO:g}",
             "weight_norm": "weight norm ‖w‖₂ (biases excluded)",
             "objective": "train loss + penalty at the final weights (nats)"}
    for i, kind in enumerate(kinds):
        rows = table[table["regularizer"] == kind]
        x = np.maximum(rows["lam"].to_numpy(), floor) * 1.1**i  # side by side, not on top
        for ax, name in zip(axes, panel):
            ax.errorbar(x, rows[f"{name}_mean"], yerr=rows[f"{name}_sd"], fmt="-o", ms=4,
                        capsize=3, color=f"C{i}", label=kind)
    axes[3].axhline(zero_objective(runs[0]), color="black", ls="--", lw=1,
                    label="all-zero net (ln 10)")
    ticks = [floor, *(lam for lam in lams if lam > 0)]
    for ax, label in zip(axes, panel.values()):
        ax.set_xscale("log")
        ax.set_xticks(ticks, ["0", *(f"{t:g}" for t in ticks[1:])])
        ax.set_xlabel("λ (log scale; 0 = no regularization)")
        ax.set_ylabel(label)
        ax.legend(fontsize=9)
    log_scale_if_wide(axes[2], table["weight_norm_mean"])
    if axes[2].get_yscale() == "log" and (table["weight_norm_mean"] == 0).any():
        axes[2].set_title("a norm of 0 (every weight zero) is off the log axis", fontsize=9)
    log_scale_if_wide(axes[3], [*table["objective_mean"], zero_objective(runs[0])])
    written = [out / "regularization_path.csv", save(fig, out / f"regularization_path.{fmt}")]

    fig, axes = panels("weight histograms at each regularizer's strongest λ that costs less than "
                       f"{ACC_COST:g} of mean validation accuracy, and at λ = 0 (first seed)",
                       len(kinds), size=(5.5 * len(kinds), 4.4))
    first = min(r.config["seed"] for r in runs)
    for ax, kind in zip(np.atleast_1d(axes), kinds):
        rows = table[table["regularizer"] == kind]
        free = rows[rows["val_acc_mean"] > rows["val_acc_mean"].iloc[0] - ACC_COST]  # lam sorted
        best = float(free["lam"].max())
        for lam, color in ((0.0, "tab:gray"), (best, "tab:blue")):
            match = [r for r in runs if r.config["regularizer"]["name"] == kind
                     and _lam(r) == lam and r.config["seed"] == first]
            if match:
                w = weights(match[0])
                ax.hist(w, bins=101, range=(-0.15, 0.15), color=color, alpha=0.6, log=True,
                        label=f"λ = {lam:g}: {(np.abs(w) < ZERO).mean():.0%} with |w| < {ZERO:g}")
        ax.set_title(kind, fontsize=10)
        ax.set_xlabel("weight value")
        ax.set_ylabel("count (log scale)")
        ax.legend(fontsize=8)
    written.append(save(fig, out / f"weight_histograms.{fmt}"))
    return written
