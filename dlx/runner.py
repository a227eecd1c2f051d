"""One job: set up the run directory's record, train, decide the status, write summary and plots.

Statuses (summary.json ``status``): ``completed``; ``diverged`` (a result, not an error: training
stopped at a non-finite or exploding loss, metrics and plots are kept); ``failed`` (an exception:
traceback in run.log, ``error`` in the summary); ``interrupted`` (Ctrl-C or SIGTERM). A failure
is recorded, never raised, so one member of a sweep cannot stop the others; an interrupt is
recorded and then re-raised, so Ctrl-C stops a whole sweep.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from dlx import interrupts, threads
from dlx._version import __version__
from dlx.errors import Rejected, UsageError
from dlx.records import checkpoint
from dlx.records.files import PLOTS, replacing, write_bytes
from dlx.records.metrics import MetricsWriter
from dlx.records.store import CONFIG, METRICS, MODEL, SUMMARY, process_start, write_json
from dlx.records.tuning import maximised

log = logging.getLogger("dlx")


@dataclass
class JobResult:
    run_dir: Path
    status: str
    message: str
    objective: float = float("inf")  # the monitored metric, for sweepers that minimize it


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _git_info() -> dict:
    """Commit and dirty flag of the dlx checkout the code runs from (nothing if installed)."""
    root = Path(__file__).resolve().parent.parent  # dlx/runner.py -> the checkout
    if not (root / ".git").exists():
        return {}
    try:
        def git(*args):
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                  text=True, timeout=10, check=True).stdout.strip()
        return {"git_commit": git("rev-parse", "HEAD"),
                "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {}


def _previous(run_dir: Path, resolved: dict) -> dict | None:
    """The summary of a run already in ``run_dir`` with the same config, if any."""
    import yaml

    try:
        summary = json.loads((run_dir / SUMMARY).read_text())
        old = yaml.safe_load((run_dir / CONFIG).read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    same = isinstance(old, dict) and checkpoint.config_key(old) == checkpoint.config_key(resolved)
    return summary if same else None


def run_job(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> JobResult:
    """One run into ``run_dir``, holding its lock throughout. Every sweeper and launcher passes
    here, so this is where a directory is claimed: another process's run in it, or a finished
    run of another config, is refused (Rejected: one error line), never overwritten."""
    from dlx.errors import Rejected, UsageError
    from dlx.records import lock
    from dlx.records.store import occupant

    resolved = OmegaConf.to_container(cfg, resolve=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        held = lock.hold(run_dir)
        problem = occupant(run_dir, resolved)
    except UsageError as e:
        raise Rejected(e) from None
    try:
        if problem:
            raise Rejected(UsageError(f"{problem}; choose another directory"))
        return _run_job(cfg, resolved, run_dir, overrides)
    finally:
        lock.release(held, run_dir)


def _run_job(cfg: DictConfig, resolved: dict, run_dir: Path, overrides: list[str]) -> JobResult:
    from dlx.experiments import task_for  # after logging is configured

    previous = _previous(run_dir, resolved)
    if previous is not None and previous.get("status") in ("completed", "diverged"):
        # a re-run sweep: a finished run (a divergence is a result) is not trained again
        status = previous["status"]
        log.info(f"{run_dir.name}: already {status} with this config; skipped")
        if previous.get("final") and not any((run_dir / PLOTS).glob("*.*")):
            _plot(run_dir)  # killed while drawing them: the record gets its figures now
        return JobResult(run_dir, status, f"skipped (already {status})",
                         _objective(resolved, previous))
    resume = checkpoint.load(run_dir, resolved) if previous is not None else None
    git = _git_info()  # subprocesses: before the record's first file, not between two of them
    summary = {
        "run_id": run_dir.name, "status": "running", "experiment": resolved.get("experiment"),
        "backend": resolved["backend"],
        "overrides": overrides, "seed": resolved["seed"], "final": {}, "best": {},
        "started_at": (previous or {}).get("started_at") if resume else _now(),
        "finished_at": None, "wall_time_s": None, "steps": resume[1]["step"] if resume else 0,
        "steps_per_s": None, "diverged_at_step": None, "error": None,
        "optimizer_state_bytes": None, "param_bytes": None,
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "dlx": __version__},
        **git, "host": socket.gethostname(),
        "pid": os.getpid(), "pid_start": process_start(os.getpid()),  # `lost` if it dies
        "resumed_from_epoch": resume[1]["epoch"] if resume else None,
    }
    source = _learner_source(resolved, run_dir)
    if source:
        summary["source"] = source
    earlier = float((previous or {}).get("wall_time_s") or 0.0) if resume else 0.0
    if resume:
        log.info(f"resuming from the checkpoint after epoch {resume[1]['epoch']}")
    # summary.json (status running) first, then config.yaml: a start cut between the two is
    # recognised as one that never got going (records.store.occupant) and carried on
    try:
        write_json(run_dir / SUMMARY, summary)
        write_bytes(run_dir / CONFIG, OmegaConf.to_yaml(cfg, resolve=True).encode())
        rec = MetricsWriter(run_dir / METRICS, (resume[1]["files"][METRICS], resume[1]["final"],
                                                resume[1]["best"]) if resume else None)
    except OSError as e:  # a full disk: no start at all (an earlier record's files are intact)
        if previous is None:
            for name in (SUMMARY, CONFIG, METRICS):
                (run_dir / name).unlink(missing_ok=True)
        raise Rejected(UsageError(f"cannot start a run in {run_dir}: {e.strerror or e}"),
                       code=1) from None
    start = time.perf_counter()
    handlers = interrupts.install()
    message, phase = "interrupted", "training"
    try:
        try:
            message = _execute(task_for(resolved), resolved, rec, run_dir, resume, summary)
            interrupts.check()  # one swallowed on its way (see dlx.interrupts)
        finally:
            _close(rec, summary)
            summary.update(final=rec.final, best=rec.best, finished_at=_now(),
                           steps=max(summary["steps"] or 0, rec.last_step),
                           wall_time_s=round(earlier + time.perf_counter() - start, 3))
            _write_summary(run_dir, summary)
        phase = "figures"
        if rec.final:
            _plot(run_dir)
        interrupts.check()
        phase = "done"
        if summary["status"] in ("completed", "diverged"):
            checkpoint.remove(run_dir)  # kept only while there is something to resume
    except KeyboardInterrupt:
        summary["status"] = "interrupted"
        if phase == "figures":  # training had ended
            summary["error"] = ("interrupted while drawing the figures (training had ended; "
                                "`dlx plot` draws them)")
        summary.update(finished_at=_now(),
                       wall_time_s=round(earlier + time.perf_counter() - start, 3))
        _write_summary(run_dir, summary)
        message = summary["error"] or "interrupted"
    finally:
        interrupts.restore(handlers)
        threads.release()
    headline = " ".join(f"{k} {rec.final[k]:.4g}" for k in ("val/loss", "val/acc", "val/rmse")
                        if isinstance(rec.final.get(k), float))
    (log.warning if summary["status"] != "completed" else log.info)(
        f"{message}{': ' + headline if headline else ''} ({summary['wall_time_s']:.2f} s)")
    if summary["status"] == "interrupted":
        raise KeyboardInterrupt
    return JobResult(run_dir, summary["status"], message, _objective(resolved, summary))


def _learner_source(resolved: dict, run_dir: Path) -> dict | None:
    """The learner's code this run uses, imported (a launcher's worker has not validated the
    config) and copied into the record: see :func:`dlx.learner.record`."""
    from dlx import learner

    for where, targets in learner.pieces(resolved).items():
        for target in targets.split(","):
            learner.load(target, where)
    return learner.record(resolved, run_dir, learner.GROUPS)


def _close(rec: MetricsWriter, summary: dict) -> None:
    """Close the metrics file; a write that fails now (a full disk) fails the run, said once."""
    try:
        rec.close()
    except OSError as e:
        if summary["status"] != "failed":
            summary.update(status="failed", error=f"cannot write {rec.path}: {e.strerror or e}")


def _write_summary(run_dir: Path, summary: dict) -> None:
    """The summary, if the disk takes it: the run's end is logged either way."""
    try:
        write_json(run_dir / SUMMARY, summary, in_place_if_full=True)
    except OSError as e:
        log.error(f"cannot write {run_dir / SUMMARY}: {e.strerror or e}")


