"""What is particular to an experiment of the plan, found by the experiment that was chosen.

A run belongs to an experiment when its config's ``experiment`` key names one (each file in
``conf/experiment/`` sets it to its own name; plain runs have none). The experiment's module is
``dlx.experiments.<experiment>`` (or the one :data:`MODULE_OF` names), and may define, all
optional — this is the complete list of hooks:

* ``validate(cfg) -> None`` — check the experiment's own settings (a plain, resolved config
  dict) and raise :class:`~dlx.errors.UsageError`; called by :func:`dlx.config.validate` before
  anything is created, for every member of a sweep;
* ``run(cfg, rec, run_dir) -> TrainResult`` — the experiment's own task instead of training
  (``rec`` is the run's :class:`~dlx.records.metrics.MetricsWriter`; read logged values back
  with ``rec.series(key)``, not from files);
* ``plot_run(run, out, fmt) -> list[Path]`` — extra figures for one of its runs;
  ``GENERIC_RUN_PLOTS = False`` drops the generic per-metric figures;
* ``plot_sweep(sweep_dir, runs, labels, fmt, out) -> list[Path]`` — figures for a sweep of it,
  written into ``out`` (default ``sweep_dir/plots``);
* ``report_numbers(run) -> dict`` — numbers that ``dlx report`` prints for one of its runs;
* ``report_sweep_numbers(runs, plots) -> dict`` — numbers about a whole sweep (e.g. a fitted law
  with its interval) for ``dlx report``, read from the folder its figures were drawn into;
* ``OWN_PIECES = {group: what it uses instead}`` — the groups whose option the experiment's own
  task does not use (it computes with pieces of its own): a learner's implementation named in
  one of them would not run, so :func:`dlx.config.validate` refuses it, saying why.

Figures are decided by :mod:`dlx.figures`; each hook is drawn on its own: one that raises is
skipped with a note, and never fails the run. Experiments without a module are plain training
runs with the generic figures.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping

# experiments that share another's module (its task and figures)
MODULE_OF = {"scaling_data": "scaling", "scaling_compute": "scaling",
             "rnn_adding": "rnn_memory"}


def experiment_of(cfg: Mapping[str, Any]) -> str | None:
    """The experiment a run belongs to: the ``experiment`` key its experiment file sets (None for
    a plain run). Records written before the key existed fall back to their ``name``."""
    return cfg["experiment"] if "experiment" in cfg else cfg.get("name")


def hooks(experiment: str | None) -> ModuleType | None:
    """The module of ``experiment`` (by the experiment, never by the model's name), if any."""
    name = MODULE_OF.get(experiment, experiment)
    if not name or not name.isidentifier():
        return None
    if not (Path(__file__).parent / f"{name}.py").is_file():
        return None
    return importlib.import_module(f"dlx.experiments.{name}")


def task_for(cfg: Mapping[str, Any]) -> Callable:
    """The function a run of ``cfg`` executes: ``task(cfg, rec, run_dir, resume=None)`` — the
    experiment's ``run``, or plain training (which checkpoints each epoch and can resume)."""
    module = hooks(experiment_of(cfg))
    if module is not None and hasattr(module, "run"):
        return lambda cfg, rec, run_dir, resume=None: module.run(cfg, rec, run_dir)
    from dlx.training import train

    return lambda cfg, rec, run_dir, resume=None: train(
        cfg, rec, cfg["progress"], run_dir, resume=resume, checkpoint=cfg.get("checkpoint", True))
