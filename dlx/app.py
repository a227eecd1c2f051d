"""`dlx run` is Hydra: a ``@hydra.main`` entry, called with the CLI's arguments as ``sys.argv``.

What this module adds around Hydra:

* ``${dlx_run_dir:root,name}`` creates the run (or sweep) directory atomically. It is a cached
  resolver, like Hydra's ``${now:}``, so every sweep member sees the same sweep directory.
* ``ValidateCallback`` checks the composed config before any directory is created; a bad value
  aborts the whole command (a BaseException, because Hydra turns callbacks' Exceptions into
  warnings).
* Errors: Hydra is run with HYDRA_FULL_ERROR=1 so its exceptions reach :func:`main`, which prints
  them as one ``error:`` line (exit 2) unless the user asked for tracebacks.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from dlx.config import validate
from dlx.errors import UsageError
from dlx.records.rundir import create_unique_dir

log = logging.getLogger("dlx")

OmegaConf.register_new_resolver(
    "dlx_run_dir", lambda root, name: str(create_unique_dir(root, name)), use_cache=True,
    replace=True)


def _width_for(n_layers: int, budget: int) -> int:
    """The d_model whose transformer blocks (4d^2 attention + 8d^2 MLP + biases and norms per
    layer) come closest to ``budget`` non-embedding parameters at this depth."""
    def params(d: int) -> int:
        return n_layers * (12 * d * d + 13 * d)
    return min(range(2, 1024), key=lambda d: abs(params(d) - budget))


OmegaConf.register_new_resolver("dlx_width", _width_for, replace=True)


class _Rejected(BaseException):
    """Carries a UsageError out of a Hydra callback (which would swallow an Exception)."""


class _State:
    """What the jobs of this process did, and where the sweep went (read by :func:`main`)."""

    results: list = []  # JobResult of each job run in this process
    last_dir: Path | None = None  # the run directory of the job started last
    sweep_dir: str | None = None

    @classmethod
    def reset(cls) -> None:
        cls.results, cls.last_dir, cls.sweep_dir = [], None, None


class ValidateCallback(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _validate(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _validate(config)
        _State.sweep_dir = str(config.hydra.sweep.dir)  # resolving it creates it

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # the basic sweeper writes multirun.yaml; others (Optuna) do not: every sweep has one
        path = Path(_State.sweep_dir or str(config.hydra.sweep.dir)) / "multirun.yaml"
        if not path.exists():
            OmegaConf.save(config, path)


def _validate(config: DictConfig) -> None:
    try:
        validate(config)
    except UsageError as e:
        raise _Rejected(e) from None


@hydra.main(version_base="1.3", config_path="pkg://dlx.conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> float:
    """One job. Returns the monitored metric (``monitor``, e.g. the best val/loss) for sweepers
    that optimize it (Optuna); +inf for a run that failed or diverged."""
    from dlx.runner import run_job

    hc = HydraConfig.get()
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


def main(args: list[str]) -> int:
    """Run ``dlx run ARGS``; return the exit code (0 ok or diverged, 1 failed, 2 usage, 130 ^C)."""
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    user_full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    _State.reset()
    try:
        _args_parser().parse_args(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    saved_argv = sys.argv
    os.environ["HYDRA_FULL_ERROR"] = "1"
    sys.argv = ["dlx run", *args]
    try:
        _hydra_main()
    except SystemExit as e:  # --help, --hydra-help, --info
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        print("error: interrupted (the record so far is kept)", file=sys.stderr)
        where = Path(_State.sweep_dir).absolute() if _State.sweep_dir else _State.last_dir
        if where:
            print(where)
        return 130
    except _Rejected as e:
        if debug or user_full_error:
            raise e.args[0] from None
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    except Exception as e:
        if debug or user_full_error:
            raise
        print(f"error: {describe(e)}", file=sys.stderr)
        return 2
    finally:
        sys.argv = saved_argv
        if not user_full_error:
            os.environ.pop("HYDRA_FULL_ERROR", None)

    if _State.sweep_dir is not None:
        return _report_sweep(Path(_State.sweep_dir).absolute())
    if not _State.results:  # --cfg, --info: Hydra printed what was asked
        return 0
    result = _State.results[-1]
    print(result.run_dir)
    return {"completed": 0, "diverged": 0, "interrupted": 130}.get(result.status, 1)


def _report_sweep(sweep_dir: Path) -> int:
    rows = _member_status(sweep_dir)
    counts: dict[str, int] = {}
    for _, status, _ in rows:
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"sweep of {len(rows)} runs: {summary or 'no members'}", file=sys.stderr)
    for name, status, error in rows:
        if status == "failed":
            print(f"  member {name} failed: {error}", file=sys.stderr)
    print(sweep_dir)
    return 1 if any(s in ("failed", "running") for _, s, _ in rows) else 0
