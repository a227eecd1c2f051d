"""Figures for a run or a sweep directory, written into ``PATH/plots/``."""

from __future__ import annotations

from pathlib import Path

from dlx.errors import UsageError
from dlx.plots.style import FORMATS
from dlx.records.store import check_dir, is_sweep, load_run


def plot_path(path: str | Path, fmt: str = "png", notes: list[str] | None = None) -> list[Path]:
    """Draw ``path`` (a run or a sweep); return the files written. Members skipped in a sweep
    are appended to ``notes``. Inputs are read and checked before any figure is written."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r} (valid: {', '.join(FORMATS)})")
    path = check_dir(path)
    if is_sweep(path):
        from dlx.plots.sweep import plot_sweep

        written, skipped = plot_sweep(path, fmt)
        if notes is not None:
            notes.extend(skipped)
        return written
    from dlx.plots.run import plot_run

    run = load_run(path)
    run.config, run.metrics  # noqa: B018 - fail on a corrupt file before writing anything
    if run.metrics.empty:
        raise UsageError(f"{path}: metrics.csv has no rows yet (nothing to plot)")
    return plot_run(run, fmt)
