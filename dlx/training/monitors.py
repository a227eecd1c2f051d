"""What watches or steers a training run, as callbacks handed to the loop (:func:`dlx.training.train`):
the per-layer probe, an experiment's own hooks, timing.csv, the plateau schedule, early stopping
and checkpoints.

A callback may define any of (the loop calls them in the order the callbacks are given):

* ``begin(loop)`` — once, on a fresh start, before the step-0 evaluation;
* ``before_update(loop)`` — before every update (``loop.step`` = updates made so far);
* ``epoch_end(loop, values) -> bool`` — after an epoch's evaluation; True stops training (the
  callbacks after it are not called for that epoch);
* ``end(loop)`` — once, when training ends for any reason;
* ``checkpoint() -> (arrays, meta)`` and ``restore(arrays, meta)`` — its part of a checkpoint.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dlx.data import Dataset
from dlx.errors import UsageError
from dlx.nn.metrics import LOWER_IS_BETTER
from dlx.optim.schedules import ReduceLROnPlateau
from dlx.records.files import LAYER_STATS, TIMING
from dlx.training.backend import Probed, Resumable


def open_table(path: Path, head: str, resume_size: int | None = None):
    """A CSV of the run, line-buffered: new with its ``head``, or — resuming — cut back to the
    size the checkpoint saw and continued."""
    if resume_size is not None and path.is_file():
        with open(path, "r+b") as f:
            f.truncate(resume_size)
        return open(path, "a", buffering=1)
    f = open(path, "w", buffering=1)
    f.write(head)
    return f


class Callback:
    """The hooks of the training loop; each does nothing unless a subclass says otherwise."""

    name = "callback"

    def begin(self, loop) -> None: ...

    def before_update(self, loop) -> None: ...

    def epoch_end(self, loop, values: dict[str, float]) -> bool:
        return False

    def end(self, loop) -> None: ...

    def checkpoint(self) -> tuple[dict[str, np.ndarray], dict]:
        return {}, {}

    def restore(self, arrays: dict[str, np.ndarray], meta: dict) -> None: ...


class Probe(Callback):
    """Per-layer statistics every ``probe_every`` steps (0: at initialization only; null: never)
    on a fixed batch of the first ``probe_batch`` training examples, into layer_stats.csv."""

    STATS = ("z_std", "act_std", "grad_z_norm", "grad_W_norm")

    def __init__(self, cfg, data: Dataset, backend, run_dir: Path | None,
                 resume_size: int | None = None):
        self.every = cfg.get("probe_every")
        self.file = None
        if self.every is None or run_dir is None or not isinstance(backend, Probed):
            return
        n = cfg.get("probe_batch", 512)
        self.X, self.y, self.backend = data.X_train[:n], data.y_train[:n], backend
        self.file = open_table(run_dir / LAYER_STATS, "step,layer,stat,value\n", resume_size)

    name = "probe"

    def begin(self, loop) -> None:
        self(0)

    def before_update(self, loop) -> None:
        if loop.step:
            self(loop.step)

    def end(self, loop) -> None:
        self.close()

    def checkpoint(self):
        return {}, {"size": self.file.tell() if self.file is not None else 0}

    def __call__(self, step: int) -> None:
        if self.file is None or (step and (not self.every or step % self.every)):
            return
        for row in self.backend.layer_stats(self.X, self.y):
            for stat in self.STATS:
                if stat in row:
                    self.file.write(f"{step},{row['layer']},{stat},{row[stat]!r}\n")

    def close(self) -> None:
        if self.file is not None and not self.file.closed:
            self.file.close()


class EarlyStopping(Callback):
    """Stop when ``monitor`` (e.g. val/loss) has not improved by ``min_delta`` for ``patience``
    epochs; the best weights are restored. Losses and errors (rmse, mae) are minimized,
    accuracies and R^2 maximized."""

    def __init__(self, patience: int | None, monitor: str, min_delta: float):
        lower = LOWER_IS_BETTER.get(monitor.rpartition("/")[2])  # rmse, mae: lower; r2: higher
        sign = None if lower is None else 1.0 if lower else -1.0
        if patience is not None and sign is None:
            raise UsageError(f"early_stopping.monitor must be a split/loss, split/acc (or, for "
                             f"regression, split/rmse, mae, r2) metric, got {monitor!r}")
        self.patience, self.monitor, self.min_delta, self.sign = patience, monitor, min_delta, sign
        self.best, self.best_epoch, self.best_state, self.stopped_at = math.inf, None, None, None

    def check(self, epoch: int, values: dict[str, float], backend) -> bool:
        """Record this epoch; True when training should stop."""
        if self.patience is None:
            return False
        score = self.sign * values[self.monitor]
        if score < self.best - self.min_delta:
            self.best, self.best_epoch, self.best_state = score, epoch, backend.state_dict()
        elif epoch - self.best_epoch >= self.patience:
            self.stopped_at = epoch
            return True
        return False

    name = "early_stopping"

    def epoch_end(self, loop, values: dict[str, float]) -> bool:
        if not self.check(loop.epoch, values, loop.backend):
            return False
        loop.progress.epoch_end(f"early stopping: no {self.monitor} improvement for "
                                f"{self.patience} epochs; best weights (epoch "
                                f"{self.best_epoch}) restored")
        loop.backend.load_state_dict(self.best_state)
        return True

    def checkpoint(self):
        return dict(self.best_state or {}), {"best": self.best, "best_epoch": self.best_epoch}

    def restore(self, arrays: dict, meta: dict) -> None:
        self.best, self.best_epoch = meta["best"], meta["best_epoch"]
        self.best_state = dict(arrays) or None

    def summary(self) -> dict:
        if self.patience is None:
            return {}
        return {"monitor": self.monitor, "best_epoch": self.best_epoch,
                "best_value": self.sign * self.best if self.best_epoch is not None else None,
                "stopped_at_epoch": self.stopped_at}


class Hooks(Callback):
    """An experiment's own measurements: ``hook(step, backend)`` before training and before
    every update."""

    name = "hooks"

    def __init__(self, hooks: list):
        self.hooks = hooks

    def begin(self, loop) -> None:
        for hook in self.hooks:
            hook(0, loop.backend)

    def before_update(self, loop) -> None:
        if loop.step:
            for hook in self.hooks:
                hook(loop.step, loop.backend)


class Timing(Callback):
    """timing.csv: wall-clock training time at each epoch's end, evaluations not counted (kept
    out of metrics.csv, which must be byte-identical for one config and seed)."""

    name = "timing"

    def __init__(self, run_dir: Path, resume_size: int | None = None):
        self.file = open_table(run_dir / TIMING, "epoch,step,seconds\n0,0,0.0\n", resume_size)

    def epoch_end(self, loop, values) -> bool:
        self.file.write(f"{loop.epoch},{loop.step},{loop.train_seconds():.6f}\n")
        return False

    def end(self, loop) -> None:
        self.file.close()

    def checkpoint(self):
        return {}, {"size": self.file.tell()}


class Checkpointer(Callback):
    """checkpoint.npz after every epoch but the last: the loop, the backend (weights, optimizer,
    dropout generator) and every callback's part — all a resumed run needs to continue exactly."""

    name = "checkpointer"

    def __init__(self, run_dir: Path, config_key: str, callbacks: list):
        self.run_dir, self.config_key, self.callbacks = run_dir, config_key, callbacks

    def epoch_end(self, loop, values) -> bool:
        if loop.epoch < loop.epochs:
            self.save(loop)
        return False

    def save(self, loop) -> None:
        from dlx.records import checkpoint
        from dlx.records.files import METRICS

        arrays, backend_meta = loop.backend.checkpoint_state()
        parts = {}
        for cb in self.callbacks:
            cb_arrays, parts[cb.name] = cb.checkpoint()
            arrays.update({f"cb.{cb.name}.{k}": v for k, v in cb_arrays.items()})
        checkpoint.save(self.run_dir, arrays, {
            "config_key": self.config_key, "step": loop.step, "epoch": loop.epoch,
            "final": loop.rec.final, "best": loop.rec.best, "files": {METRICS: loop.rec.tell()},
            "loop": loop.checkpoint_meta(), "backend": backend_meta, "callbacks": parts})


