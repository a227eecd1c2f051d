"""tuning.png: a tuned sweep's sensitivity curves, the monitored metric of each arm's tuning runs
against the tuned setting, each arm's choice starred (see :mod:`dlx.tuning`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dlx.plots.style import SPLIT_NAMES, figure, log_scale_if_wide, save, y_label
from dlx.records.tuning import maximised, read_tuning


def _number(setting: str) -> float | None:
    """The value of a one-key setting (``optimizer.lr=0.01`` -> 0.01), None if not a number."""
    if " " in setting:
        return None
    try:
        return float(setting.partition("=")[2])
    except ValueError:
        return None


def _wide(settings: list[str]) -> bool:
    """Numeric settings spanning more than a decade: a log axis."""
    xs = [_number(s) for s in settings]
    return min(xs) > 0 and max(xs) / min(xs) >= 10


def tuning_figure(sweep_dir: Path, out: Path, fmt: str) -> list[Path]:
    # a learner's arm that ran at its reference's choice has no trials of its own to draw
    rows = [r for r in read_tuning(sweep_dir) if not r["run"].startswith("as ")]
    if not rows:
        return []
    monitor = rows[0]["monitor"]
    metric = monitor.rpartition(":")[2]
    split, _, name = metric.rpartition("/")
    sign = -1.0 if maximised(metric) else 1.0  # objective -> metric
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    numeric = all(_number(s) is not None for s in settings)
    key = settings[0].partition("=")[0] if numeric else "setting"
    seeds = len({r["seed"] for r in rows})
    budget = rows[0].get("budget") or "the members' own"
    fig, ax = figure(f"each arm tuned on its own (★ the setting its runs then used)\n"
                     f"tuning runs: {budget}, {seeds} seed{'s' * (seeds > 1)}"
                     f"{' (mean)' if seeds > 1 else ''}",
                     key + (" (log scale)" if numeric and _wide(settings) else ""),
                     f"{SPLIT_NAMES.get(split, split)} {y_label(name)}\n"
                     f"({monitor.partition(':')[0] or 'best'} of each run)",
                     size=(8.2, 5.0))
    values = []
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = {r["setting"]: r for r in rows if r["arm"] == arm}  # one row per setting suffices
        xs = [_number(s) if numeric else i for i, s in enumerate(settings) if s in mine]
        ys = [sign * mine[s]["mean_objective"] for s in settings if s in mine]
        ys = [y if math.isfinite(y) else np.nan for y in ys]  # failed or diverged: a gap
        values += [y for y in ys if np.isfinite(y)]
        line, = ax.plot(xs, ys, marker="o", lw=1.5, label=arm)
        for x, s in zip(xs, [s for s in settings if s in mine]):
            if mine[s]["chosen"]:
                ax.plot([x], [sign * mine[s]["mean_objective"]], marker="*", ms=16,
                        color=line.get_color(), markeredgecolor="k", zorder=5)
    if numeric:
        if _wide(settings):
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(settings)), settings, rotation=20, ha="right", fontsize=8)
    log_scale_if_wide(ax, values, metric=name)
    ax.legend(title="arm", fontsize=9)
    return [save(fig, out / f"tuning.{fmt}")]
