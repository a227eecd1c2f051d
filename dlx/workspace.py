"""The learner's workspace: their own code and config files, found as git finds a repository.

A workspace is a folder holding ``dlx-workspace.yaml`` (made by ``dlx init``)::

    dlx-workspace.yaml   marks the folder (found from the current directory upward)
    mine/                a Python package for the learner's code (any package here imports)
    conf/<group>/*.yaml  the learner's config options: ``_target_: mine.optim.Adam`` and its
                         hyperparameters make ``dlx run optimizer=<file name>`` use the class
    runs/                the runs, by default

:func:`find` locates it (``--workspace DIR``, else ``$DLX_WORKSPACE``, else the current folder
and its parents); :func:`activate` puts it on the import path of this process and of every
process it starts (joblib and submitit workers import the learner's code too). This module
imports no numpy and no Hydra: the CLI calls it before any command runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dlx.errors import UsageError

MARKER = "dlx-workspace.yaml"
PACKAGE = "mine"
GROUPS = ("optimizer", "model", "loss", "schedule", "init", "regularizer", "dataset",
          "experiment")

README = """\
# My dlx workspace

Derive first. Implement. Get stuck. Then bring your derivation, your reasoning, your failure mode.

- `mine/` is a Python package for your code (import it as `mine.optim`, `mine.models`, ...).
- `conf/<group>/<name>.yaml` makes `dlx run <group>=<name>` use your class instead of dlx's:

      # conf/optimizer/my_adam.yaml
      _target_: mine.optim.Adam     # your class: a subclass of dlx.optim.Optimizer
      reference: adam               # the dlx option it implements (its tuned settings apply)
      lr: 0.001
      betas: [0.9, 0.999]

  Groups: optimizer, model, loss, schedule, init, regularizer (and dataset, experiment
  as plain YAML).
  A one-off try without a file: `dlx run optimizer=mine.optim.Adam optimizer.lr=0.01`.
- `conf/activation/<name>.yaml` (`_target_: mine.layers.ReLU`, a dlx.nn.Module) puts your
  layer into dlx's mlp: `dlx run model=mlp model.activation=my_relu`.
- `runs/` holds your runs; every dlx command run inside this folder finds it.

Compare yours with dlx's under identical data, initial weights and batches:

    dlx run -m experiment=optimizers optimizer=adam,my_adam seed=0

Each run records your source files (with their sha256) in its folder, under `source/`.
"""

EXAMPLE = '''\
"""My own implementations: dlx runs them through the files in conf/ (see README.md)."""
'''


def find(explicit: str | os.PathLike | None = None, start: Path | None = None) -> Path | None:
    """The workspace to use: ``explicit`` (``--workspace``), else ``$DLX_WORKSPACE``, else the
    nearest folder holding MARKER from ``start`` (the current folder) upward; None if none.
    A workspace that is named but is not one is a UsageError: never silently ignored."""
    named = explicit if explicit is not None else os.environ.get("DLX_WORKSPACE") or None
    if named is not None:
        path = Path(named).expanduser().absolute()
        if not (path / MARKER).is_file():
            how = "--workspace" if explicit is not None else "DLX_WORKSPACE"
            raise UsageError(f"{how} {named}: not a dlx workspace (no {MARKER} in it; "
                             f"`dlx init {named}` makes one)")
        return path
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / MARKER).is_file():
            return folder
    return None


def activate(ws: Path) -> None:
    """Make the learner's packages importable here and in every process started from here."""
    # DLX_SOURCE (`dlx rerun --code recorded`): a run's copy of the learner's files, first
    for folder in [str(ws), *filter(None, [os.environ.get("DLX_SOURCE")])]:
        if folder not in sys.path:
            sys.path.insert(0, folder)
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        if folder not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join([folder, *paths])
    os.environ["DLX_WORKSPACE"] = str(ws)
    os.environ.setdefault("DLX_RUNS_DIR", str(ws / "runs"))  # what runs_dir's default reads


def options(ws: Path) -> dict[str, list[str]]:
    """The workspace's config options, by group: ``conf/<group>/<name>.yaml`` -> name."""
    out = {}
    for group in GROUPS:
        folder = ws / "conf" / group
        if folder.is_dir():
            out[group] = sorted(p.stem for p in folder.glob("*.yaml"))
    return out


def dlx_conf() -> Path:
    """dlx's own config folder (the package dlx.conf: conf/ of the checkout, or installed)."""
    import importlib.util

    return Path(list(importlib.util.find_spec("dlx.conf").submodule_search_locations)[0])


def check(ws: Path) -> None:
    """Refuse a workspace option named as one of dlx's own: which one a run used would depend
    on the search order, and a record naming ``adam`` must mean dlx's Adam."""
    for group, names in options(ws).items():
        ours = {p.stem for p in (dlx_conf() / group).glob("*.yaml")}
        for name in names:
            if name in ours:
                raise UsageError(f"{ws / 'conf' / group / (name + '.yaml')}: {group} {name!r} is "
                                 f"the name of dlx's own option; rename yours (e.g. my_{name})")


def check_searchpath(args: list[str]) -> None:
    """A search path the user gives (``hydra.searchpath=[file:///a/conf,...]``) that does not
    exist is an error: Hydra would only warn and go on without it."""
    for arg in args:
        if arg.startswith("hydra.searchpath="):
            value = arg.partition("=")[2].strip().strip("[]")
            for item in (v.strip().strip("'\"") for v in value.split(",") if v.strip()):
                path = item[len("file://"):] if item.startswith("file://") else \
                    (None if "://" in item else item)
                if path is not None and not Path(path).is_dir():
                    raise UsageError(f"hydra.searchpath: {item} is not a folder (a search path "
                                     f"must exist; file:///abs/path/conf)")


def runs_root() -> Path:
    """Where runs are by default: $DLX_RUNS_DIR (which :func:`activate` sets to the workspace's
    runs/ unless the user set it), else ./runs."""
    return Path(os.environ.get("DLX_RUNS_DIR") or "runs")


def init(folder: Path) -> list[Path]:
    """Make a workspace in ``folder`` (created if missing); returns the files written. Refuses
    a folder that is already a workspace or that holds a file it would write: nothing of the
    learner's is ever overwritten."""
    folder = folder.expanduser()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: not a directory")
    files = {folder / MARKER: f"# a dlx workspace (`dlx init`): code in {PACKAGE}/, options in "
                              f"conf/<group>/, runs in runs/\nversion: 1\n",
             folder / "README.md": README,
             folder / PACKAGE / "__init__.py": EXAMPLE}
    if (folder / MARKER).exists():
        raise UsageError(f"{folder}: already a dlx workspace")
    clash = [str(p) for p in files if p.exists()]
    if clash:
        raise UsageError(f"{clash[0]} exists: dlx init writes nothing over your files")
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        from dlx.learner import ACTIVATION  # light: no numpy
        from dlx.learner import GROUPS as LEARNER_GROUPS

        for group in (*LEARNER_GROUPS, ACTIVATION):
            (folder / "conf" / group).mkdir(parents=True, exist_ok=True)
        (folder / "runs").mkdir(exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create {e.filename or folder}: {e.strerror or e}") from None
    return list(files)
