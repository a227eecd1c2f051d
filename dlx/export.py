"""`dlx export RUN... --tensorboard DIR`: runs' metrics as TensorBoard event files.

metrics.csv stays the record: the events are a copy for the tools learners already use, every
row as the scalar ``split/metric`` at its step. TensorBoard keeps scalars as float32, so the
copy is exact to float32 (about 7 digits). The writer is tensorboardX (`pip install
'dlx[tensorboard]'`): 90 kB and protobuf, against TensorBoard's 5.5 MB and its server's
dependencies (grpcio alone is 7 MB). Wall times, which metrics.csv never holds, come from
summary.json's start and timing.csv (seconds at each epoch's end), interpolated between epochs.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from dlx.errors import UsageError
from dlx.records.store import (
    TIMING,
    check_dir,
    differing,
    is_sweep,
    read_metrics,
    read_overrides,
    read_summary,
    sweep_members,
)

EXTRA = "pip install 'dlx[tensorboard]'"
EVENTS = "events.out.tfevents.*"


def summary_writer():
    """tensorboardX's SummaryWriter, or a UsageError naming the extra that installs it."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise UsageError(f"--tensorboard needs tensorboardX, which is not installed ({EXTRA})") \
            from None
    return SummaryWriter


def _label(job: str, overrides: list[str]) -> str:
    """A member's folder: its job number and what differs, e.g. ``1-optimizer=adam-seed=0``
    (TensorBoard lists runs by folder)."""
    text = "-".join([job, *overrides])
    return re.sub(r"[^A-Za-z0-9._=,+\[\]-]", "_", text)[:120]


def targets(paths: list[Path], out: Path) -> list[tuple[Path, Path]]:
    """(run directory, its folder under ``out``) for every run given and every sweep member."""
    pairs: dict[Path, Path] = {}
    for path in paths:
        path = check_dir(path)
        if is_sweep(path):
            members = sweep_members(path)
            if not members:
                raise UsageError(f"{path}: a sweep with no members yet")
            labels = differing([read_overrides(m) for m in members])
            for member, diff in zip(members, labels):
                pairs.setdefault(member.resolve(), out / path.name / _label(member.name, diff))
        else:
            pairs.setdefault(path.resolve(), out / path.name)
    return list(pairs.items())


def _walltimes(run_dir: Path, steps):
    """Seconds since the epoch for each step: the run's start plus the training time at that
    step (timing.csv, interpolated); the start alone without timing.csv."""
    import numpy as np
    import pandas as pd

    try:
        started = datetime.fromisoformat(read_summary(run_dir)["started_at"]).timestamp()
    except (KeyError, TypeError, ValueError):
        started = (run_dir / "metrics.csv").stat().st_mtime
    timing = run_dir / TIMING
    if not timing.is_file():
        return np.full(len(steps), started)
    t = pd.read_csv(timing)
    return started + np.interp(steps, t["step"].to_numpy(float), t["seconds"].to_numpy(float))


def export_tensorboard(paths: list[Path], out: Path, overwrite: bool = False) -> list[Path]:
    """Write each run's (each sweep member's) metrics as event files under ``out``; return the
    folders written. Everything is read and checked before anything is written."""
    from dlx.writable import check_dir as check_writable

    pairs = targets(paths, out)  # the paths first: a mistake in them is named with or without
    writer_cls = summary_writer()  # the extra
    check_writable(out, create_parents=True)
    tables = [(run, folder, read_metrics(run)) for run, folder in pairs]
    for _, folder, _ in tables:
        old = sorted(folder.glob(EVENTS)) if folder.is_dir() else []
        if old and not overwrite:
            raise UsageError(f"{folder} already holds TensorBoard events (--overwrite replaces "
                             "them, or choose another DIR)")
    written = []
    for run, folder, metrics in tables:
        for old in folder.glob(EVENTS) if folder.is_dir() else []:
            old.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        walltimes = _walltimes(run, metrics["step"].to_numpy())
        writer = writer_cls(logdir=str(folder), max_queue=1000, flush_secs=3600)
        try:
            for (step, split, metric, value), wall in zip(
                    metrics[["step", "split", "metric", "value"]].itertuples(index=False),
                    walltimes):
                writer.add_scalar(f"{split}/{metric}", float(value), int(step), float(wall))
        finally:
            writer.close()
        written.append(folder)
    return written
