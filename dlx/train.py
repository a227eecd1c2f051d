"""The training loop: (data, model, optimizer, schedule, regularizer) -> metrics, as a config says.

Seeds: one ``seed`` spawns independent streams for the data, the initial weights and the batch
order, so changing e.g. the batch size does not change the data or the initial weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from dlx import registry
from dlx.data import Dataset, build_dataset
from dlx.nn import Module, build_model, loss_for, n_outputs, predictions
from dlx.optim import OPTIMIZERS, REGULARIZERS, SCHEDULES
from dlx.records.metrics import MetricsWriter
from dlx.records.progress import Progress

EVAL_CHUNK = 8192  # rows per forward pass when evaluating (bounds memory on big data sets)


@dataclass
class TrainResult:
    steps: int
    train_seconds: float
    diverged_at_step: int | None
    diverged_reason: str | None
    state_bytes: int
    param_bytes: int


def rngs(seed: int) -> dict[str, np.random.Generator]:
    data, init, batches = np.random.SeedSequence(seed).spawn(3)
    return {"data": np.random.default_rng(data), "init": np.random.default_rng(init),
            "batches": np.random.default_rng(batches)}


def build_data(cfg: Mapping[str, Any]) -> Dataset:
    return build_dataset(cfg["dataset"], rngs(cfg["seed"])["data"], np.dtype(cfg["dtype"]))


def build_model_for(cfg: Mapping[str, Any], data: Dataset) -> Module:
    return build_model(cfg["model"], cfg["init"], data.n_features, n_outputs(data.n_classes),
                       rngs(cfg["seed"])["init"], np.dtype(cfg["dtype"]))


def evaluate(model: Module, loss_fn, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean loss and accuracy over (X, y), in eval mode, in chunks."""
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(X), EVAL_CHUNK):
        xb, yb = X[start:start + EVAL_CHUNK], y[start:start + EVAL_CHUNK]
        logits = model.forward(xb)
        total_loss += loss_fn.forward(logits, yb) * len(xb)
        correct += int((predictions(logits) == yb).sum())
    model.train()
    return total_loss / len(X), correct / len(X)


def weight_norm(model: Module) -> float:
    return math.sqrt(sum(float(np.square(p.data, dtype=np.float64).sum())
                         for p in model.parameters() if p.decay))


def train(cfg: Mapping[str, Any], rec: MetricsWriter,
          progress_mode: str = "auto") -> tuple[Module, TrainResult]:
    """Train as ``cfg`` (a plain, resolved config dict) says, logging every value to ``rec``.

    Logged per step: ``batch/loss`` (before the update), ``batch/lr``, ``batch/penalty`` (if a
    regularizer is active). Per epoch, and once before training (step 0, epoch 0):
    ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``model/weight_norm``.
    """
    streams = rngs(cfg["seed"])
    data = build_data(cfg)
    model = build_model_for(cfg, data)
    params = model.parameters()
    loss_fn = loss_for(data.n_classes)
    opt = registry.build(OPTIMIZERS, "optimizer", cfg["optimizer"], params)
    reg = registry.build(REGULARIZERS, "regularizer", cfg["regularizer"])

    n = len(data.X_train)
    batch_size = min(cfg["batch_size"] or n, n)
    steps_per_epoch = math.ceil(n / batch_size)
    epochs = cfg["epochs"]
    total_steps = epochs * steps_per_epoch
    lr_at = registry.build(SCHEDULES, "schedule", cfg["schedule"],
                           lr=opt.lr, total_steps=total_steps)

    def log_epoch(step: int, epoch: int) -> str:
        values = {}
        for split, X, y in (("train", data.X_train, data.y_train), ("val", data.X_val, data.y_val)):
            values[f"{split}/loss"], values[f"{split}/acc"] = evaluate(model, loss_fn, X, y)
        values["model/weight_norm"] = weight_norm(model)
        for key, value in values.items():
            split, metric = key.split("/")
            rec.log(step, epoch, split, metric, value)
        return " ".join(f"{k} {v:.4g}" for k, v in values.items())

    log_epoch(0, 0)
    initial_loss = rec.final["train/loss"]
    limit = cfg["divergence_factor"] * max(initial_loss, 1e-12)
    step, diverged_at, reason = 0, None, None
    start = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
            Progress(progress_mode, total_steps, epochs, cfg["name"]) as progress:
        for epoch in range(1, epochs + 1):
            order = streams["batches"].permutation(n)
            for b in range(steps_per_epoch):
                idx = order[b * batch_size:(b + 1) * batch_size]
                lr = opt.lr = lr_at(step)
                step += 1
                opt.zero_grad()
                loss = loss_fn.forward(model.forward(data.X_train[idx]), data.y_train[idx])
                penalty = reg.penalty(params) if reg.active else 0.0
                rec.log(step, epoch, "batch", "loss", loss)
                rec.log(step, epoch, "batch", "lr", lr)
                if reg.active:
                    rec.log(step, epoch, "batch", "penalty", penalty)
                objective = loss + penalty
                if not math.isfinite(objective) or objective > limit:
                    diverged_at = step
                    reason = (f"loss {objective:.3g} is not finite" if not math.isfinite(objective)
                              else f"loss {objective:.3g} > {cfg['divergence_factor']:g} x "
                                   f"the initial loss {initial_loss:.3g}")
                    break
                model.backward(loss_fn.backward())
                reg.add_grad(params)
                opt.step()
                progress.step(step, epoch, loss)
            if diverged_at is not None:
                break
            progress.epoch_end(f"epoch {epoch}/{epochs} step {step}: {log_epoch(step, epoch)}")
    seconds = time.perf_counter() - start
    param_bytes = sum(p.data.nbytes for p in params)
    return model, TrainResult(step, seconds, diverged_at, reason, opt.state_bytes(), param_bytes)
