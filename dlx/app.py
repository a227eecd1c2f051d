"""`dlx run` is Hydra: a ``@hydra.main`` entry, called with the CLI's arguments as ``sys.argv``.

What this module adds around Hydra:

* ``${dlx_run_dir:root,name}`` creates the run (or sweep) directory atomically. It is a cached
  resolver, like Hydra's ``${now:}``, so every sweep member sees the same sweep directory.
* ``ValidateCallback`` checks the composed config before any directory is created; a bad value
  aborts the whole command (a BaseException, because Hydra turns callbacks' Exceptions into
  warnings). A sweep checks EVERY member (its values, and that its directory holds no run of
  another config) before the sweeper writes or launches anything.
* Signals: SIGTERM is turned into KeyboardInterrupt for the whole command, so Ctrl-C and SIGTERM
  stop it the same way at any moment: exit 130, the run's record kept, directories this command
  created and left without any run removed.
* Errors: Hydra is run with HYDRA_FULL_ERROR=1 so its exceptions reach :func:`main`, which prints
  them as one ``error:`` line (exit 2) unless the user asked for tracebacks.
"""

from __future__ import annotations

import argparse
import errno
import functools
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dlx import interrupts, resolvers  # noqa: F401 - resolvers: registers dlx's OmegaConf resolvers
from dlx.config import validate
from dlx.errors import Rejected, UsageError
from dlx.nn.transformer import width_for_budget
from dlx.records import rundir
from dlx.records.files import MULTIRUN, SUMMARY

log = logging.getLogger("dlx")


_Rejected = Rejected  # a UsageError out of a callback or resolver (dlx.errors)


def _new_run_dir(root, name) -> str:
    if root is None or not str(root).strip():
        raise _Rejected(UsageError("runs_dir must be a directory path, got ''"))
    if not Path(root).exists():
        _State.created.append((Path(root), False))  # removed again only if it stays empty
    try:
        path = rundir.create_unique_dir(root, name)
    except OSError as e:
        where = e.filename or root
        raise _Rejected(UsageError(f"cannot create {where}: {e.strerror or e}"
                                   " (choose another runs_dir= or $DLX_RUNS_DIR)")) from None
    _State.created.append((path, True))
    return str(path)


OmegaConf.register_new_resolver("dlx_run_dir", _new_run_dir, use_cache=True, replace=True)

_SWEEP_FUNCTIONS = ("choice(", "range(", "interval(", "glob(", "tag(", "sort(", "shuffle(")


def _sweep_name(name: str, *, _root_: DictConfig) -> str:
    """``${dlx_sweep_name:${name}}``, a sweep directory's name: ``name``, except for a sweep
    over models whose ``name`` is its base config's model (``-m model=cnn,my_lenet`` made
    ``...-logreg-...``): the models it sweeps (``cnn+my_lenet``), or ``models``."""
    return _swept_models(_root_) or name


OmegaConf.register_new_resolver("dlx_sweep_name", _sweep_name, replace=True)


def _swept_models(cfg: DictConfig) -> str | None:
    raw = cfg._get_node("name")
    if raw is None or str(raw._value()).replace(" ", "") != "${dlx_option:model}" \
            or OmegaConf.select(cfg, "hydra.mode", default=None) != RunMode.MULTIRUN:
        return None
    for override in OmegaConf.select(cfg, "hydra.overrides.task", default=None) or []:
        key, _, value = str(override).partition("=")
        if key.lstrip("+~") != "model":
            continue
        if value.startswith(_SWEEP_FUNCTIONS):
            return "models"
        if "," in value:
            return "+".join(v.strip() for v in value.split(","))
    return None


OmegaConf.register_new_resolver("dlx_width", width_for_budget, replace=True)




class _State:
    """What the jobs of this process did, and where the sweep went (read by :func:`main`)."""

    results: list = []  # JobResult of each job run in this process
    last_dir: Path | None = None  # the run directory of the job started last
    sweep_dir: str | None = None
    n_members: int | None = None  # how many members the sweep asked for
    created: list = []  # (directory, whether it is ours alone) that this command created
    locks: list = []  # (lock, directory) held by this command (a sweep's, for the whole sweep)

    @classmethod
    def reset(cls) -> None:
        cls.results, cls.last_dir, cls.sweep_dir, cls.n_members, cls.created = [], None, None, \
            None, []
        cls.locks = []


