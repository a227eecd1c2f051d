"""Figures of a sweep: one per metric, every member overlaid and labelled by what differs —
and the statistics over seeds that comparison figures draw: a setting repeated with several
seeds is shown as its mean with ±1 sample standard deviation (a band around a curve, an error
bar on a point or bar), never as one seed's value."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from dlx.errors import UsageError
from dlx.plots.style import (
    SPLIT_NAMES,
    STEP_LABEL,
    figure,
    guarded,
    log_scale_if_wide,
    mark_clip_threshold,
    metric_title,
    save,
    y_label,
)
from dlx.records.files import file_name
from dlx.records.store import Run, differing, mark_learner, sweep_members

log = logging.getLogger("dlx.plots")


def load_members(sweep_dir: Path) -> tuple[list[Run], list[str]]:
    """The members with readable metrics, and a note for each one skipped."""
    runs, skipped = [], []
    for member in sweep_members(sweep_dir):
        run = Run(member)
        try:
            run.summary, run.metrics  # noqa: B018 - read now to report problems per member
        except UsageError as e:
            skipped.append(f"member {member.name} skipped: {e}")
            continue
        if run.metrics.empty:
            skipped.append(f"member {member.name} skipped: no metrics recorded")
            continue
        runs.append(run)
    return runs, skipped


DECIDING = ("optimizer.lr",)  # a setting that decides a comparison: named where it differs


def _with_tuned(runs: list[Run], diffs: list[list[str]]) -> list[list[str]]:
    """``diffs`` with the setting that decides the result: for a tuned sweep's members the
    setting their arm chose (even where every arm chose the same), and the learning rate
    wherever it differs between members without being what they were swept over (each
    optimizer's own default)."""
    from dlx.records.tuning import tuned_keys

    if not runs:
        return diffs
    keys = set(tuned_keys(runs[0].path.parent))
    out = [d + [o for o in r.overrides if o.partition("=")[0] in keys and o not in d]
           for r, d in zip(runs, diffs)]
    for key in DECIDING:
        values = [_select(r.config, key) for r in runs]
        if len({repr(v) for v in values}) > 1:
            out = [d if any(o.partition("=")[0] == key for o in d) else d + [f"{key}={v}"]
                   for d, v in zip(out, values)]
    return out


def _select(config: dict, key: str):
    for part in key.split("."):
        config = config.get(part) if isinstance(config, dict) else None
    return config


def member_labels(runs: list[Run]) -> list[str]:
    diffs = _with_tuned(runs, differing([r.overrides for r in runs]))
    labels = []
    for run, diff in zip(runs, diffs):
        label = ", ".join(mark_learner(diff, run.summary)) or f"member {run.path.name}"
        status = run.summary.get("status")
        if status != "completed":
            label += f" ({status})"
        labels.append(label)
    return labels


def seed_groups(runs: list[Run]) -> list[tuple[str, list[int]]]:
    """Members grouped by what differs between them apart from the seed: (label, indices)."""
    diffs = _with_tuned(runs, differing([[o for o in r.overrides if not o.startswith("seed=")]
                                         for r in runs]))
    groups: dict[str, list[int]] = {}
    for i, diff in enumerate(diffs):  # the learner's code marked: class and file hash
        groups.setdefault(", ".join(mark_learner(diff, runs[i].summary)) or "all", []).append(i)
    return list(groups.items())


def setting_stats(runs: list[Run], by: Callable[[Run], Any],
                  values: dict[str, Callable[[Run], float | None]]) -> pd.DataFrame:
    """Mean, sample sd (n - 1) and count over seeds of each value, per setting.

    ``by(run)`` names a run's setting (anything hashable; a tuple for several keys). One row per
    setting, in the order settings first appear: columns ``setting``, ``n`` (members), then
    ``<name>_mean``, ``<name>_sd``, ``<name>_n`` for each ``values[name](run)`` — computed over
    the members where it is a finite number (None, inf and nan are left out: a run that never
    reached a target, or diverged, counts in ``n`` but not in ``<name>_n``). sd is nan for
    fewer than two values."""
    settings = [by(run) for run in runs]
    order = list(dict.fromkeys(settings))  # a setting may be a tuple: group by its position
    rows = []
    for run, setting in zip(runs, settings):
        row = {"code": order.index(setting)}
        for name, value in values.items():
            v = value(run)
            row[name] = float(v) if v is not None and np.isfinite(v) else np.nan
        rows.append(row)
    groups = pd.DataFrame(rows).groupby("code")
    out = pd.DataFrame({"setting": pd.Series(order, dtype=object).infer_objects(),
                        "n": groups.size().to_numpy()})
    for name in values:
        agg = groups[name].agg(["mean", "std", "count"])
        out[f"{name}_mean"], out[f"{name}_sd"] = agg["mean"].to_numpy(), agg["std"].to_numpy()
        out[f"{name}_n"] = agg["count"].to_numpy().astype(int)
    return out


def curve_stats(series: list[pd.DataFrame], x: str = "step") -> pd.DataFrame:
    """Mean, sample sd and count of several members' curves (``x``, ``value`` rows) at each
    ``x`` any of them logged: columns ``x``, ``mean``, ``sd``, ``n``. Non-finite values (a
    diverged member) are left out of the statistics, not averaged in."""
    table = pd.concat([s.groupby(x)["value"].last() for s in series], axis=1)
    table = table.replace([np.inf, -np.inf], np.nan)
    return pd.DataFrame({x: table.index.to_numpy(), "mean": table.mean(axis=1).to_numpy(),
                         "sd": table.std(axis=1).to_numpy(),
                         "n": table.count(axis=1).to_numpy()})


def draw_band(ax, stats: pd.DataFrame, x: str = "step", color=None, label=None, log=False,
              **line) -> None:
    """A curve's mean over seeds with a ±1 sd band (on a log axis the band is clipped at a
    fraction of the mean, so a wide spread does not reach zero). Points seen by one seed only
    have no band."""
    stats = stats[stats["n"] > 0]
    mean, sd = stats["mean"].to_numpy(), stats["sd"].fillna(0).to_numpy()
    low = np.maximum(mean - sd, 0.1 * mean) if log else mean - sd
    ax.plot(stats[x], mean, color=color, label=label, **line)
    ax.fill_between(stats[x], low, mean + sd, color=color, alpha=0.2, lw=0)


def n_seeds(n: int) -> str:
    """'1 seed', '3 seeds'."""
    return f"{n} seed{'s' * (n != 1)}"


def seeds_note(counts) -> str:
    """'mean ± 1 sd over 3 seeds' for settings of ``counts`` members each (or '2-3 seeds');
    '1 seed, no spread' when no setting has a second seed (a ± there would promise a spread
    that was never measured)."""
    counts = [int(c) for c in counts]
    if max(counts, default=1) <= 1:
        return "1 seed, no spread"
    n = f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
    return f"mean ± 1 sd over {n} seed{'s' * (max(counts) > 1)}"


def overlays(out: Path, runs: list[Run], labels: list[str], name: str, fmt: str,
             notes: list[str] | None = None) -> list[Path]:
    """One figure per split/metric with every member's line — or, when members repeat a
    setting with several seeds, the mean of each setting with a ±1 std band."""
    groups = seed_groups(runs)
    banded = any(len(members) > 1 for _, members in groups)
    keys = []
    for run in runs:
        for key in (run.metrics["split"] + "/" + run.metrics["metric"]).unique():
            if key not in keys:
                keys.append(key)
    notes = [] if notes is None else notes
    written = []
    for key in keys:
        split, metric = key.split("/", 1)
        series = [r.series(split, metric) for r in runs]
        if metric == "lr" and all(s["value"].nunique() <= 1 for s in series):
            continue  # constant learning rates: nothing to see
        written += guarded(notes, f"{split}_{metric}", _overlay, out, runs, labels, name, fmt,
                           split, metric, series, groups, banded)
    return written


def smooth(values: pd.Series, span: int) -> pd.Series:
    """Exponential moving average with bias correction (pandas' adjust=True): readable
    per-step curves without a lag at the start."""
    return values.ewm(span=span, adjust=True).mean()


def _overlay(out, runs, labels, name, fmt, split, metric, series, groups, banded) -> list[Path]:
    # per-mini-batch values are noisy: several of them overlaid are unreadable unless smoothed
    longest = max((len(s) for s in series), default=0)
    span = max(longest // 20, 1) if split == "batch" and longest > 100 else 1
    title = f"{name} sweep: {SPLIT_NAMES.get(split, split)} {metric_title(metric)}"
    if span > 1:
        title += f" (EMA over {span} steps; raw values faint)"
        series = [s.assign(raw=s["value"], value=smooth(s["value"], span)) for s in series]
    fig, ax = figure(title, STEP_LABEL, y_label(metric))
    values = []
    if banded:
        for i, (label, members) in enumerate(groups):
            table = pd.concat([series[m].set_index("step")["value"] for m in members], axis=1)
            mean, std = table.mean(axis=1), table.std(axis=1).fillna(0)
            dashed = {"ls": (0, (4, 3))} if runs[members[0]].summary.get("source") else {}
            ax.plot(mean.index, mean, color=f"C{i % 10}", lw=1.8,
                    label=f"{label} (mean of {len(members)} seeds)", **dashed)
            ax.fill_between(mean.index, mean - std, mean + std, color=f"C{i % 10}", alpha=0.2)
            values.extend(mean.tolist())
    else:
        for i, (run, label, s) in enumerate(zip(runs, labels, series)):
            if s.empty:
                continue
            color = f"C{i % 10}"
            if span > 1:
                ax.plot(s["step"], s["raw"], color=color, lw=0.5, alpha=0.15)
            marker = dict(marker="o", ms=3) if len(s) <= 60 else {}
            # the learner's own code dashed: on top of a reference it matches, both show
            dashed = {"ls": (0, (4, 3))} if run.summary.get("source") else {}
            ax.plot(s["step"], s["value"], color=color, label=label,
                    lw=1.0 if split == "batch" else 1.8, **marker, **dashed)
            if run.summary.get("status") == "diverged":
                finite = s[np.isfinite(s["value"])]
                if not finite.empty:
                    ax.plot(finite["step"].iloc[-1], finite["value"].iloc[-1], "x",
                            color=color, ms=10, mew=2)
            values.extend(s["value"].tolist())
    thresholds = mark_clip_threshold(ax, [r.config for r in runs]) if metric == "grad_norm" \
        else []
    log_scale_if_wide(ax, values, metric=metric)
    finite = [v for v in values + thresholds if np.isfinite(v)]
    if span > 1 and finite:  # the axis follows the smoothed curves, not the raw spikes
        lo, hi = min(finite), max(finite)
        ax.set_ylim(*((lo / 1.3, hi * 1.3) if ax.get_yscale() == "log" and lo > 0
                      else (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))))
    ax.legend(loc="best", fontsize=8, title="differs" + (" (band: ±1 std over seeds)"
                                                      if banded else ""), title_fontsize=8)
    return [save(fig, out / file_name(f"{split}_{metric}.{fmt}"))]