class Plateau(Callback):
    """Feeds a ReduceLROnPlateau schedule its metric at each epoch's end, so that the lr the
    loop pushes in the next epoch is the reduced one; its state is part of a checkpoint."""

    name = "plateau"

    def __init__(self, schedule: ReduceLROnPlateau):
        self.schedule = schedule

    def epoch_end(self, loop, values) -> bool:
        self.schedule.step(values[self.schedule.monitor])
        return False

    def checkpoint(self):
        return {}, self.schedule.state_dict()

    def restore(self, arrays: dict, meta: dict) -> None:
        self.schedule.load_state_dict(meta)


def for_run(cfg, loop, hooks: list | None, resume, checkpoint: bool,
            schedule=None) -> list[Callback]:
    """The callbacks of a run, in the order they act: probe, the experiment's hooks, timing,
    the plateau schedule (if ``schedule`` is one), early stopping, checkpoints."""
    from dlx.records import checkpoint as ckpt

    parts = resume[1]["callbacks"] if resume else {}

    def size(name: str) -> int | None:  # how much of its file the checkpoint had seen
        return parts.get(name, {}).get("size")

    es = cfg["early_stopping"]
    callbacks: list[Callback] = [Probe(cfg, loop.data, loop.backend, loop.run_dir, size("probe"))]
    if hooks:
        callbacks.append(Hooks(hooks))
    if loop.run_dir is not None:
        callbacks.append(Timing(loop.run_dir, size("timing") if resume else None))
    if isinstance(schedule, ReduceLROnPlateau):
        callbacks.append(Plateau(schedule))
    callbacks.append(EarlyStopping(es["patience"], es["monitor"], es["min_delta"]))
    if checkpoint and loop.run_dir is not None and isinstance(loop.backend, Resumable):
        callbacks.append(Checkpointer(loop.run_dir, ckpt.config_key(dict(cfg)), list(callbacks)))
    return callbacks


def restore(loop, callbacks: list[Callback], resume) -> None:
    """Put the loop, its backend and its callbacks back where a checkpoint left them."""
    arrays, meta = resume
    loop.restore(meta["loop"])
    loop.backend.restore(arrays, meta["backend"])
    for cb in callbacks:
        prefix = f"cb.{cb.name}."
        cb.restore({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)},
                   meta["callbacks"].get(cb.name, {}))


def early_stopping_summary(callbacks: list[Callback]) -> dict:
    return next((cb.summary() for cb in callbacks if isinstance(cb, EarlyStopping)), {})
