"""Figures of a sweep: one per metric, every member overlaid and labelled by what differs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dlx.errors import UsageError
from dlx.plots.style import (
    SPLIT_NAMES,
    STEP_LABEL,
    figure,
    guarded,
    log_scale_if_wide,
    metric_title,
    save,
    y_label,
)
from dlx.records.store import Run, differing, sweep_members

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


def member_labels(runs: list[Run]) -> list[str]:
    diffs = differing([r.overrides for r in runs])
    labels = []
    for run, diff in zip(runs, diffs):
        label = ", ".join(diff) or f"member {run.path.name}"
        status = run.summary.get("status")
        if status != "completed":
            label += f" ({status})"
        labels.append(label)
    return labels


def seed_groups(runs: list[Run]) -> list[tuple[str, list[int]]]:
    """Members grouped by what differs between them apart from the seed: (label, indices)."""
    diffs = differing([[o for o in r.overrides if not o.startswith("seed=")] for r in runs])
    groups: dict[str, list[int]] = {}
    for i, diff in enumerate(diffs):
        groups.setdefault(", ".join(diff) or "all", []).append(i)
    return list(groups.items())


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


def _overlay(out, runs, labels, name, fmt, split, metric, series, groups, banded) -> list[Path]:
    fig, ax = figure(f"{name} sweep: {SPLIT_NAMES.get(split, split)} {metric_title(metric)}",
                     STEP_LABEL, y_label(metric))
    values = []
    if banded:
        for i, (label, members) in enumerate(groups):
            table = pd.concat([series[m].set_index("step")["value"] for m in members], axis=1)
            mean, std = table.mean(axis=1), table.std(axis=1).fillna(0)
            ax.plot(mean.index, mean, color=f"C{i % 10}", lw=1.8,
                    label=f"{label} (mean of {len(members)} seeds)")
            ax.fill_between(mean.index, mean - std, mean + std, color=f"C{i % 10}", alpha=0.2)
            values.extend(mean.tolist())
    else:
        for i, (run, label, s) in enumerate(zip(runs, labels, series)):
            if s.empty:
                continue
            color = f"C{i % 10}"
            marker = dict(marker="o", ms=3) if len(s) <= 60 else {}
            ax.plot(s["step"], s["value"], color=color, label=label,
                    lw=1.0 if split == "batch" else 1.8, **marker)
            if run.summary.get("status") == "diverged":
                finite = s[np.isfinite(s["value"])]
                if not finite.empty:
                    ax.plot(finite["step"].iloc[-1], finite["value"].iloc[-1], "x",
                            color=color, ms=10, mew=2)
            values.extend(s["value"].tolist())
    log_scale_if_wide(ax, values)
    ax.legend(loc="best", fontsize=8, title="differs" + (" (band: ±1 std over seeds)"
                                                      if banded else ""), title_fontsize=8)
    return [save(fig, out / f"{split}_{metric}.{fmt}")]
