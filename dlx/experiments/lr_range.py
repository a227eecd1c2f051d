"""lr_range: the learning-rate range test (Smith 2017, "Cyclical learning rates").

The LR grows exponentially each step from ``lr_range.min_lr`` to ``lr_range.max_lr`` over the
run: the ``log_range`` schedule, set in the experiment's config, so config.yaml says what ran.
The test stops when the loss runs away (``divergence_factor`` x the initial loss: that is how
the test is meant to end, so the run counts as completed). Loss against LR on log axes; the
suggested LR is where the smoothed loss falls fastest per decade of LR, below the divergence.
It is saved in summary.json (``lr_range.suggested_lr``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlx.errors import UsageError
from dlx.plots.style import figure, save, y_label
from dlx.training import train


def validate(cfg) -> None:
    c = cfg.get("lr_range") or {}
    lo, hi = c.get("min_lr"), c.get("max_lr")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi))
    if not (numbers and 0 < lo < hi):
        raise UsageError(f"lr_range needs 0 < min_lr < max_lr, got {lo!r}, {hi!r}")
    if not (isinstance(c.get("smoothing"), (int, float)) and 0 <= c["smoothing"] < 1):
        raise UsageError(f"lr_range.smoothing must be in [0, 1), got {c.get('smoothing')!r}")


def smooth(values: np.ndarray, beta: float) -> np.ndarray:
    """Bias-corrected exponential moving average (as fastai's LR finder)."""
    out, avg = np.empty_like(values), 0.0
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        out[i] = avg / (1 - beta ** (i + 1))
    return out


def suggest(lrs: np.ndarray, losses: np.ndarray, beta: float) -> dict:
    """Steepest descent of the smoothed loss against log10(lr), before its minimum."""
    s = smooth(losses, beta)
    lowest = int(np.argmin(s))
    if lowest < 2:
        return {"suggested_lr": None, "min_loss_lr": float(lrs[lowest])}
    slope = np.gradient(s[: lowest + 1], np.log10(lrs[: lowest + 1]))
    steepest = int(np.argmin(slope))
    return {"suggested_lr": float(lrs[steepest]), "min_loss_lr": float(lrs[lowest]),
            "steepest_slope_per_decade": float(slope[steepest])}


def run(cfg, rec, run_dir: Path):
    """Train with the range schedule the config names (optimizer.lr = min_lr, schedule log_range
    to max_lr), then read the suggestion off the recorded batch losses."""
    result = train(cfg, rec, cfg["progress"], run_dir)
    loss = np.array([v for _, v in rec.series("batch/loss")])
    lrs = np.array([v for _, v in rec.series("batch/lr")])
    stop = result.diverged_at_step
    upto = stop - 1 if stop else len(lrs)  # the runaway step itself is not a candidate
    found = suggest(lrs[:upto], loss[:upto], cfg["lr_range"]["smoothing"])
    result.extra["lr_range"] = {**found, "stopped_at_step": stop,
                                "stopped_at_lr": float(lrs[stop - 1]) if stop else None,
                                "reason": result.diverged_reason}
    result.diverged_at_step, result.diverged_reason = None, None  # how the test ends
    return result


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    info = run.summary.get("lr_range", {})
    loss = run.series("batch", "loss")
    lr = run.series("batch", "lr").set_index("step")["value"]
    x = lr.loc[loss["step"]].to_numpy()
    y = loss["value"].to_numpy()
    fig, ax = figure("LR range test (Smith 2017): loss as the learning rate grows each step",
                     "learning rate (log scale)", "mini-batch " + y_label("loss") + " (log scale)")
    ax.plot(x, y, color="tab:gray", lw=0.8, alpha=0.6, label="batch loss")
    finite = np.isfinite(y)
    ax.plot(x[finite], smooth(y[finite], run.config["lr_range"]["smoothing"]), color="tab:blue",
            lw=2, label="smoothed (EMA)")
    if info.get("suggested_lr"):
        ax.axvline(info["suggested_lr"], color="tab:green", ls="--", lw=1.5,
                   label=f"suggested lr {info['suggested_lr']:.3g} (steepest descent)")
    if info.get("min_loss_lr"):
        ax.axvline(info["min_loss_lr"], color="tab:orange", ls=":", lw=1.5,
                   label=f"minimum of the smoothed loss at lr {info['min_loss_lr']:.3g}")
    if info.get("stopped_at_lr"):
        ax.axvline(info["stopped_at_lr"], color="tab:red", lw=1.2,
                   label=f"stopped: loss ran away at lr {info['stopped_at_lr']:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return [save(fig, out / f"lr_range.{fmt}")]
