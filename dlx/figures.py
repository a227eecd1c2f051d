"""Which figures a run or a sweep gets: the generic ones (:mod:`dlx.plots`) and those of its
experiment (:mod:`dlx.experiments`), written into ``PATH/plots/`` (or ``out``).

The one module above both: plots/ draws, experiments/ add their own, and neither looks the
other up."""

from __future__ import annotations

import logging
from pathlib import Path

from dlx.errors import UsageError
from dlx.plots.style import FORMATS
from dlx.records.files import TUNING
from dlx.records.store import Run, check_dir, is_sweep, load_run

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
        from dlx.plots.sweep import load_members

        runs, skipped = load_members(path)
        if not runs:
            raise UsageError(f"{path}: no member of this sweep has metrics to plot"
                             + (f" ({'; '.join(skipped)})" if skipped else ""))
        _check_out(target, out)
        sink.extend(skipped)
        written = plot_sweep(path, fmt, target, sink, runs)
    else:
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


def plot_run(run, fmt: str = "png", out: Path | None = None,
             notes: list[str] | None = None) -> list[Path]:
    """The run's figures into ``out`` (default ``run.path/plots``), each drawn on its own: one
    that raises is skipped with a note in ``notes`` (see :func:`dlx.plots.style.guarded`)."""
    from dlx.experiments import experiment_of, hooks
    from dlx.plots.run import decision_boundary, metric_figures, regression_fit, regression_units
    from dlx.plots.style import guarded

    out = run.path / "plots" if out is None else Path(out)
    notes = [] if notes is None else notes
    name = experiment_of(run.config) or run.config.get("name")
    module = hooks(experiment_of(run.config))
    written = []
    if getattr(module, "GENERIC_RUN_PLOTS", True):
        written += metric_figures(run, out, fmt, notes)
        written += guarded(notes, "decision_boundary", decision_boundary, run, out, fmt)
        if regression_units(run) is not None:
            written += guarded(notes, "predicted_vs_actual", regression_fit, run, out, fmt)
    if hasattr(module, "plot_run"):
        written += guarded(notes, f"{name}.plot_run", module.plot_run, run, out, fmt)
    return written


def plot_sweep(sweep_dir: Path, fmt: str = "png", out: Path | None = None,
               notes: list[str] | None = None, runs: list[Run] | None = None) -> list[Path]:
    """The sweep's figures into ``out`` (default ``sweep_dir/plots``), each drawn on its own:
    one that raises is skipped with a note in ``notes``. ``runs``: the readable members (read
    here when not given; members that cannot be read are noted)."""
    from dlx.experiments import experiment_of, hooks
    from dlx.plots.style import guarded
    from dlx.plots.sweep import load_members, member_labels, overlays

    notes = [] if notes is None else notes
    out = sweep_dir / "plots" if out is None else Path(out)
    if runs is None:
        runs, skipped = load_members(sweep_dir)
        notes.extend(skipped)
    if not runs:
        raise UsageError(f"{sweep_dir}: no member of this sweep has metrics to plot")
    labels = member_labels(runs)
    name = runs[0].config.get("name", sweep_dir.name)
    module = hooks(experiment_of(runs[0].config))
    written = overlays(out, runs, labels, name, fmt, notes) \
        if getattr(module, "GENERIC_RUN_PLOTS", True) else []
    if (sweep_dir / TUNING).is_file():  # a tuned sweep: each arm's sensitivity curve
        from dlx.plots.tuning import tuning_figure

        written += guarded(notes, "tuning", tuning_figure, sweep_dir, out, fmt)
    if hasattr(module, "plot_sweep"):
        written += guarded(notes, f"{name}.plot_sweep", module.plot_sweep, sweep_dir, runs,
                           labels, fmt, out)
    elif hasattr(module, "plot_run"):  # no sweep figure of its own: remake each member's
        for run in runs:
            written += plot_run(run, fmt, out / run.path.name if out != sweep_dir / "plots"
                                else None, notes)
    return written
