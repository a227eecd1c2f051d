"""The training loop: (data, model, optimizer, schedule, regularizer) -> metrics, as a config says.

The loop is the same for both backends; a backend (:class:`NumpyBackend`, or the torch one in
:mod:`dlx.torch_backend`) does the arithmetic. Seeds: one ``seed`` spawns independent streams for
the data, the initial weights, the batch order and dropout, so that changing e.g. the batch size
changes neither the data nor the initial weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from dlx.assemble import (
    base_lr,
    build_data,
    build_model_for,
    build_optimizer,
    build_regularizer,
    build_schedule,
    rngs,
)
from dlx.data import Dataset
from dlx.monitors import EarlyStopping, Probe
from dlx.nn import accuracy, loss_for
from dlx.records import checkpoint as ckpt
from dlx.records.files import LAYER_STATS, METRICS, TIMING
from dlx.records.metrics import MetricsWriter
from dlx.records.progress import Progress

EVAL_CHUNK = 8192  # rows per forward pass when evaluating (bounds memory on big data sets)
class NumpyBackend:
    """The from-scratch backend: hand-written forward and backward, our optimizers."""

    def __init__(self, cfg: Mapping[str, Any], data: Dataset):
        self.data = data
        streams = rngs(cfg["seed"])
        self.dropout_rng = streams["dropout"]  # the model's dropout masks: part of a checkpoint
        self.model = build_model_for(cfg, data, streams)
        self.params = self.model.parameters()
        self.loss_fn = loss_for(data.n_classes, data.seq_len is not None)
        self.opt = build_optimizer(cfg["optimizer"], self.params)
        self.reg = build_regularizer(cfg["regularizer"])

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mini-batch loss and penalty at the current weights (keeps what update() needs)."""
        self.opt.zero_grad()
        loss = self.loss_fn.forward(self.model.forward(x), y)
        return loss, self.reg.penalty(self.params) if self.reg.active else 0.0

    def update(self, lr: float) -> None:
        """Backward through the last forward, then one optimizer step at learning rate lr."""
        self.model.backward(self.loss_fn.backward())
        self.reg.add_grad(self.params)
        self.opt.lr = lr
        self.opt.step()
        self.reg.after_step(self.params, lr)

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mean loss and accuracy over (X, y), in eval mode, in chunks."""
        self.model.eval()
        total_loss, correct = 0.0, 0
        chunk = EVAL_CHUNK // (X.shape[1] if X.ndim == 2 and X.dtype.kind == "i" else 1)
        for start in range(0, len(X), chunk):  # token data: EVAL_CHUNK tokens, not sequences
            xb, yb = X[start:start + chunk], y[start:start + chunk]
            logits = self.model.forward(xb)
            total_loss += self.loss_fn.forward(logits, yb) * len(xb)
            correct += accuracy(logits, yb) * len(xb)
        self.model.train()
        return total_loss / len(X), correct / len(X)

    def weight_norm(self) -> float:
        return math.sqrt(sum(float(np.square(p.data, dtype=np.float64).sum())
                             for p in self.params if p.decay))

    def layer_stats(self, X: np.ndarray, y: np.ndarray) -> list[dict]:
        from dlx.nn.probe import layer_stats

        return layer_stats(self.model, self.loss_fn, X, y)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.model.state_dict().items()}

    def load_state_dict(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.model.load_state_dict(arrays)

    def state_bytes(self) -> int:
        return self.opt.state_bytes()

    def checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Weights, optimizer state and the dropout generator: all a resumed run needs."""
        arrays = {f"w.{k}": v for k, v in self.model.state_dict().items()}
        opt_arrays, opt_meta = self.opt.state_dict()
        arrays.update({f"o.{k}": v for k, v in opt_arrays.items()})
        return arrays, {"optimizer": opt_meta,
                        "dropout_rng": self.dropout_rng.bit_generator.state}

    def restore(self, arrays: Mapping[str, np.ndarray], meta: dict) -> None:
        self.model.load_state_dict({k[2:]: v for k, v in arrays.items() if k.startswith("w.")})
        self.opt.load_state_dict({k[2:]: v for k, v in arrays.items() if k.startswith("o.")},
                                 meta["optimizer"])
        self.dropout_rng.bit_generator.state = meta["dropout_rng"]

    def param_bytes(self) -> int:
        return sum(p.data.nbytes for p in self.params)


