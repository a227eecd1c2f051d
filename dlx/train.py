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

from dlx import registry
from dlx.data import Dataset, build_dataset
from dlx.errors import UsageError
from dlx.nn import Module, build_model, loss_for, n_outputs, predictions
from dlx.optim import OPTIMIZERS, REGULARIZERS, schedules
from dlx.records.metrics import MetricsWriter
from dlx.records.progress import Progress

EVAL_CHUNK = 8192  # rows per forward pass when evaluating (bounds memory on big data sets)
STREAMS = ("data", "init", "batches", "dropout")


def rngs(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators per purpose (adding a purpose at the end changes no other)."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}


def build_data(cfg: Mapping[str, Any]) -> Dataset:
    return build_dataset(cfg["dataset"], rngs(cfg["seed"])["data"], np.dtype(cfg["dtype"]))


def build_model_for(cfg: Mapping[str, Any], data: Dataset) -> Module:
    streams = rngs(cfg["seed"])
    return build_model(cfg["model"], cfg["init"], data.n_features, n_outputs(data.n_classes),
                       streams["init"], np.dtype(cfg["dtype"]), streams["dropout"])


class NumpyBackend:
    """The from-scratch backend: hand-written forward and backward, our optimizers."""

    def __init__(self, cfg: Mapping[str, Any], data: Dataset):
        self.data = data
        self.model = build_model_for(cfg, data)
        self.params = self.model.parameters()
        self.loss_fn = loss_for(data.n_classes)
        self.opt = registry.build(OPTIMIZERS, "optimizer", cfg["optimizer"], self.params)
        self.reg = registry.build(REGULARIZERS, "regularizer", cfg["regularizer"])

    @property
    def base_lr(self) -> float:
        return self.opt.lr

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
        for start in range(0, len(X), EVAL_CHUNK):
            xb, yb = X[start:start + EVAL_CHUNK], y[start:start + EVAL_CHUNK]
            logits = self.model.forward(xb)
            total_loss += self.loss_fn.forward(logits, yb) * len(xb)
            correct += int((predictions(logits) == yb).sum())
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


class _Probe:
    """Per-layer statistics every ``probe_every`` steps (0: at initialization only; null: never)
    on a fixed batch of the first ``probe_batch`` training examples, into layer_stats.csv."""

    STATS = ("z_std", "act_std", "grad_z_norm", "grad_W_norm")

    def __init__(self, cfg, data: Dataset, backend, run_dir: Path | None):
        self.every = cfg.get("probe_every")
        self.file = None
        if self.every is None or run_dir is None or not hasattr(backend, "layer_stats"):
            return
        n = cfg.get("probe_batch", 512)
        self.X, self.y, self.backend = data.X_train[:n], data.y_train[:n], backend
        self.file = open(run_dir / "layer_stats.csv", "w", buffering=1)
        self.file.write("step,layer,stat,value\n")

    def __call__(self, step: int) -> None:
        if self.file is None or (step and (not self.every or step % self.every)):
            return
        for row in self.backend.layer_stats(self.X, self.y):
            for stat in self.STATS:
                if stat in row:
                    self.file.write(f"{step},{row['layer']},{stat},{row[stat]!r}\n")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class EarlyStopping:
    """Stop when ``monitor`` (e.g. val/loss) has not improved by ``min_delta`` for ``patience``
    epochs; the best weights are restored. Losses are minimized, accuracies maximized."""

    def __init__(self, patience: int | None, monitor: str, min_delta: float):
        sign = {"loss": 1.0, "acc": -1.0}.get(monitor.rpartition("/")[2])
        if patience is not None and sign is None:
            raise UsageError(f"early_stopping.monitor must be a split/loss or split/acc metric, "
                             f"got {monitor!r}")
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

    def summary(self) -> dict:
        if self.patience is None:
            return {}
        return {"monitor": self.monitor, "best_epoch": self.best_epoch,
                "best_value": self.sign * self.best if self.best_epoch is not None else None,
                "stopped_at_epoch": self.stopped_at}


def train(cfg: Mapping[str, Any], rec: MetricsWriter, progress_mode: str = "auto",
          timing: Path | None = None, hooks: list | None = None,
          backend=None) -> TrainResult:
    """Train as ``cfg`` (a plain, resolved config dict) says, logging every value to ``rec``.

    Logged per step: ``batch/loss`` (before the update), ``batch/lr``, ``batch/penalty`` (if a
    regularizer is active). Per epoch, and once before training (step 0, epoch 0):
    ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``model/weight_norm``. At the
    end, for data sets with a test split: ``test/loss``, ``test/acc``.

    ``backend`` (with its ``data``) may be given ready-made. ``hooks`` are called as
    ``hook(step, backend)`` before training and before every update (an experiment's own
    measurements). Wall-clock time per epoch goes to ``timing`` (a CSV of its own:
    metrics.csv has no timings, so that it is byte-identical across runs of the same config
    and seed).
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
    total_steps = epochs * steps_per_epoch
    lr_at = schedules.build(cfg["schedule"], backend.base_lr, total_steps)

    def log_epoch(step: int, epoch: int) -> dict[str, float]:
        values = {}
        for split, X, y in (("train", data.X_train, data.y_train), ("val", data.X_val, data.y_val)):
            values[f"{split}/loss"], values[f"{split}/acc"] = backend.evaluate(X, y)
        values["model/weight_norm"] = backend.weight_norm()
        for key, value in values.items():
            split, metric = key.split("/")
            rec.log(step, epoch, split, metric, value)
        return values

    probe = _Probe(cfg, data, backend, timing.parent if timing is not None else None)
    hooks = [lambda step, _backend: probe(step), *(hooks or [])]
    for hook in hooks:
        hook(0, backend)
    initial_loss = log_epoch(0, 0)["train/loss"]
    limit = cfg["divergence_factor"] * max(initial_loss, 1e-12)
    step, diverged_at, reason = 0, None, None
    clock = open(timing, "w", buffering=1) if timing is not None else None
    if clock is not None:
        clock.write("epoch,step,seconds\n0,0,0.0\n")
    start, eval_seconds = time.perf_counter(), 0.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
            Progress(progress_mode, total_steps, epochs, cfg["name"]) as progress:
        for epoch in range(1, epochs + 1):
            order = order_rng.permutation(n)
            for b in range(steps_per_epoch):
                idx = order[b * batch_size:(b + 1) * batch_size]
                lr = lr_at(step)
                if step:
                    for hook in hooks:
                        hook(step, backend)
                step += 1
                loss, penalty = backend.forward(data.X_train[idx], data.y_train[idx])
                rec.log(step, epoch, "batch", "loss", loss)
                rec.log(step, epoch, "batch", "lr", lr)
                if penalty:
                    rec.log(step, epoch, "batch", "penalty", penalty)
                # the data loss runs away when training diverges; a penalty is large by design
                if not math.isfinite(loss + penalty) or loss > limit:
                    diverged_at = step
                    reason = (f"loss {loss + penalty:.3g} is not finite"
                              if not math.isfinite(loss + penalty)
                              else f"loss {loss:.3g} > {cfg['divergence_factor']:g} x "
                                   f"the initial loss {initial_loss:.3g}")
                    break
                backend.update(lr)
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
    seconds = time.perf_counter() - start - eval_seconds
    if clock is not None:
        clock.close()
    probe.close()
    if data.X_test is not None and diverged_at is None:  # once, at the end: never for choices
        loss, acc = backend.evaluate(data.X_test, data.y_test)
        rec.log(step, epoch, "test", "loss", loss)
        rec.log(step, epoch, "test", "acc", acc)
    return TrainResult(step, seconds, diverged_at, reason, backend.state_bytes(),
                       backend.param_bytes(), backend.state_dict(), stopper.summary())