class ValidateCallback(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _adopt(config)
        _validate(config)
        _check_dir(Path(config.hydra.run.dir), config)  # resolving the default creates it

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _install_sweep_checks()  # now: Hydra's plugin scan re-executes the sweeper modules
        _register_tuned_sweeper()
        _adopt(config)
        try:
            _validate(config)
        except _Rejected:
            # The sweep's base config is none of its members (model=mlp,linreg dataset=function
            # composes with the default model, which cannot read the data): the basic sweeper
            # checks every member before it creates anything, and names the one that fails.
            if not str(config.hydra.sweeper.get("_target_", "")).endswith(("BasicSweeper", "TunedSweeper")):
                raise
        _State.sweep_dir = str(config.hydra.sweep.dir)  # resolving the default creates it
        _hold_sweep(Path(_State.sweep_dir))
        interrupts.forward(functools.partial(_pass_to_workers, Path(_State.sweep_dir)))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # the basic sweeper writes multirun.yaml; others (Optuna) do not: every sweep has one
        path = Path(_State.sweep_dir or str(config.hydra.sweep.dir)) / MULTIRUN
        if not path.exists():
            OmegaConf.save(config, path)


def _adopt(config: DictConfig) -> None:
    """Name the learner's options after the choice that selected them (see dlx.learner)."""
    from dlx import learner

    learner.adopt(config, config.hydra.runtime.choices)


def _validate(config: DictConfig) -> None:
    try:
        validate(config)
    except UsageError as e:
        raise _Rejected(e) from None
    except Exception as e:  # noqa: BLE001 - e.g. a model too large to build: never run it
        from dlx import learner

        where = learner.last_frame(e)
        if where and os.environ.get("DLX_DEBUG") != "1":  # the learner's class raised, built
            given = []
            for g in learner.GROUPS:
                node = OmegaConf.to_container(config[g], resolve=True) if g in config else None
                if learner.is_learner(node):
                    opts = [f"{k}={v!r}" for k, v in node.items() if k not in learner.OWN_KEYS]
                    given.append(f"{g} {', '.join(opts) or 'none'}")
            raise _Rejected(UsageError(
                f"your code raised while dlx built the run: {type(e).__name__}: {e} (at {where};"
                f" the options it was given, from your file, the experiment and the command "
                f"line: {'; '.join(given)})")) from e
        raise _Rejected(UsageError(f"invalid config: {type(e).__name__}: {e}")) from e


def _job_config(config: DictConfig) -> dict:
    """The resolved config a job would record in config.yaml (without Hydra's node)."""
    return OmegaConf.to_container(OmegaConf.masked_copy(config, [k for k in config if k != "hydra"]),
                                  resolve=True)


def _check_dir(run_dir: Path, config: DictConfig, where: str = "") -> None:
    """Refuse a run directory that holds anything but a run of this same config (which is
    skipped or resumed): a different run's result is never overwritten."""
    from dlx.records.store import occupant

    try:
        problem = occupant(run_dir, _job_config(config))
    except UsageError as e:
        raise _Rejected(e) from None
    if problem:
        raise _Rejected(UsageError(f"{where}{problem}; choose another directory"))


def _check_sweep_dir(sweep_dir: Path, n_members: int | None) -> None:
    from dlx.records.store import sweep_occupant

    problem = sweep_occupant(sweep_dir, n_members)
    if problem:
        raise _Rejected(UsageError(f"{problem}; choose another directory"))


def _check_members(sweeper, batch, start: int) -> None:
    """Compose and check each member of ``batch`` (job numbers from ``start``): its values, and
    its directory. Raises _Rejected naming the member's overrides."""
    from omegaconf import open_dict

    loader = sweeper.hydra_context.config_loader
    for num, overrides in enumerate(batch, start):
        label = f"sweep member {num} ({' '.join(overrides) or 'no overrides'}): "
        try:
            member = loader.load_sweep_config(sweeper.config, list(overrides))
        except Exception as e:  # noqa: BLE001 - Hydra's composition errors, said in one line
            raise _Rejected(UsageError(f"{label}{describe(e)}")) from None
        try:
            _adopt(member)
            _validate(member)
        except _Rejected as e:
            raise _Rejected(UsageError(f"{label}{e.args[0]}")) from None
        with open_dict(member):
            member.hydra.job.num = num
        _check_dir(Path(member.hydra.sweep.dir) / str(member.hydra.sweep.subdir), member, label)


def _register_tuned_sweeper() -> None:
    """`hydra/sweeper=tuned` (dlx.tuning), registered with Hydra before it instantiates the
    sweeper: Hydra's scan of the hydra_plugins namespace misses an editable install's."""
    from hydra.core.plugins import Plugins

    from hydra_plugins.dlx_tuned_sweeper import TunedSweeper

    Plugins.instance().register(TunedSweeper)


def _install_sweep_checks() -> None:
    """Every sweeper checks each batch before launching it (Hydra composes it there anyway);
    the basic sweeper checks ALL its members before it creates or writes anything."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.plugins.sweeper import Sweeper

    if getattr(BasicSweeper, "_dlx_checked", False):
        return
    compose_only = getattr(Sweeper, "_dlx_compose_only", Sweeper.validate_batch_is_legal)
    basic_sweep = BasicSweeper.sweep

    def validate_batch_is_legal(self, batch) -> None:
        if getattr(self, "_dlx_all_checked", False):
            return
        compose_only(self, batch)
        _check_members(self, batch, getattr(self, "job_idx", 0) or 0)

    def sweep(self, arguments):
        params = self._parse_config()
        params.extend(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        members = [m for b in self.split_arguments(parser.parse_overrides(params), None) for m in b]
        _State.n_members = len(members)
        _check_sweep_dir(Path(self.config.hydra.sweep.dir), len(members))
        _check_members(self, members, 0)
        self._dlx_all_checked = True
        return basic_sweep(self, arguments)

    Sweeper._dlx_compose_only = compose_only
    Sweeper.validate_batch_is_legal = validate_batch_is_legal
    BasicSweeper.sweep = sweep
    BasicSweeper._dlx_checked = True


@hydra.main(version_base="1.3", config_path="pkg://dlx.conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> float:
    """One job. Returns the monitored metric (``monitor``, e.g. the best val/loss) for sweepers
    that optimize it (Optuna); +inf for a run that failed or diverged."""
    from dlx import learner
    from dlx.runner import run_job

    hc = HydraConfig.get()
    learner.adopt(cfg, hc.runtime.choices)
    _State.last_dir = Path(hc.runtime.output_dir)
    result = run_job(cfg, _State.last_dir, list(hc.overrides.task))
    _State.results.append(result)
    return result.objective


def _args_parser() -> argparse.ArgumentParser:
    """Hydra's own argument parser, with errors raised instead of printed and exited."""
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    parser.prog = "dlx run"

    def error(message: str):
        raise UsageError(f"{message} (see `dlx run --help`)")

    parser.error = error  # type: ignore[method-assign]
    return parser


def describe(exc: BaseException) -> str:
    """One line for a Hydra or OmegaConf error: what is wrong and what would be valid."""
    from hydra.errors import MissingConfigException, OverrideParseException

    if isinstance(exc, MissingConfigException) and exc.options and exc.missing_cfg_file:
        group, _, option = exc.missing_cfg_file.rpartition("/")
        extra = {"hydra/launcher": "launchers", "hydra/sweeper": "optuna"}.get(group)
        hint = f"; plugins come with pip install 'dlx[{extra}]'" if extra else ""
        return (f"unknown {group or 'config'} {option!r} "
                f"(valid: {', '.join(sorted(exc.options))}{hint})")
    if str(exc).startswith("Ambiguous value for argument"):
        arg = str(exc).splitlines()[0].partition("argument ")[2]
        return (f"ambiguous value {arg}: to sweep over it add -m (dlx run -m {arg.strip(chr(39))}); "
                "for a list write key=[a,b]; for a string quote it: key='a,b'")
    if isinstance(exc, OverrideParseException):
        return f"cannot parse override {exc.override!r}: {exc.message.splitlines()[0]}"
    match = re.match(r"Could not override '([^']+)'", str(exc))
    if match and "not in struct" in str(exc.__cause__):
        key = match.group(1)
        return (f"unknown key {key!r} (`dlx run --cfg job` shows the valid keys; "
                f"+{key}=... adds a new one)")
    lines = [s.strip() for s in str(exc).splitlines() if s.strip() and "hydra.cc/docs" not in s]
    text = " ".join(lines[:2]) if lines else type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause).strip():
        text += f" ({str(cause).strip().splitlines()[0]})"
    return text


