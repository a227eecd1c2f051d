"""batchnorm_batch: BatchNorm against LayerNorm at batch sizes 5, 10 and 50 (the batchnorm
experiment's net, recordings and run; only the sweep's figure is its own).

BN normalizes each unit by the mean and variance of its mini-batch in training,
    y_i = gamma (x_i - mean_B x) / sqrt(var_B x + eps) + beta,
and by running averages of them in eval. With B = 5 those statistics are estimated from 5
values: every example's output depends on the 4 others (noise), and the running averages the
network is scored with in eval are not what it trained with (mismatch). LN normalizes each
example over its own features, the same in training and eval, whatever B. The figure shows the
validation accuracy in eval mode and with batch statistics (the validation set in chunks of B),
their largest logit difference, and the learning curves, by batch size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import NullLocator

from dlx.experiments.batchnorm import (  # noqa: F401 - the experiment's hooks are batchnorm's
    COLORS,
    NAMES,
    grid,
    norm_of,
    plot_run,
    report_numbers,
    run,
    validate,
)
from dlx.plots.style import save
from dlx.plots.sweep import curve_stats, draw_band, seeds_note, setting_stats

FLOOR = 1e-9  # identical modes (LayerNorm) have a difference of ~0: drawn at the floor


def _info(r, key: str) -> float | None:
    return (r.summary.get("batchnorm") or {}).get(key)


def batch_table(runs):
    """Per (norm, batch size), sorted: mean, sd, n over seeds of the validation accuracy in eval
    mode (``acc_eval``) and with batch statistics (``acc_batch``), their difference, the
    largest logit difference between the modes on the validation set (``max_diff``), and the
    final training loss (eval mode, ``train_loss``)."""
    stats = setting_stats(runs, lambda r: (norm_of(r), r.config["batch_size"]), {
        "acc_eval": lambda r: _info(r, "val_acc_eval"),
        "acc_batch": lambda r: _info(r, "val_acc_batch_stats"),
        "acc_gap": lambda r: _info(r, "val_acc_batch_stats") - _info(r, "val_acc_eval")
        if _info(r, "val_acc_eval") is not None else None,
        "max_diff": lambda r: _info(r, "val_max_abs_logit_diff"),
        "train_loss": lambda r: r.summary.get("final", {}).get("train/loss")})
    stats.insert(0, "norm", [s[0] for s in stats["setting"]])
    stats.insert(1, "batch_size", [s[1] for s in stats["setting"]])
    return stats.drop(columns="setting").sort_values(["norm", "batch_size"], ignore_index=True)


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    table = batch_table(runs)
    norms = [n for n in NAMES if n in set(table["norm"])]
    m = runs[0].config["model"]
    fig, axes = grid(f"BatchNorm against LayerNorm by batch size: {len(m['hidden'])}×"
                       f"{m['hidden'][0]} ReLU MLP, {runs[0].config['dataset'].get('subset')} "
                       f"MNIST images, {runs[0].config['epochs']} epochs, init N(0, "
                       f"{runs[0].config['init']['std']:g}²) ({seeds_note(table['n'])})", 2, 2,
                      (13, 9.5))
    axes = axes.ravel()
    for norm in norms:
        t = table[table["norm"] == norm]
        b, c = t["batch_size"].to_numpy(), COLORS[norm]
        running = " (running statistics)" if norm == "batchnorm" else ""
        for column, ls, what in (("acc_eval", "-o", "eval mode" + running),
                                 ("acc_batch", "--s", "training mode (chunks of B)")):
            axes[0].errorbar(b, t[f"{column}_mean"], yerr=t[f"{column}_sd"].fillna(0), fmt=ls,
                             color=c, capsize=3, label=f"{NAMES[norm]}, {what}")
        axes[1].errorbar(b, np.maximum(t["max_diff_mean"], FLOOR), yerr=t["max_diff_sd"].fillna(0),
                         fmt="-o", color=c, capsize=3, label=NAMES[norm] + (
                             " (float32 round-off only)" if norm == "layernorm" else ""))
        axes[2].errorbar(b, t["train_loss_mean"], yerr=t["train_loss_sd"].fillna(0), fmt="-o",
                         color=c, capsize=3, label=NAMES[norm])
        for batch, ls in zip(sorted(set(b)), (":", "--", "-")):
            members = [r for r in runs if norm_of(r) == norm and r.config["batch_size"] == batch]
            draw_band(axes[3], curve_stats([r.series("val", "acc") for r in members], "epoch"),
                      "epoch", color=c, ls=ls, label=f"{NAMES[norm]}, B = {batch}")
    axes[0].set_ylabel("final validation accuracy (fraction correct)")
    axes[1].set_ylabel(f"max |logit, batch statistics − eval mode|\n(validation set, log scale; "
                       f"{FLOOR:g} = identical)")
    axes[1].set_yscale("log")
    axes[2].set_ylabel("final training loss, eval mode (nats, log scale)")
    axes[2].set_yscale("log")
    for ax in axes[:3]:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())  # only the batch sizes themselves are labelled
        ax.set_xticks(sorted(set(table["batch_size"])), [str(b) for b in
                                                         sorted(set(table["batch_size"]))])
        ax.set_xlabel("batch size B (log scale)")
    axes[3].set_xlabel("epoch")
    axes[3].set_ylabel("validation accuracy, eval mode (fraction correct)")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return [save(fig, out / f"batchnorm_batch_size.{fmt}")]
