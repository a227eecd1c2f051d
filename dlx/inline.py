"""``dlx.run``: a run or a sweep from Python (a notebook), with the learner's classes as they are.

    import dlx

    class MyAdam(dlx.optim.Optimizer):          # defined in a notebook cell
        def update(self, p, g, state): ...

    sweep = dlx.run(["-m", "experiment=optimizers", "optimizer=adam,MyAdam"], optimizer=MyAdam)

A piece (``optimizer=MyAdam``) is a config group and a class or function: it becomes that group's
option named after it (``MyAdam``, which a sweep's list can name beside dlx's options), built
exactly as a workspace option with ``_target_`` (:mod:`dlx.learner`); its source is captured
into the record. The run is ``dlx run`` in this process (Hydra, validation, the record,
the figures); it returns the run or sweep loaded (``dlx.load_run`` / ``dlx.load_sweep``).
Inline pieces live in this process: they run with Hydra's basic launcher, not in joblib or
submitit workers (a workspace module runs anywhere).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import yaml

from dlx.cells import target
from dlx.errors import UsageError


def run(overrides: list[str] | str = (), **pieces: Any):
    """Run ``dlx run OVERRIDES`` in this process with ``pieces`` (group=class or function, or
    group=an option's name) and return the loaded run, or sweep with ``-m``. Bad input raises
    :class:`~dlx.errors.UsageError` with dlx run's one-line message; a failed run is returned
    (its ``summary["status"]`` says so)."""
    from dlx import app, learner, workspace
    from dlx.records.loading import load_sweep
    from dlx.records.store import load_run

    args = [overrides] if isinstance(overrides, str) else [str(o) for o in overrides]
    found = workspace.find()
    if found is not None:
        workspace.activate(found)
    conf = Path(tempfile.mkdtemp(prefix="dlx-inline-"))
    try:
        for group, obj in pieces.items():
            if group not in learner.GROUPS:
                raise UsageError(f"dlx.run({group}=...): a piece is one of "
                                 f"{', '.join(learner.GROUPS)}")
            if isinstance(obj, str):
                args.append(f"{group}={obj}")
                continue
            path = target(obj)
            name = path.rpartition(".")[2]
            (conf / group).mkdir(exist_ok=True)
            node = {"_target_": path, "name": name, **_defaults(obj, group)}
            (conf / group / f"{name}.yaml").write_text(yaml.safe_dump(node, sort_keys=False))
            if not any(a.startswith(f"{group}=") for a in args):
                args.append(f"{group}={name}")
        search = [f"file://{conf}", *([f"file://{found / 'conf'}"] if found else [])]
        args.append(f"hydra.searchpath=[{','.join(search)}]")
        err = io.StringIO()
        with contextlib.redirect_stderr(_Tee(err)):
            code = app.main(args)
    finally:
        shutil.rmtree(conf, ignore_errors=True)
    if code == 2:
        lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("error: ")]
        raise UsageError(lines[-1].removeprefix("error: ") if lines else "dlx run: bad usage")
    if code == 130:
        raise KeyboardInterrupt
    if app._State.sweep_dir is not None:
        return load_sweep(app._State.sweep_dir)
    if app._State.last_dir is None:
        raise UsageError("dlx run made no run (--cfg, --help and --info only print)")
    return load_run(app._State.last_dir)


def search_overrides(args: list[str], quick: Path) -> list[str]:
    """The ``hydra.searchpath`` override a command adds to ``args``: the quick form's generated
    options (written into ``quick``, see :func:`dlx.inline.quick_options`) and the active
    workspace's conf/, searched beside dlx's (absolute paths); none when the user gives their
    own search path (theirs wins; it must exist)."""
    from dlx.workspace import check_searchpath

    check_searchpath(args)
    search = [f"file://{quick}"] if quick_options(args, quick) else []
    if any(a.startswith("hydra.searchpath=") for a in args):
        return []
    ws = os.environ.get("DLX_WORKSPACE")  # set by activate()
    search += [f"file://{Path(ws) / 'conf'}"] if ws else []
    return [f"hydra.searchpath=[{','.join(search)}]"] if search else []


def quick_options(args: list[str], folder: Path) -> bool:
    """The quick form: ``optimizer=mine.optim.Adam`` (a dotted path where an option name goes,
    alone or in a sweep's list) names the learner's class without a config file. Each such
    value gets a generated option ``folder/<group>/<path>.yaml`` (its ``_target_``, its
    signature's defaults, so ``optimizer.lr=...`` sets one, and ``reference: adam`` for a class
    named as dlx's option, ``Adam``); the caller puts ``folder`` on the
    search path. Imported and checked here: a bad target is one error line before Hydra runs.
    Returns whether any was made."""
    from dlx import learner
    from dlx.workspace import dlx_conf

    made = False
    for arg in args:
        group, _, value = arg.lstrip("+").partition("=")
        if group not in learner.GROUPS:
            continue
        for path in (v.strip() for v in value.split(",")):
            if not learner.is_path(path):
                continue
            obj = learner.load(path, group)
            learner.check_contract(obj, group, learner.label_target(path))
            (folder / group).mkdir(parents=True, exist_ok=True)
            node = {"_target_": path, **_defaults(obj, group)}
            # a class named as one of dlx's options implements it (mine.optim.Adam: adam), so
            # an experiment's tuned settings for that option apply, as `reference:` in a file
            own = path.rpartition(".")[2].lower()
            if (dlx_conf() / group / f"{own}.yaml").is_file():
                node["reference"] = own
            (folder / group / f"{path}.yaml").write_text(yaml.safe_dump(node, sort_keys=False))
            made = True
    return made


PROVIDED = {"optimizer": ("params",), "model": ("spec", "dtype", "rng"),
            "init": ("shape", "rng"), "schedule": ("step", "lr", "total_steps")}


def _defaults(obj: Callable, group: str) -> dict:
    """The piece's options with their defaults, so that ``optimizer.lr=0.01`` overrides one as
    in a config file (values YAML can hold; the others stay the signature's own)."""
    import inspect

    target = obj.__init__ if inspect.isclass(obj) else obj
    out = {}
    for name, p in inspect.signature(target).parameters.items():
        if name == "self" or name in PROVIDED.get(group, ()) or p.default is inspect.Parameter.empty \
                or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        value = list(p.default) if isinstance(p.default, tuple) else p.default
        try:
            yaml.safe_dump(value)
        except yaml.YAMLError:
            continue
        out[name] = value
    return out


class _Tee(io.TextIOBase):
    """stderr as it was (the notebook shows progress and errors) and a copy to read back."""

    def __init__(self, copy):
        self.copy, self.stream = copy, sys.stderr

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()