def _member_status(sweep_dir: Path) -> list[tuple[str, str, str | None]]:
    from dlx.records.store import read_summary, sweep_members

    rows = []
    for member in sweep_members(sweep_dir):
        try:
            s = read_summary(member)
            rows.append((member.name, s["status"], s.get("error")))
        except UsageError as e:
            rows.append((member.name, "failed", str(e)))
    return rows


def _hint(args: list[str]) -> str:
    """Hydra's advice that one line would otherwise lose: quoting values with spaces."""
    split = [a for a in args if not a.startswith("-") and "=" not in a]
    unbalanced = [a for a in args if a.count("[") != a.count("]") or a.count("'") % 2]
    if split or unbalanced:
        return (" (a value with spaces must reach dlx as one argument: quote it, e.g. "
                "\"model.hidden=[64, 64]\" or \"key='a b'\")")
    return ""


def _hold_sweep(sweep: Path) -> None:
    """The sweep directory's lock, for the whole sweep: a second sweep into it is refused with
    one line naming this process, whatever its sweeper and launcher."""
    from dlx.records import lock

    if not sweep.exists():
        try:
            sweep.mkdir(parents=True)
        except OSError as e:
            raise _Rejected(UsageError(f"cannot create {sweep}: {e.strerror or e}")) from None
        _State.created.append((sweep, True))
    new_file = not (sweep / lock.LOCK).exists()
    try:
        _State.locks.append((lock.hold(sweep, "sweep"), sweep, new_file))
    except UsageError as e:
        raise _Rejected(e) from None


