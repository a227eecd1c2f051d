"""A backend does a run's arithmetic; the loop (:mod:`dlx.training.loop`) only calls it.

:class:`Backend` is the protocol the loop relies on; :class:`NumpyBackend` (the from-scratch
library) and :class:`dlx.training.torch_backend.TorchBackend` (torch.nn, torch.optim and
autograd, for comparison) implement it. Two abilities are optional, and the loop asks for them
with ``isinstance``: :class:`Resumable` (checkpoints) and :class:`Probed` (per-layer statistics).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

from dlx.assemble import build_loss, build_model_for, build_optimizer, build_regularizer, rngs
from dlx.data import Dataset
from dlx.nn.metrics import scorer
from dlx.optim.clip import clip_grad_norm, clip_grad_value, grad_norm
from dlx.training.chunks import eval_batches, stream_batch


@runtime_checkable
class Backend(Protocol):
    data: Dataset

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(data loss, penalty) of a mini-batch at the current weights, remembered for update()."""

    def update(self, lr: float) -> None:
        """Backward through the last forward, gradient clipping (``clip_grad_norm`` /
        ``clip_grad_value``; the norm before it is left in ``grad_norm``, else None) and one
        optimizer step at learning rate lr."""

    def evaluate(self, X: np.ndarray, y: np.ndarray, chunk: int | None = None,
                 losses: list | None = None) -> tuple[float, ...]:
        """(mean loss, *the task's metrics) over a whole split, in eval mode, named by
        :func:`dlx.nn.metrics.names`: (loss, accuracy), or (loss, RMSE, MAE, R^2) for
        regression; no training state changes. With ``chunk``, forward passes of that many
        rows, each one's mean loss appended to ``losses`` (the spread of an estimate)."""

    def weight_norm(self) -> float:
        """The L2 norm of every weight that regularizers act on (biases excluded)."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """The weights by our parameter names (a copy): model.npz, early stopping's best."""

    def load_state_dict(self, arrays: Mapping[str, np.ndarray]) -> None: ...

    def sizes(self) -> dict[str, int]:
        """Parameter counts for summary.json: ``params`` (and ``non_embedding_params``)."""

    def state_bytes(self) -> int:
        """Bytes of optimizer state (moments etc.)."""

    def param_bytes(self) -> int: ...


@runtime_checkable
class Resumable(Protocol):
    """A backend whose runs checkpoint every epoch and resume exactly."""

    def checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict]: ...

    def restore(self, arrays: Mapping[str, np.ndarray], meta: dict) -> None: ...


@runtime_checkable
class Probed(Protocol):
    """A backend that can report per-layer statistics (``probe_every``)."""

    def layer_stats(self, X: np.ndarray, y: np.ndarray) -> list[dict]: ...


class NumpyBackend:
    """The from-scratch backend: hand-written forward and backward, our optimizers."""

    def __init__(self, cfg: Mapping[str, Any], data: Dataset):
        self.data = data
        streams = rngs(cfg["seed"])
        self.dropout_rng = streams["dropout"]  # the model's dropout masks: part of a checkpoint
        self.model = build_model_for(cfg, data, streams)
        self.params = self.model.parameters()
        self.loss_fn = build_loss(cfg.get("loss"), data.spec, cfg.get("label_smoothing", 0.0))
        self.opt = build_optimizer(cfg["optimizer"], self.params)
        self.reg = build_regularizer(cfg["regularizer"])
        self.clip_norm, self.clip_value = cfg.get("clip_grad_norm"), cfg.get("clip_grad_value")
        self.grad_norm: float | None = None
        self.streams = stream_batch(cfg, data)
        if self.streams is not None and hasattr(self.model, "carry"):
            self.model.carry = True  # truncated BPTT: each batch starts where the last ended

    def reset_state(self) -> None:
        """Forget a carried recurrent state (the loop calls it at every epoch's start)."""
        if hasattr(self.model, "reset_state"):
            self.model.reset_state()

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mini-batch loss and penalty at the current weights (keeps what update() needs)."""
        self.opt.zero_grad()
        loss = self.loss_fn.forward(self.model.forward(x), y)
        return loss, self.reg.penalty(self.params) if self.reg.active else 0.0

    def update(self, lr: float) -> None:
        """Backward through the last forward, then one optimizer step at learning rate lr."""
        self.model.backward(self.loss_fn.backward())
        self.reg.add_grad(self.params)  # clipped with the rest, as torch clips d(loss + penalty)
        self.grad_norm = clip(self.params, self.clip_norm, self.clip_value)
        self.opt.lr = lr
        self.opt.step()
        self.reg.after_step(self.opt)  # L1's proximal step, at the step size just taken

    def evaluate(self, X: np.ndarray, y: np.ndarray, chunk: int | None = None,
                 losses: list | None = None) -> tuple[float, ...]:
        """Mean loss and the task's metrics over (X, y), in eval mode, in chunks (of ``chunk``
        rows if given); each chunk's mean loss is appended to ``losses`` if given."""
        self.model.eval()
        total_loss, scores = 0.0, scorer(self.data.spec.task, self.data.target_scale)
        X, y, rows = eval_batches(X, y, self.streams)
        chunk = chunk or rows
        kept = getattr(self.model, "state", None)  # training's carried state, put back below
        self.reset_state()
        for start in range(0, len(X), chunk):
            xb, yb = X[start:start + chunk], y[start:start + chunk]
            logits = self.model.forward(xb)
            loss = self.loss_fn.forward(logits, yb)
            total_loss += loss * len(xb)
            if losses is not None:
                losses.append(float(loss))
            scores.add(logits, yb)
        if hasattr(self.model, "state"):
            self.model.state = kept
        self.model.train()
        return (total_loss / len(X), *scores.result())

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

    def sizes(self) -> dict[str, int]:
        sizes = {"params": sum(p.data.size for p in self.params)}
        if hasattr(self.model, "n_params"):
            sizes["non_embedding_params"] = self.model.n_params(embeddings=False)
        return sizes


def clip(params, max_norm: float | None, max_value: float | None) -> float | None:
    """Clip in place: entries to [-max_value, max_value] first, then the global norm to
    max_norm (torch's clip_grad_value_ then clip_grad_norm_). Returns the global norm before
    any clipping, or None when both are off."""
    if max_norm is None and max_value is None:
        return None
    norm = grad_norm(params)
    if max_value is not None:
        clip_grad_value(params, max_value)
    if max_norm is not None:
        clip_grad_norm(params, max_norm)
    return norm


def make_backend(cfg: Mapping[str, Any], data: Dataset) -> Backend:
    if cfg["backend"] == "torch":
        from dlx.training.torch_backend import TorchBackend

        return TorchBackend(cfg, data)
    return NumpyBackend(cfg, data)
