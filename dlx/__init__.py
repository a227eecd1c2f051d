"""dlx: the deep-learning foundations plan as one command per experiment.

NumPy models with explicit forward and backward, Hydra configs, and a reproducible record of
every run. In a notebook::

    import dlx
    run = dlx.load_run("runs/20261121-120000-logreg-a1b2c3")
    run.summary["final"]["val/acc"], run.wide()["val/loss"]
    sweep = dlx.load_sweep("runs/20261121-120500-optimizers-d4e5f6")
    sweep.members, sweep.metrics   # members (status, varied overrides); every metrics row

and run, with your own classes (see ``dlx.run``)::

    sweep = dlx.run(["-m", "experiment=optimizers", "optimizer=adam,MyAdam"], optimizer=MyAdam)

and grade your code against dlx's (see ``dlx.check``)::

    dlx.check(MyAdam, reference="adam")
"""

from dlx._version import __version__


def load_run(path):
    """Open a run directory: ``.config`` (dict), ``.summary`` (dict), ``.metrics`` (DataFrame)."""
    from dlx.records.store import load_run as _load_run  # lazy: `dlx --help` must stay light

    return _load_run(path)


def load_sweep(path):
    """Open a sweep directory: ``.members`` (DataFrame: member, path, status, the varied
    overrides), ``.runs`` (each a run as ``load_run`` gives it), ``.varied`` (the keys that
    differ), ``.metrics`` (long DataFrame of every member's metrics.csv rows, one column per
    varied override, typed as in the overrides)."""
    from dlx.records.loading import load_sweep as _load_sweep  # lazy, as above

    return _load_sweep(path)


def run(overrides=(), **pieces):
    """Run ``dlx run OVERRIDES`` in this process and return the run (or, with ``-m``, the sweep)
    loaded. ``pieces``: a config group and your class or function (``optimizer=MyAdam``),
    defined anywhere, a notebook cell included; see :mod:`dlx.inline`."""
    from dlx.inline import run as _run  # lazy, as above

    return _run(overrides, **pieces)


def check(obj, reference=None, **options):
    """Your optimizer, layer or loss class against dlx's reference, as `dlx check` grades it:
    ``dlx.check(MyAdam, reference="adam")`` shows the stages, the first failure and what it
    means (``.passed`` for a bool). ``options``: what your class is built with."""
    from dlx.checks import check_object  # lazy, as above

    return check_object(obj, reference, **options)


__all__ = ["__version__", "check", "load_run", "load_sweep", "run"]
