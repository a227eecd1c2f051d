"""Figures for a run or a sweep directory, written into ``PATH/plots/`` (or ``out``)."""

from __future__ import annotations

import logging
from pathlib import Path

from dlx.errors import UsageError
from dlx.plots.style import FORMATS
from dlx.records.store import check_dir, is_sweep, load_run

log = logging.getLogger("dlx.plots")


def plot_path(path: str | Path, fmt: str = "png", notes: list[str] | None = None,
              out: str | Path | None = None) -> list[Path]:
    """Draw ``path`` (a run or a sweep) into ``out`` (default ``path/plots``); return the files
    written.

    Each figure is drawn on its own: one that raises is skipped and a line
    ``skipped figure NAME: ExcType: message`` is appended to ``notes`` (members of a sweep that
    cannot be read are noted too); without ``notes`` those lines are logged as warnings. Raises
    only :class:`UsageError`: an unknown format, a path that is not a run or sweep, a corrupt
    file, or an output folder that cannot be written — all checked before any figure is drawn.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r} (valid: {', '.join(FORMATS)})")
    path = check_dir(path)
    sink: list[str] = notes if notes is not None else []
    target = Path(out) if out is not None else path / "plots"
    if is_sweep(path):
        from dlx.plots.sweep import load_members, plot_sweep

        runs, skipped = load_members(path)
        if not runs:
            raise UsageError(f"{path}: no member of this sweep has metrics to plot"
                             + (f" ({'; '.join(skipped)})" if skipped else ""))
        _check_out(target, out)
        sink.extend(skipped)
        written = plot_sweep(path, fmt, target, sink, runs)
    else:
        from dlx.plots.run import plot_run

        run = load_run(path)
        run.config, run.metrics  # noqa: B018 - fail on a corrupt file before writing anything
        if run.metrics.empty:
            raise UsageError(f"{path}: metrics.csv has no rows yet (nothing to plot)")
        _check_out(target, out)
        written = plot_run(run, fmt, target, sink)
    if notes is None:
        for note in sink:
            log.warning(note)
    return written


def _check_out(target: Path, out) -> None:
    from dlx.writable import check_dir as writable

    writable(target, hint="" if out is not None else "use --out DIR")