def _pass_to_workers(sweep: Path, signum: int, patience: float = 30.0) -> None:
    """Ctrl-C or SIGTERM to a sweep: its launcher's worker processes (joblib's) get the signal
    too, and the sweep waits (up to ``patience`` s) until none of its members' directories is
    held, so each member has recorded ``interrupted`` before joblib's clean-up kills the
    workers. Without this a SIGTERM to the sweep's process alone left its members ``lost``."""
    import multiprocessing

    from dlx.records.lock import busy

    workers = multiprocessing.active_children()
    for worker in workers:
        try:
            os.kill(worker.pid, signum)
        except OSError:  # gone already
            pass
    deadline = time.monotonic() + patience
    while workers and time.monotonic() < deadline:
        try:
            if not any(busy(d) for d in sweep.iterdir() if d.is_dir()):
                return
        except OSError:
            return
        time.sleep(0.02)


def _release_locks(discard: bool = False) -> None:
    """Let go of this command's locks; ``discard`` (a sweep refused or stopped at start-up):
    also remove the lock files it made, so that a folder it was refused keeps nothing of it."""
    from dlx.records import lock

    for held, folder, new_file in reversed(_State.locks):
        lock.release(held, folder)
        if discard and new_file:
            (folder / lock.LOCK).unlink(missing_ok=True)
    _State.locks = []


def _discard_unused() -> None:
    """Remove the directories this command created that hold no run (Ctrl-C or a rejection
    at start-up keeps nothing); a directory with any run's record is kept."""
    import shutil

    from dlx.records.lock import busy

    _release_locks(discard=True)
    for path, ours in reversed(_State.created):
        if not path.is_dir() or busy(path):  # another process works in it now: never ours
            continue
        if ours:  # a new run or sweep directory: no other process writes into it
            if not any(path.rglob(SUMMARY)):
                shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                path.rmdir()  # the runs root: only if nothing else is in it
            except OSError:
                pass