def _execute(task, resolved: dict, rec: MetricsWriter, run_dir: Path, resume, summary: dict) -> str:
    """Run the task, fill ``summary`` with its result and status; return the status message.
    A failure is recorded (a sweep goes on); an interrupt propagates."""
    try:
        summary["threads"] = threads.apply(resolved)  # BLAS/OpenMP/torch pools, before training
        result = task(resolved, rec, run_dir, resume)
        if result.weights:
            with replacing(run_dir / MODEL) as f:
                np.savez(f, **result.weights)
    except UsageError as e:  # an invalid value found only while building (e.g. data on disk)
        summary.update(status="failed", error=str(e))
        return f"failed: {e}"
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            return _failed(e, resolved, run_dir, summary)
        # the disk is full: the machine's state, not a bug to trace (the temporary files the
        # run was writing are gone, so its final status still fits)
        summary.update(status="failed", error=f"{e.strerror} (writing to {e.filename or run_dir})")
        return f"failed: {summary['error']}"
    except Exception as e:  # noqa: BLE001 - any failure is recorded, the sweep goes on
        return _failed(e, resolved, run_dir, summary)
    if result.early_stopping:
        summary["early_stopping"] = result.early_stopping
    summary.update(result.extra)
    if "torch" in sys.modules:
        summary["versions"]["torch"] = sys.modules["torch"].__version__
    summary.update(steps=result.steps, optimizer_state_bytes=result.state_bytes,
                   param_bytes=result.param_bytes,
                   steps_per_s=result.steps / result.train_seconds if result.train_seconds else None)
    if result.diverged_at_step is not None:
        summary.update(status="diverged", diverged_at_step=result.diverged_at_step)
        return f"diverged at step {result.diverged_at_step}: {result.diverged_reason}"
    summary["status"] = "completed"
    return "completed"


