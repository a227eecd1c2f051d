"""dlx: the deep-learning foundations plan as one command per experiment.

NumPy models with explicit forward and backward, Hydra configs, and a reproducible record of
every run. In a notebook::

    import dlx
    run = dlx.load_run("runs/20261121-120000-logreg-a1b2c3")
    run.summary["final"]["val/acc"], run.wide()["val/loss"]
"""

__version__ = "0.1.0"


def load_run(path):
    """Open a run directory: ``.config`` (dict), ``.summary`` (dict), ``.metrics`` (DataFrame)."""
    from dlx.records.store import load_run as _load_run  # lazy: `dlx --help` must stay light

    return _load_run(path)


__all__ = ["__version__", "load_run"]
