"""The training loop: (data, model, optimizer, schedule, regularizer) -> metrics, as a config says.

The loop is the same for both backends; a backend (:mod:`dlx.training.backend`) does the
arithmetic, and callbacks (:mod:`dlx.training.monitors`) watch. Seeds: one ``seed`` spawns
independent streams for the data, the initial weights, the batch order and dropout, so that
changing e.g. the batch size changes neither the data nor the initial weights.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from dlx.assemble import base_lr, build_data, build_schedule, rngs
from dlx.data import Dataset
from dlx.data.text import stream_order
from dlx.errors import UsageError
from dlx.nn.metrics import names
from dlx.records.metrics import MetricsWriter
from dlx.records.progress import Progress
from dlx.training.backend import Backend, make_backend
from dlx.training.monitors import early_stopping_summary, for_run, restore


@dataclass
class TrainResult:
    steps: int
    train_seconds: float
    diverged_at_step: int | None
    diverged_reason: str | None
    state_bytes: int
    param_bytes: int
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    early_stopping: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # task-specific results for summary.json


class Loop:
    """The state of one training run, shared with its callbacks: the data, the backend, the
    recorder, and where the run is (``step`` = updates made, ``epoch``)."""

    def __init__(self, cfg: Mapping[str, Any], data: Dataset, backend: Backend, rec: MetricsWriter,
                 run_dir: Path | None):
        self.cfg, self.data, self.backend, self.rec, self.run_dir = cfg, data, backend, rec, run_dir
        n = len(data.X_train)
        self.batch_size = min(cfg["batch_size"] or n, n)
        self.steps_per_epoch = math.ceil(n / self.batch_size)
        if data.stream:  # B contiguous streams of n // B windows: one batch per window
            if min(n, len(data.X_val)) < self.batch_size:
                raise UsageError(f"dataset.stream=true: batch_size {self.batch_size} streams need "
                                 f"at least that many windows in each split (train {n}, "
                                 f"validation {len(data.X_val)})")
            self.steps_per_epoch = n // self.batch_size
        max_steps = cfg.get("max_steps")  # a budget in updates: epochs follow from it
        self.epochs = math.ceil(max_steps / self.steps_per_epoch) if max_steps else cfg["epochs"]
        self.total_steps = max_steps or self.epochs * self.steps_per_epoch
        streams = rngs(cfg["seed"])
        self.order_rng, self.eval_rng = streams["batches"], streams["eval"]
        # batches per evaluation of each split (None: all of it); the test split is always whole
        sampled = cfg.get("eval") or {}
        self.eval_batches = {"train": sampled.get("train_batches"), "val": sampled.get("val_batches")}
        self.step, self.epoch, self.initial_loss = 0, 0, math.nan
        self.diverged_at, self.reason, self.evaluated_at = None, None, None
        self.progress: Progress | None = None
        self.start: dict[str, str] = {}  # fingerprints of the starting point (see fingerprint)
        self._started, self._eval_seconds = time.perf_counter(), 0.0

    def evaluate(self) -> dict[str, float]:
        """Log train/val loss and the task's metrics (accuracy; RMSE, MAE, R^2 for regression)
        and the weight norm at (step, epoch)."""
        t, data = time.perf_counter(), self.data
        values, metrics = {}, ("loss", *names(data.spec.task))
        for split, X, y in (("train", data.X_train, data.y_train), ("val", data.X_val, data.y_val)):
            if not len(X):  # no validation split: the refit on every fold (dataset.fold=null)
                continue
            k = self.eval_batches[split]
            if k is None or k * self.batch_size >= len(X):
                values.update(zip((f"{split}/{m}" for m in metrics), self.backend.evaluate(X, y)))
                continue
            # an estimate, as nanoGPT's estimate_loss: k batches drawn afresh, from a stream of
            # their own (training's batch order is the same whatever is evaluated)
            idx = self.eval_rng.choice(len(X), k * self.batch_size, replace=False)
            losses: list[float] = []
            values.update(zip((f"{split}/{m}" for m in metrics), self.backend.evaluate(
                X[idx], y[idx], chunk=self.batch_size, losses=losses)))
            if k > 1:
                values[f"{split}/loss_se"] = float(np.std(losses, ddof=1) / math.sqrt(k))
        values["model/weight_norm"] = self.backend.weight_norm()
        for key, value in values.items():
            self.rec.log(self.step, self.epoch, *key.split("/"), value)
        self.evaluated_at, self._eval_seconds = self.step, self._eval_seconds + time.perf_counter() - t
        return values

    def sampled(self) -> dict[str, str]:
        """How the evaluations estimated each split they did not score whole (summary.json)."""
        sizes, b = {"train": len(self.data.X_train), "val": len(self.data.X_val)}, self.batch_size
        out = {}
        for split, k in self.eval_batches.items():
            n = sizes[split]
            if k is None or not n:
                continue
            out[split] = (f"whole: {k} batches of {b} cover its {n} examples" if k * b >= n else
                          f"{k} batch{'es' if k > 1 else ''} of {b} of its {n} examples, drawn "
                          f"afresh at each evaluation; " + (
                              f"{split}/loss_se is the loss's standard error" if k > 1 else
                              "one batch: no standard error"))
        return out

    def start_clock(self, offset: float = 0.0) -> None:
        self._started, self._eval_seconds = time.perf_counter() - offset, 0.0

    def train_seconds(self) -> float:
        """Wall-clock time spent training so far (evaluations are not counted)."""
        return time.perf_counter() - self._started - self._eval_seconds

    def run_epoch(self, lr_at, callbacks: list) -> bool:
        """One pass over the shuffled training set (or what is left of the step budget); False
        if the loss diverged (non-finite, or divergence_factor x the initial loss)."""
        data, limit = self.data, self.cfg["divergence_factor"] * max(self.initial_loss, 1e-12)
        if data.stream:  # the text in order, B streams side by side; a new epoch, a new state
            order = stream_order(len(data.X_train), self.batch_size)
            self.backend.reset_state()
        else:
            order = self.order_rng.permutation(len(data.X_train))
        for b in range(min(self.steps_per_epoch, self.total_steps - self.step)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            if self.step == 0:
                self.start["first_batch_sha256"] = fingerprint(data.X_train[idx], data.y_train[idx])
            lr = lr_at(self.step)
            for cb in callbacks:
                cb.before_update(self)
            # rows of this update are at step + 1; `step` counts it once it is made
            loss, penalty = self.backend.forward(data.X_train[idx], data.y_train[idx])
            self.rec.log(self.step + 1, self.epoch, "batch", "loss", loss)
            self.rec.log(self.step + 1, self.epoch, "batch", "lr", lr)
            if penalty:
                self.rec.log(self.step + 1, self.epoch, "batch", "penalty", penalty)
            # the data loss runs away when training diverges; a penalty is large by design
            if not math.isfinite(loss + penalty) or loss > limit:
                self.step += 1
                self.diverged_at = self.step
                self.reason = (f"loss {loss + penalty:.3g} is not finite"
                               if not math.isfinite(loss + penalty) else
                               f"loss {loss:.3g} > {self.cfg['divergence_factor']:g} x the "
                               f"initial loss {self.initial_loss:.3g}")
                return False
            self.backend.update(lr)
            norm = getattr(self.backend, "grad_norm", None)  # set when clipping is on
            if norm is not None:
                self.rec.log(self.step + 1, self.epoch, "batch", "grad_norm", norm)
            self.step += 1
            self.progress.step(self.step, self.epoch, loss)
        return True

    def checkpoint_meta(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "initial_loss": self.initial_loss,
                "rng_batches": self.order_rng.bit_generator.state,
                "rng_eval": self.eval_rng.bit_generator.state,
                "train_seconds": self.train_seconds(), "start": self.start}

    def restore(self, meta: dict) -> None:
        self.step, self.epoch, self.initial_loss = meta["step"], meta["epoch"], meta["initial_loss"]
        self.start = dict(meta.get("start") or {})
        self.order_rng.bit_generator.state = meta["rng_batches"]
        if "rng_eval" in meta:  # checkpoints written before eval.*_batches existed drew none
            self.eval_rng.bit_generator.state = meta["rng_eval"]


def train(cfg: Mapping[str, Any], rec: MetricsWriter, progress_mode: str = "auto",
          run_dir: Path | None = None, hooks: list | None = None, backend: Backend | None = None,
          resume: tuple | None = None, checkpoint: bool = False) -> TrainResult:
    """Train as ``cfg`` (a plain, resolved config dict) says, logging every value to ``rec``.

    Logged per step: ``batch/loss`` (before the update), ``batch/lr``, ``batch/penalty`` (if a
    regularizer is active), ``batch/grad_norm`` (the global gradient norm before clipping, if
    ``clip_grad_norm`` or ``clip_grad_value`` is set). Per epoch, and once before training (step 0, epoch 0):
    ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``model/weight_norm``; again where
    training diverged or was interrupted. A split is scored whole, or with ``eval.train_batches``
    / ``eval.val_batches`` = K estimated on K random batches (plus ``train/loss_se``). At the
    end, for data sets with a test split: ``test/loss``, ``test/acc``. Regression logs
    ``rmse``, ``mae``, ``r2`` in place of ``acc``.

    What watches the run are callbacks (:mod:`dlx.training.monitors`): the per-layer probe, the
    experiment's ``hooks`` (``hook(step, backend)`` before training and before every update),
    timing.csv, early stopping and, with ``checkpoint``, checkpoint.npz after every epoch;
    ``resume`` (a loaded checkpoint) continues exactly. ``backend`` may be given ready-made.
    """
    data = build_data(cfg) if backend is None else backend.data
    backend = make_backend(cfg, data) if backend is None else backend
    loop = Loop(cfg, data, backend, rec, run_dir)
    lr_at = build_schedule(cfg["schedule"], base_lr(cfg["optimizer"]), loop.total_steps)
    callbacks = for_run(cfg, loop, hooks, resume, checkpoint, lr_at)
    if resume:  # continue exactly where the checkpoint left off
        restore(loop, callbacks, resume)
    else:
        for cb in callbacks:
            cb.begin(loop)
        loop.start["params_sha256"] = fingerprint(*backend.state_dict().values())
        loop.initial_loss = loop.evaluate()["train/loss"]
    loop.start_clock(resume[1]["loop"]["train_seconds"] if resume else 0.0)
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
                Progress(progress_mode, loop.total_steps, loop.epochs, cfg["name"]) as loop.progress:
            for loop.epoch in range(loop.epoch + 1, loop.epochs + 1):  # noqa: B020 - the loop's epoch
                if not loop.run_epoch(lr_at, callbacks):
                    break
                values = loop.evaluate()
                loop.progress.epoch_end(f"epoch {loop.epoch}/{loop.epochs} step {loop.step}: "
                                        + " ".join(f"{k} {v:.4g}" for k, v in values.items()))
                if any(cb.epoch_end(loop, values) for cb in callbacks):  # in order; first stops
                    break
    except KeyboardInterrupt:
        if loop.evaluated_at != loop.step:  # the record ends with the model as it was stopped
            with np.errstate(all="ignore"):
                loop.evaluate()
        raise
    finally:
        for cb in callbacks:
            cb.end(loop)
    seconds = loop.train_seconds()
    with np.errstate(all="ignore"):
        if loop.diverged_at is not None:  # ...and with the model where it diverged
            loop.evaluate()
        elif data.X_test is not None:  # once, at the end: never for choices
            for key, value in zip(("loss", *names(data.spec.task)),
                                  backend.evaluate(data.X_test, data.y_test)):
                rec.log(loop.step, loop.epoch, "test", key, value)
    return TrainResult(loop.step, seconds, loop.diverged_at, loop.reason, backend.state_bytes(),
                       backend.param_bytes(), backend.state_dict(),
                       early_stopping_summary(callbacks),
                       extra={**backend.sizes(), **({"data": data.description}
                                                    if data.description else {}),
                              "start": loop.start,
                              **({"evaluation": sampled} if (sampled := loop.sampled()) else {})})


def fingerprint(*arrays) -> str:
    """sha256 of arrays' shapes, dtypes and bytes, in order: two runs whose initial weights (or
    first batch) have the same fingerprint started from the same point, whatever the names of
    their parameters (a learner's model beside dlx's)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()