def make_backend(cfg: Mapping[str, Any], data: Dataset):
    if cfg["backend"] == "torch":
        from dlx.torch_backend import TorchBackend

        return TorchBackend(cfg, data)
    return NumpyBackend(cfg, data)


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


def train(cfg: Mapping[str, Any], rec: MetricsWriter, progress_mode: str = "auto",
          run_dir: Path | None = None, hooks: list | None = None, backend=None,
          resume: tuple | None = None, checkpoint: bool = False) -> TrainResult:
    """Train as ``cfg`` (a plain, resolved config dict) says, logging every value to ``rec``.

    Logged per step: ``batch/loss`` (before the update), ``batch/lr``, ``batch/penalty`` (if a
    regularizer is active). Per epoch, and once before training (step 0, epoch 0):
    ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``model/weight_norm``. At the
    end, for data sets with a test split: ``test/loss``, ``test/acc``.

    In ``run_dir``: timing.csv (wall-clock training time per epoch; kept out of metrics.csv,
    which must be byte-identical for the same config and seed), layer_stats.csv (with
    ``probe_every``) and, with ``checkpoint``, checkpoint.npz after every epoch; ``resume`` (a
    loaded checkpoint) continues from it exactly. ``backend`` (with its ``data``) may be given
    ready-made. ``hooks`` are called as ``hook(step, backend)`` before training and before
    every update (an experiment's own measurements).
    """
    order_rng = rngs(cfg["seed"])["batches"]
    data = build_data(cfg) if backend is None else backend.data
    backend = make_backend(cfg, data) if backend is None else backend
    es = cfg["early_stopping"]
    stopper = EarlyStopping(es["patience"], es["monitor"], es["min_delta"])

    n = len(data.X_train)
    batch_size = min(cfg["batch_size"] or n, n)
    steps_per_epoch = math.ceil(n / batch_size)
    epochs = cfg["epochs"]
    max_steps = cfg.get("max_steps")  # a budget in updates: epochs follow from it
    if max_steps:
        epochs = math.ceil(max_steps / steps_per_epoch)
    total_steps = max_steps or epochs * steps_per_epoch
    lr_at = build_schedule(cfg["schedule"], base_lr(cfg["optimizer"]), total_steps)

    evaluated_at = [None]  # the step of the latest evaluation

    def log_epoch(step: int, epoch: int) -> dict[str, float]:
        evaluated_at[0] = step
        values = {}
        for split, X, y in (("train", data.X_train, data.y_train), ("val", data.X_val, data.y_val)):
            values[f"{split}/loss"], values[f"{split}/acc"] = backend.evaluate(X, y)
        values["model/weight_norm"] = backend.weight_norm()
        for key, value in values.items():
            split, metric = key.split("/")
            rec.log(step, epoch, split, metric, value)
        return values

    files = (resume[1]["files"] if resume else {})
    probe = Probe(cfg, data, backend, run_dir, files.get(LAYER_STATS))
    hooks = [lambda step, _backend: probe(step), *(hooks or [])]
    clock = None
    if run_dir is not None:
        if resume:
            ckpt.truncate(run_dir / TIMING, files[TIMING])
        clock = open(run_dir / TIMING, "a" if resume else "w", buffering=1)
        if not resume:
            clock.write("epoch,step,seconds\n0,0,0.0\n")
    if resume:  # continue exactly where the checkpoint left off
        arrays, meta = resume
        backend.restore(arrays, meta["backend"])
        order_rng.bit_generator.state = meta["rng_batches"]
        step, first_epoch, initial_loss = meta["step"], meta["epoch"] + 1, meta["initial_loss"]
        stopper.restore(meta["early_stopping"],
                        {k[3:]: v for k, v in arrays.items() if k.startswith("es.")})
        offset = meta["train_seconds"]
    else:
        for hook in hooks:
            hook(0, backend)
        step, first_epoch, initial_loss = 0, 1, log_epoch(0, 0)["train/loss"]
        offset = 0.0
    limit = cfg["divergence_factor"] * max(initial_loss, 1e-12)
    diverged_at, reason, epoch = None, None, first_epoch - 1
    can_checkpoint = checkpoint and run_dir is not None and hasattr(backend, "checkpoint_state")

    def save_checkpoint(epoch: int, train_seconds: float) -> None:
        arrays, backend_meta = backend.checkpoint_state()
        arrays.update({f"es.{k}": v for k, v in (stopper.best_state or {}).items()})
        ckpt.save(run_dir, arrays, {
            "config_key": ckpt.config_key(dict(cfg)), "step": step, "epoch": epoch,
            "initial_loss": initial_loss, "rng_batches": order_rng.bit_generator.state,
            "backend": backend_meta, "early_stopping": stopper.state(),
            "final": rec.final, "best": rec.best, "train_seconds": train_seconds,
            "files": {METRICS: rec.tell(), TIMING: clock.tell() if clock else 0,
                      LAYER_STATS: probe.tell()}})

    start, eval_seconds = time.perf_counter() - offset, 0.0
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
                Progress(progress_mode, total_steps, epochs, cfg["name"]) as progress:
            for epoch in range(first_epoch, epochs + 1):
                order = order_rng.permutation(n)
                for b in range(min(steps_per_epoch, total_steps - step)):
                    idx = order[b * batch_size:(b + 1) * batch_size]
                    lr = lr_at(step)
                    if step:
                        for hook in hooks:
                            hook(step, backend)
                    # `step` counts updates made: an interrupt in the middle of this one
                    # leaves it uncounted (its batch rows, if written, are at step + 1)
                    loss, penalty = backend.forward(data.X_train[idx], data.y_train[idx])
                    rec.log(step + 1, epoch, "batch", "loss", loss)
                    rec.log(step + 1, epoch, "batch", "lr", lr)
                    if penalty:
                        rec.log(step + 1, epoch, "batch", "penalty", penalty)
                    # the data loss runs away when training diverges; a penalty is large by design
                    if not math.isfinite(loss + penalty) or loss > limit:
                        step += 1
                        diverged_at = step
                        reason = (f"loss {loss + penalty:.3g} is not finite"
                                  if not math.isfinite(loss + penalty)
                                  else f"loss {loss:.3g} > {cfg['divergence_factor']:g} x "
                                       f"the initial loss {initial_loss:.3g}")
                        break
                    backend.update(lr)
                    step += 1
                    progress.step(step, epoch, loss)
                if diverged_at is not None:
                    break
                if clock is not None:  # training time only: evaluations are not counted
                    clock.write(f"{epoch},{step},{time.perf_counter() - start - eval_seconds:.6f}\n")
                t_eval = time.perf_counter()
                values = log_epoch(step, epoch)
                eval_seconds += time.perf_counter() - t_eval
                progress.epoch_end(f"epoch {epoch}/{epochs} step {step}: "
                                   + " ".join(f"{k} {v:.4g}" for k, v in values.items()))
                if stopper.check(epoch, values, backend):
                    progress.epoch_end(f"early stopping: no {stopper.monitor} improvement for "
                                       f"{stopper.patience} epochs; best weights (epoch "
                                       f"{stopper.best_epoch}) restored")
                    backend.load_state_dict(stopper.best_state)
                    break
                if can_checkpoint and epoch < epochs:
                    save_checkpoint(epoch, time.perf_counter() - start - eval_seconds)
    except KeyboardInterrupt:
        with np.errstate(all="ignore"):
            if evaluated_at[0] != step:  # the record ends with the model as it was stopped
                log_epoch(step, epoch)
        raise
    if diverged_at is not None:  # ...and with the model where it diverged
        with np.errstate(all="ignore"):
            log_epoch(step, epoch)
    seconds = time.perf_counter() - start - eval_seconds
    if clock is not None:
        clock.close()
    probe.close()
    if data.X_test is not None and diverged_at is None:  # once, at the end: never for choices
        loss, acc = backend.evaluate(data.X_test, data.y_test)
        rec.log(step, epoch, "test", "loss", loss)
        rec.log(step, epoch, "test", "acc", acc)
    model = getattr(backend, "model", None)
    sizes = {"params": sum(p.data.size for p in backend.params)} if hasattr(backend, "params") \
        else {}
    if hasattr(model, "n_params"):
        sizes["non_embedding_params"] = model.n_params(embeddings=False)
    return TrainResult(step, seconds, diverged_at, reason, backend.state_bytes(),
                       backend.param_bytes(), backend.state_dict(), stopper.summary(),
                       extra=sizes)
