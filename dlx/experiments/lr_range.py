"""lr_range: the learning-rate range test (Smith 2017, "Cyclical learning rates").

The LR grows exponentially each step from ``lr_range.min_lr`` to ``lr_range.max_lr`` over the
run: the ``log_range`` schedule, set in the experiment's config, so config.yaml says what ran.
The test stops when the loss runs away (``divergence_factor`` x the initial loss: that is how
the test is meant to end, so the run counts as completed).

The suggestion is read off the batch losses the way fastai's ``lr_find`` does: smooth them with
a bias-corrected EMA (``lr_range.smoothing``, fastai's 0.98), drop the first
``skip_start`` fraction and the last ``skip_end`` points (start-up noise; the runaway), then
apply each of fastai's four rules (:data:`RULES`): ``minimum`` (a tenth of the LR at the
smoothed minimum), ``steep`` (the steepest fall per unit log LR), ``valley`` (half-way along
the longest decreasing stretch), ``slide`` (the interval slide rule). All four go into
summary.json (``lr_range.rules``) and the figure; ``lr_range.rule`` names *the* suggestion
(``lr_range.suggested_lr``). The default is ``minimum``: on this task it is the seed-robust one
(within 3x of the best constant LR of a 7-LR x 3-seed sweep, 0.11, in 40 of 40 seeds; 0.12
x/÷ 1.5 over seeds). The others miss here: ``steep`` (this experiment's rule before) follows the
noise of the long flat start and lands anywhere from 3e-5 to 1; ``valley`` reads half-way along
a fall that starts at 1e-4, so 0.02; ``slide`` stops next to the runaway, at ~1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlx.errors import UsageError
from dlx.plots.style import figure, save, y_label
from dlx.training import train

GENERIC_RUN_PLOTS = False  # the run's loss against the step says nothing at a moving LR


def validate(cfg) -> None:
    c = cfg.get("lr_range") or {}
    lo, hi = c.get("min_lr"), c.get("max_lr")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi))
    if not (numbers and 0 < lo < hi):
        raise UsageError(f"lr_range needs 0 < min_lr < max_lr, got {lo!r}, {hi!r}")
    if not (isinstance(c.get("smoothing"), (int, float)) and 0 <= c["smoothing"] < 1):
        raise UsageError(f"lr_range.smoothing must be in [0, 1), got {c.get('smoothing')!r}")
    if c.get("rule") not in RULES:
        raise UsageError(f"lr_range.rule must be one of {', '.join(RULES)}, got {c.get('rule')!r}")
    if not (isinstance(c.get("skip_start"), (int, float)) and 0 <= c["skip_start"] < 0.5):
        raise UsageError(f"lr_range.skip_start must be a fraction in [0, 0.5), got "
                         f"{c.get('skip_start')!r}")
    if not (isinstance(c.get("skip_end"), int) and c["skip_end"] >= 0):
        raise UsageError(f"lr_range.skip_end must be an integer >= 0, got {c.get('skip_end')!r}")


def smooth(values: np.ndarray, beta: float) -> np.ndarray:
    """Bias-corrected exponential moving average (as fastai's Recorder smooths the loss):
    a_t = beta a_{t-1} + (1 - beta) x_t, a_0 = 0; out_t = a_t / (1 - beta^t)."""
    out, avg = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        out[i] = avg / (1 - beta ** (i + 1))
    return out


def minimum(lrs: np.ndarray, s: np.ndarray) -> float:
    """A tenth of the LR where the smoothed loss is lowest: a safety margin below the edge."""
    return float(lrs[int(np.argmin(s))] / 10)


def steep(lrs: np.ndarray, s: np.ndarray) -> float:
    """Where the smoothed loss falls fastest per unit of log(lr) (forward differences)."""
    return float(lrs[int(np.argmin(np.diff(s) / np.diff(np.log(lrs))))])


def valley(lrs: np.ndarray, s: np.ndarray) -> float:
    """Half-way (in steps, i.e. in log lr) along the longest decreasing subsequence of the
    smoothed loss: a long stretch of progress, robust to bumps a contiguous run would stop at."""
    length = np.ones(len(s), dtype=int)  # longest decreasing subsequence ending at i
    for i in range(1, len(s)):
        before = s[:i] > s[i]
        if before.any():
            length[i] = length[:i][before].max() + 1
    end = int(np.argmax(length))
    start = end - length[end] + 1
    third = (end - start) / 3
    return float(lrs[start + int(third) + int(third / 2)])


def slide(lrs: np.ndarray, s: np.ndarray, lr_diff: int = 15, thresh: float = 0.005) -> float:
    """Interval slide rule: walk a window of ``lr_diff`` points left from the end while the
    per-step slope at its two ends differs by more than ``thresh``; the LR at its left end."""
    grad = np.gradient(s)
    right, left = len(s) - 1, len(s) - 1 - lr_diff
    found = lrs[max(left, 0)]
    while left >= 0 and abs(grad[right] - grad[left]) > thresh:
        found = lrs[left]
        right, left = right - 1, left - 1
    return float(found)


RULES = {"minimum": minimum, "steep": steep, "valley": valley, "slide": slide}
WHAT = {"minimum": "smoothed minimum / 10", "steep": "steepest fall", "valley": "mid-valley",
        "slide": "slide rule"}  # legend text


def suggest(lrs: np.ndarray, losses: np.ndarray, beta: float, rule: str = "minimum",
            skip_start: float = 0.1, skip_end: int = 5) -> dict:
    """Every rule's LR on the smoothed, trimmed curve, and the chosen rule's as the suggestion.

    Args:
        lrs, losses: the LR and mini-batch loss of each step, up to (not including) the runaway.
        beta: EMA factor of the smoothing.
        rule: the rule whose LR is ``suggested_lr``.
        skip_start: fraction of the first points dropped; skip_end: points dropped at the end.
    """
    s = smooth(losses, beta)
    keep = slice(int(len(s) * skip_start), len(s) - skip_end)
    x, y = lrs[keep], s[keep]
    if len(x) < 3:  # the loss ran away at once: nothing to read
        return {"suggested_lr": None, "rule": rule, "rules": {}, "min_loss_lr": None}
    rules = {name: fn(x, y) for name, fn in RULES.items()}
    return {"suggested_lr": rules[rule], "rule": rule, "rules": rules,
            "min_loss_lr": float(x[int(np.argmin(y))])}


def run(cfg, rec, run_dir: Path):
    """Train with the range schedule the config names (optimizer.lr = min_lr, schedule log_range
    to max_lr), then read the suggestions off the recorded batch losses."""
    result = train(cfg, rec, cfg["progress"], run_dir)
    loss = np.array([v for _, v in rec.series("batch/loss")])
    lrs = np.array([v for _, v in rec.series("batch/lr")])
    stop = result.diverged_at_step
    upto = stop - 1 if stop else len(lrs)  # the runaway step itself is not a candidate
    c = cfg["lr_range"]
    found = suggest(lrs[:upto], loss[:upto], c["smoothing"], c["rule"], c["skip_start"],
                    c["skip_end"])
    result.extra["lr_range"] = {**found, "stopped_at_step": stop,
                                "stopped_at_lr": float(lrs[stop - 1]) if stop else None,
                                "reason": result.diverged_reason}
    result.diverged_at_step, result.diverged_reason = None, None  # how the test ends
    return result


def report_numbers(run) -> dict:
    info = run.summary.get("lr_range") or {}
    out = {f"lr by rule '{name}'" + (" (the suggestion)" if name == info.get("rule") else ""): lr
           for name, lr in (info.get("rules") or {}).items()}
    if info.get("stopped_at_lr"):
        out["lr where the loss ran away"] = info["stopped_at_lr"]
    return out


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    info = run.summary.get("lr_range", {})
    c = run.config["lr_range"]
    loss = run.series("batch", "loss")
    lr = run.series("batch", "lr").set_index("step")["value"]
    x = lr.loc[loss["step"]].to_numpy()
    y = loss["value"].to_numpy()
    fig, ax = figure(f"LR range test (Smith 2017), {run.config['optimizer']['name']}, seed "
                     f"{run.config['seed']}:\nloss as the LR grows each step, and where each "
                     "of fastai's rules reads it",
                     "learning rate (log scale)", "mini-batch " + y_label("loss") + " (log scale)")
    ax.plot(x, y, color="tab:gray", lw=0.8, alpha=0.5, label="batch loss")
    finite = np.isfinite(y)
    xs, ys = x[finite], smooth(y[finite], c["smoothing"])
    ax.plot(xs, ys, color="tab:blue", lw=2, label=f"smoothed (bias-corrected EMA, β = "
                                                    f"{c['smoothing']:g})")
    start = int(len(xs) * c["skip_start"])
    ax.axvspan(xs[0], xs[start], color="0.9", zorder=0, label="skipped by the rules (start)")
    for (name, value), colour, marker in zip((info.get("rules") or {}).items(),
                                             ("tab:green", "tab:purple", "tab:orange",
                                              "tab:brown"), "o^sD"):
        chosen = name == info.get("rule")
        ax.plot(value, np.interp(np.log(value), np.log(xs), ys), marker, color=colour,
                ms=11 if chosen else 8, mec="black" if chosen else colour, mew=1.5,
                label=f"{name} ({WHAT[name]}): lr {value:.3g}" + ("  ← the suggestion" if chosen else ""),
                zorder=5)
    if info.get("min_loss_lr"):
        ax.plot(info["min_loss_lr"], np.interp(np.log(info["min_loss_lr"]), np.log(xs), ys), "x",
                color="black", ms=9, label=f"smoothed minimum: lr {info['min_loss_lr']:.3g}")
    if info.get("stopped_at_lr"):
        ax.axvline(info["stopped_at_lr"], color="tab:red", lw=1.2,
                   label=f"stopped: loss ran away at lr {info['stopped_at_lr']:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=8, loc="lower left")
    return [save(fig, out / f"lr_range.{fmt}")]