def _failed(e: Exception, resolved: dict, run_dir: Path, summary: dict) -> str:
    """A failure of the run's code: recorded with its traceback in run.log; the learner's own
    frames on the console when their code raised."""
    from dlx.learner import pieces, their_frames

    debug = os.environ.get("DLX_DEBUG") == "1"
    log.error("run failed", exc_info=True, extra={"console": debug})
    # the learner's frames only when the run ran the learner's code: anything else that
    # raised is dlx's own failure, whose traceback is in run.log (and on the console with
    # --debug), not a lesson for the learner
    theirs = None if debug or not pieces(resolved) else their_frames(e)
    if theirs:  # the learner's code raised: its frames, on the console
        log.error(theirs)
    summary.update(status="failed", error=f"{type(e).__name__}: {e}")
    return f"failed: {summary['error']} (traceback in {run_dir / 'run.log'})"


def _objective(cfg: dict, summary: dict) -> float:
    """``monitor`` (e.g. ``best:val/loss``, ``final:val/acc``) as a number to minimize: losses
    and errors as they are, accuracies and R^2 negated; +inf unless the run completed."""
    kind, _, key = cfg.get("monitor", "best:val/loss").rpartition(":")
    value = (summary.get(kind or "best") or {}).get(key)
    if summary.get("status") != "completed" or not isinstance(value, (int, float)):
        return float("inf")
    return -float(value) if maximised(key) else float(value)


def _plot(run_dir: Path) -> None:
    """Draw the run's figures. A figure that cannot be drawn is skipped with a warning: the
    run keeps its status (its record is complete without it; `dlx plot` can retry)."""
    from dlx.figures import plot_path

    notes: list[str] = []
    try:
        for path in plot_path(run_dir, notes=notes):
            log.info(f"wrote {path}", extra={"console": False})
    except Exception as e:  # noqa: BLE001
        log.debug("figures failed", exc_info=True)
        notes.append(f"figures not drawn: {type(e).__name__}: {e}")
    for note in notes:
        log.warning(note)
