"""One job: set up the run directory's record, train, decide the status, write summary and plots.

Statuses (summary.json ``status``): ``completed``; ``diverged`` (a result, not an error: training
stopped at a non-finite or exploding loss, metrics and plots are kept); ``failed`` (an exception:
traceback in run.log, ``error`` in the summary); ``interrupted`` (Ctrl-C or SIGTERM). A failure
is recorded, never raised, so one member of a sweep cannot stop the others; an interrupt is
recorded and then re-raised, so Ctrl-C stops a whole sweep.
"""

from __future__ import annotations

import json
import logging
import platform
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

import dlx
from dlx import threads
from dlx.errors import UsageError
from dlx.records import checkpoint
from dlx.records.metrics import MetricsWriter
from dlx.records.store import CONFIG, METRICS, SUMMARY, write_json

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
    root = Path(dlx.__file__).resolve().parent.parent
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


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


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
    from dlx.experiments import task_for  # after logging is configured

    resolved = OmegaConf.to_container(cfg, resolve=True)
    previous = _previous(run_dir, resolved)
    if previous is not None and previous.get("status") == "completed":  # a re-run sweep
        log.info(f"{run_dir.name}: already completed with this config; skipped")
        return JobResult(run_dir, "completed", "skipped (already completed)",
                         _objective(resolved, previous))
    resume = checkpoint.load(run_dir, resolved) if previous is not None else None
    (run_dir / CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
    summary = {
        "run_id": run_dir.name, "status": "running", "experiment": resolved["name"],
        "backend": resolved["backend"],
        "overrides": overrides, "seed": resolved["seed"], "final": {}, "best": {},
        "started_at": _now(), "finished_at": None, "wall_time_s": None, "steps": 0,
        "steps_per_s": None, "diverged_at_step": None, "error": None,
        "optimizer_state_bytes": None, "param_bytes": None,
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "dlx": dlx.__version__},
        **_git_info(), "host": socket.gethostname(),
        "resumed_from_epoch": resume[1]["epoch"] if resume else None,
    }
    if resume:
        log.info(f"resuming from the checkpoint after epoch {resume[1]['epoch']}")
    write_json(run_dir / SUMMARY, summary)
    start = time.perf_counter()
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
    rec = MetricsWriter(run_dir / METRICS, (resume[1]["files"]["metrics.csv"], resume[1]["final"],
                                            resume[1]["best"]) if resume else None)
    interrupted = False
    try:
        summary["threads"] = threads.apply(resolved)  # BLAS/OpenMP/torch pools, before training
        result = task_for(resolved)(resolved, rec, run_dir, resume)
        if result.weights:
            np.savez(run_dir / "model.npz", **result.weights)
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
            message = f"diverged at step {result.diverged_at_step}: {result.diverged_reason}"
        else:
            summary["status"] = "completed"
            message = "completed"
    except KeyboardInterrupt:
        interrupted = True
        summary["status"], message = "interrupted", "interrupted"
    except UsageError as e:  # an invalid value in one member of a sweep
        summary.update(status="failed", error=str(e))
        message = f"failed: {e}"
    except Exception as e:  # noqa: BLE001 - any failure is recorded, the sweep goes on
        log.error("run failed", exc_info=True, extra={"console": False})
        summary.update(status="failed", error=f"{type(e).__name__}: {e}")
        message = f"failed: {summary['error']} (traceback in {run_dir / 'run.log'})"
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        rec.close()
    summary.update(final=rec.final, best=rec.best, finished_at=_now(),
                   wall_time_s=round(time.perf_counter() - start, 3))
    if summary["status"] in ("completed", "diverged"):
        checkpoint.remove(run_dir)  # kept only while there is something to resume
    write_json(run_dir / SUMMARY, summary)
    if rec.final:
        message = _plot(run_dir, summary, message)
    headline = " ".join(f"{k} {rec.final[k]:.4g}" for k in ("val/loss", "val/acc") if k in rec.final)
    (log.warning if summary["status"] != "completed" else log.info)(
        f"{message}{': ' + headline if headline else ''} ({summary['wall_time_s']:.2f} s)")
    if interrupted:
        raise KeyboardInterrupt
    return JobResult(run_dir, summary["status"], message, _objective(resolved, summary))


def _objective(cfg: dict, summary: dict) -> float:
    """``monitor`` (e.g. ``best:val/loss``, ``final:val/acc``) as a number to minimize: losses
    as they are, accuracies negated; +inf unless the run completed."""
    kind, _, key = cfg.get("monitor", "best:val/loss").rpartition(":")
    value = (summary.get(kind or "best") or {}).get(key)
    if summary.get("status") != "completed" or not isinstance(value, (int, float)):
        return float("inf")
    return -float(value) if "acc" in key else float(value)


def _plot(run_dir: Path, summary: dict, message: str) -> str:
    """Draw the run's figures; a plotting failure fails the run (the figures are its output)."""
    from dlx.plots import plot_path

    try:
        for path in plot_path(run_dir):
            log.info(f"wrote {path}", extra={"console": False})
    except KeyboardInterrupt:
        log.warning("plots skipped (interrupted); `dlx plot` remakes them")
    except Exception as e:  # noqa: BLE001
        log.error("plotting failed", exc_info=True, extra={"console": False})
        summary.update(status="failed", error=f"plotting failed: {type(e).__name__}: {e}")
        write_json(run_dir / SUMMARY, summary)
        return f"failed: {summary['error']}"
    return message