def main(args: list[str], command: bool = False) -> int:
    """Run ``dlx run ARGS``; return the exit code (0 ok or diverged, 1 failed, 2 usage, 130 ^C).
    ``command``: the process is `dlx run` itself, which exits next: once the runs are over, a
    late Ctrl-C or SIGTERM is ignored (it would turn a finished run's exit code into 130 or a
    death by signal while the directory is printed)."""
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    user_full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    _State.reset()
    try:
        _args_parser().parse_args(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    saved = sys.argv, os.environ.get("DLX_DEBUG")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    if debug:
        os.environ["DLX_DEBUG"] = "1"  # runner: a failed run's traceback on the console too
    sys.argv = ["dlx run", *args]
    interrupts.clear()
    handlers = interrupts.install()
    finished = False
    try:
        _hydra_main()
        interrupts.check()  # one that Hydra or a library swallowed
        finished = True
    except SystemExit as e:  # --help, --hydra-help, --info
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        # one in the instant between the last record's final status and the end of Hydra's
        # job (the 'completed:' line printed, the directory not yet): the runs are over
        finished = command and _all_recorded()
        if not finished:
            return _interrupted()
    except _Rejected as e:
        _discard_unused()
        if debug or user_full_error:
            raise e.args[0] from None
        print(f"error: {e.args[0]}", file=sys.stderr)
        return e.code
    except Exception as e:
        _discard_unused()
        if debug or user_full_error:
            raise
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            # Hydra's own files of the run (.hydra/) on a full disk: no run started
            where = f" (writing {e.filename})" if e.filename else ""
            print(f"error: cannot start a run: {e.strerror}{where}", file=sys.stderr)
            return 1
        print(f"error: {describe(e)}{_hint(args) if _is_parse_error(e) else ''}", file=sys.stderr)
        return 2
    finally:
        _release_locks()  # the sweep's, on every way out
        (interrupts.settle if finished and command else interrupts.restore)(handlers)
        sys.argv = saved[0]
        if saved[1] is None:
            os.environ.pop("DLX_DEBUG", None)
        if not user_full_error:
            os.environ.pop("HYDRA_FULL_ERROR", None)

    if _State.sweep_dir is not None:
        return _report_sweep(Path(_State.sweep_dir).absolute())
    if not _State.results and _State.last_dir is None:  # --cfg, --info: Hydra printed it
        return 0
    run_dir, status = (_State.results[-1].run_dir, _State.results[-1].status) if _State.results \
        else (_State.last_dir, _final_status(_State.last_dir))
    print(run_dir)
    return {"completed": 0, "diverged": 0, "interrupted": 130}.get(status, 1)


FINAL = ("completed", "diverged", "failed")  # a record that says how its run ended


def _final_status(run_dir: Path | None) -> str | None:
    from dlx.records.store import read_summary

    try:
        status = read_summary(run_dir)["status"] if run_dir is not None else None
    except (UsageError, OSError):
        return None
    return status if status in FINAL else None


def _all_recorded() -> bool:
    """Every run this command was to make has its final status on disk (a signal that came
    after that changes nothing): the run, or every member the sweep asked for."""
    if _State.sweep_dir is None:
        return _final_status(_State.last_dir) is not None
    rows = _member_status(Path(_State.sweep_dir))
    return bool(_State.n_members) and len(rows) >= _State.n_members \
        and all(status in FINAL for _, status, _ in rows)


def _is_parse_error(e: Exception) -> bool:
    from hydra.errors import OverrideParseException

    return isinstance(e, OverrideParseException)


def _interrupted() -> int:
    """Ctrl-C or SIGTERM anywhere: say what was kept (or keep nothing), exit 130."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C cannot cut the report short
    try:
        _discard_unused()
        if _State.sweep_dir is not None and Path(_State.sweep_dir).is_dir():
            _report_sweep(Path(_State.sweep_dir).absolute(), interrupted=True)
        elif _State.last_dir is not None and _State.last_dir.is_dir():
            print("interrupted: the record so far is kept", file=sys.stderr)
            print(_State.last_dir)
        else:
            print("interrupted before any run started: nothing was kept", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return 130


def _report_sweep(sweep_dir: Path, interrupted: bool = False) -> int:
    rows = _member_status(sweep_dir)
    trials = _member_status(sweep_dir / "tune") if (sweep_dir / "tune").is_dir() else []
    if trials and not rows:  # a tuned sweep stopped in its tuning stage (dlx.tuning)
        done = sum(status in ("completed", "diverged") for _, status, _ in trials)
        print(f"sweep {'interrupted ' if interrupted else ''}while tuning: {done} of {len(trials)} "
              f"tuning runs finished ({sweep_dir / 'tune'}); no member ran", file=sys.stderr)
        print(sweep_dir)
        return 130 if interrupted else 1
    counts: dict[str, int] = {}
    for _, status, _ in rows:
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    asked = _State.n_members or len(rows)
    done = counts.get("completed", 0) + counts.get("diverged", 0)
    head = (f"sweep interrupted: {done} of {asked} runs finished" if interrupted
            else f"sweep of {asked} runs")
    print(f"{head}: {summary or 'no members'}", file=sys.stderr)
    for name, status, error in rows:
        if status == "failed":
            print(f"  member {name} failed: {error}", file=sys.stderr)
    print(sweep_dir)
    if interrupted:
        return 130
    return 1 if any(s in ("failed", "running", "lost") for _, s, _ in rows) else 0
