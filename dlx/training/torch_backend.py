"""backend=torch: the same run built with torch.nn and torch.optim, for side-by-side comparison.

Same data, same initial weights (copied from the NumPy model, so the init code is shared), same
batch order (the loop is shared), same learning rate per step (the schedule function is shared
and its values equal torch.optim.lr_scheduler's, see tests), torch's own optimizers and autograd.
Dropout masks come from torch's generator, so runs with dropout differ in their noise.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from dlx.assemble import build_optimizer, build_regularizer
from dlx.data import Dataset
from dlx.errors import UsageError
from dlx.nn import GELU, Dropout, Flatten, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Tanh
from dlx.nn.activations import ELU, SELU, SiLU, Softplus
from dlx.nn.conv import AvgPool2d, Conv2d, GlobalAvgPool, MaxPool2d
from dlx.nn.dropout import DropConnectLinear, Dropout2d
from dlx.nn.losses import IGNORE, sequence_accuracy
from dlx.nn.metrics import scorer
from dlx.nn.models import RecurrentNet
from dlx.nn.norm import BatchNorm, GroupNorm, LayerNorm
from dlx.nn.recurrent import _Recurrent
from dlx.nn.residual import Residual
from dlx.optim.groups import partition
from dlx.training.chunks import eval_batches, stream_batch

try:
    import torch
except ImportError:  # pragma: no cover - exercised where torch is absent
    torch = None

# our option -> (torch.optim class name, the options it takes from our config)
OPTIMIZERS = {"sgd": "SGD", "momentum": "SGD", "nesterov": "SGD", "adagrad": "Adagrad",
              "rmsprop": "RMSprop", "adam": "Adam", "adamax": "Adamax", "nadam": "NAdam",
              "adamw": "AdamW", "radam": "RAdam", "adadelta": "Adadelta"}


def _require_torch():
    if torch is None:
        raise UsageError("backend=torch needs PyTorch: pip install 'dlx[torch]'")


def _torch_classes():
    """torch.nn modules for our layers that torch has no single class for (made lazily: torch is
    optional)."""
    nn, F = torch.nn, torch.nn.functional

    class BatchNorm(nn.Module):
        """F.batch_norm on (N, C) or (N, C, H, W), as our BatchNorm takes either."""

        def __init__(self, n, eps, momentum):
            super().__init__()
            self.eps, self.momentum = eps, momentum
            self.weight, self.bias = nn.Parameter(torch.ones(n)), nn.Parameter(torch.zeros(n))
            self.register_buffer("running_mean", torch.zeros(n))
            self.register_buffer("running_var", torch.ones(n))

        def forward(self, x):
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                self.training, self.momentum, self.eps)

    class Residual(nn.Module):
        def __init__(self, body, shortcut, skip):
            super().__init__()
            self.body, self.shortcut, self.skip = body, shortcut, skip

        def forward(self, x):
            out = self.body(x)
            if self.skip:
                out = out + (self.shortcut(x) if self.shortcut is not None else x)
            return out

    class GlobalAvgPool(nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    class RecurrentNet(nn.Module):
        """dlx.nn.models.RecurrentNet: one-hot or embedded tokens -> RNN/LSTM/GRU -> head."""

        carry, state = False, None  # as ours: truncated BPTT carries the final state

        def __init__(self, vocab, emb, rnn, head):
            super().__init__()
            self.vocab, self.emb, self.rnn, self.head = vocab, emb, rnn, head

        def forward(self, idx):
            if self.vocab is None:  # real vectors (B, T, D): predict after the last step
                return self.head(self.rnn(idx)[0][:, -1])
            x = self.emb(idx) if self.emb is not None else \
                F.one_hot(idx, self.vocab).to(self.head.weight.dtype)
            out, final = self.rnn(x, self.state if self.carry else None)
            if self.carry:  # detached: backward stops at the batch boundary
                self.state = tuple(s.detach() for s in final) if isinstance(final, tuple) \
                    else final.detach()
            return self.head(out)

        def reset_state(self):
            self.state = None

    return BatchNorm, Residual, GlobalAvgPool, RecurrentNet


def to_torch(module) -> tuple[Any, list[tuple[Any, Any, str]]]:
    """A torch.nn module equal to our NumPy module, and (ours, torch's, kind) pairs for every
    parameter and buffer: kind 'W' means our (in, out) Linear weight is torch's (out, in)
    weight transposed, 'buffer' a running statistic, 'p' an array copied as it is."""
    nn = torch.nn
    BatchNormT, ResidualT, GlobalAvgPoolT, RecurrentNetT = _torch_classes()
    pairs: list = []

    def convert(layer):
        if isinstance(layer, DropConnectLinear):
            raise UsageError("backend=torch has no DropConnect; use backend=numpy")
        if isinstance(layer, Sequential):
            return nn.Sequential(*(convert(child) for child in layer.layers))
        if isinstance(layer, Residual):
            return ResidualT(convert(layer.body),
                             convert(layer.shortcut) if layer.shortcut is not None else None,
                             layer.skip)
        if isinstance(layer, RecurrentNet):
            emb = None
            if layer.emb is not None:
                emb = nn.Embedding(*layer.emb.W.data.shape)
                pairs.append((layer.emb.W, emb.weight, "p"))
            return RecurrentNetT(layer.vocab, emb, convert(layer.rnn), convert(layer.head))
        if isinstance(layer, _Recurrent):  # the same parameter layout and names as torch's
            cell = layer.cells[0]
            kind = {"rnn_tanh": nn.RNN, "rnn_relu": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
            extra = {"nonlinearity": layer.mode[4:]} if layer.mode.startswith("rnn") else {}
            t = kind[layer.mode](cell.input_size, layer.hidden_size, layer.num_layers,
                                 batch_first=True, **extra)
            for c in layer.cells:
                for p in (c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh):
                    pairs.append((p, getattr(t, p.name.rsplit(".", 1)[-1]), "p"))
        elif isinstance(layer, Linear):
            t = nn.Linear(*layer.W.data.shape, bias=layer.b is not None)
            pairs.append((layer.W, t.weight, "W"))
            if layer.b is not None:
                pairs.append((layer.b, t.bias, "p"))
        elif isinstance(layer, Conv2d):
            f, c, kh, kw = layer.W.data.shape
            t = nn.Conv2d(c, f, (kh, kw), layer.stride, layer.padding, bias=layer.b is not None)
            pairs.append((layer.W, t.weight, "p"))
            if layer.b is not None:
                pairs.append((layer.b, t.bias, "p"))
        elif isinstance(layer, BatchNorm):
            t = BatchNormT(len(layer.gamma.data), layer.eps, layer.momentum)
            pairs.extend([(layer.gamma, t.weight, "p"), (layer.beta, t.bias, "p"),
                          (layer.running_mean, t.running_mean, "buffer"),
                          (layer.running_var, t.running_var, "buffer")])
        elif isinstance(layer, (LayerNorm, GroupNorm)):
            n = len(layer.gamma.data)
            t = nn.LayerNorm(n, layer.eps) if isinstance(layer, LayerNorm) \
                else nn.GroupNorm(layer.groups, n, layer.eps)
            pairs.extend([(layer.gamma, t.weight, "p"), (layer.beta, t.bias, "p")])
        elif isinstance(layer, (MaxPool2d, AvgPool2d)):
            cls = nn.MaxPool2d if isinstance(layer, MaxPool2d) else nn.AvgPool2d
            t = cls(layer.k, layer.stride, layer.padding)
        elif isinstance(layer, Dropout):
            t = (nn.Dropout2d if isinstance(layer, Dropout2d) else nn.Dropout)(1.0 - layer.keep_prob)
        elif isinstance(layer, LeakyReLU):
            t = nn.LeakyReLU(layer.negative_slope)
        elif isinstance(layer, GELU):
            t = nn.GELU(approximate="tanh")
        elif isinstance(layer, ELU):
            t = nn.ELU(layer.alpha)
        elif isinstance(layer, Softplus):
            t = nn.Softplus(threshold=layer.threshold)
        else:
            kinds = {ReLU: nn.ReLU, Sigmoid: nn.Sigmoid, Tanh: nn.Tanh, SELU: nn.SELU, SiLU: nn.SiLU,
                     Flatten: nn.Flatten,
                     GlobalAvgPool: GlobalAvgPoolT}
            if type(layer) not in kinds:
                raise UsageError(f"backend=torch cannot build {type(layer).__name__}")
            t = kinds[type(layer)]()
        return t

    converted = convert(module)
    if not isinstance(converted, nn.Sequential):
        converted = nn.Sequential(converted)
    return converted, pairs


class TorchBackend:  # a dlx.training.backend.Backend (not Resumable, not Probed)
    def __init__(self, cfg: Mapping[str, Any], data: Dataset):
        _require_torch()
        from dlx.assemble import build_model_for

        self.data = data
        self.dtype = torch.float64 if cfg["dtype"] == "float64" else torch.float32
        torch.manual_seed(cfg["seed"])
        ours = build_model_for(cfg, data)  # the same initial weights as backend=numpy
        self.model, self.pairs = to_torch(ours)
        self.model.to(self.dtype)
        with torch.no_grad():
            for p, tp, kind in self.pairs:
                tp.copy_(torch.from_numpy(p.data.T.copy() if kind == "W" else p.data))
        trainable = [(p, tp) for p, tp, kind in self.pairs if kind != "buffer"]
        self.decay = [tp for p, tp in trainable if p.decay]
        self.params = [tp for _, tp in trainable]
        self.names = [(p.name, tp, kind) for p, tp, kind in self.pairs]
        self.regression = data.spec.task == "regression"
        self.binary = data.spec.n_out == 1 and not self.regression
        self.tokens = data.spec.kind == "tokens"  # (B, T) ids -> (B, T, V) logits
        # label smoothing: CrossEntropyLoss's own; one sigmoid output smooths its 0/1 targets
        # to (1 - eps) y + eps / 2 (in _tensors), the same smoothing over the two classes
        self.smoothing = cfg.get("label_smoothing", 0.0)
        self.loss_fn = (torch.nn.MSELoss() if self.regression
                        else torch.nn.BCEWithLogitsLoss() if self.binary
                        else torch.nn.CrossEntropyLoss(ignore_index=IGNORE,
                                                       label_smoothing=self.smoothing))

        node = dict(cfg["optimizer"])
        name = node.pop("name")
        no_decay_bias, lr_mult = node.pop("no_decay_bias", False), node.pop("lr_mult", None) or {}
        # ours, without parameters: its hyperparameters give the proximal step size below
        self.ours = build_optimizer({"name": name, **node}, [])
        if node.pop("ema", False) or not node.pop("bias_correction", True):
            raise UsageError("backend=torch: torch.optim has no optimizer.ema or "
                             "optimizer.bias_correction=false (use backend=numpy)")
        if node.pop("decouple_lr", False):  # the paper's AdamW is torch's at weight_decay / lr
            node["weight_decay"] = node["weight_decay"] / self.ours.base_lr
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in node.items()}
        # the param groups backend=numpy makes (dlx.optim.groups), as torch param groups: a
        # group without decay gets weight_decay=0, its lr is lr_mult x the lr pushed each step
        spec = partition([p.name for p, _ in trainable], [p.decay for p, _ in trainable],
                         no_decay_bias, lr_mult)
        self.lr_mult = [factor for _, _, factor in spec]
        self.opt = getattr(torch.optim, OPTIMIZERS[name])(
            [{"params": [trainable[i][1] for i in idx], **({} if decay else {"weight_decay": 0.0})}
             for idx, decay, _ in spec], **kwargs)
        self.reg = build_regularizer(cfg["regularizer"])
        self._loss = None
        self.steps = 0
        self.clip_norm, self.clip_value = cfg.get("clip_grad_norm"), cfg.get("clip_grad_value")
        self.grad_norm: float | None = None
        self.streams = stream_batch(cfg, data)
        self.recurrent = next((m for m in self.model.modules() if hasattr(m, "carry")), None)
        if self.streams is not None and self.recurrent is not None:
            self.recurrent.carry = True

    def reset_state(self) -> None:
        if self.recurrent is not None:
            self.recurrent.reset_state()

    def _tensors(self, x: np.ndarray, y: np.ndarray):
        tx = torch.from_numpy(np.ascontiguousarray(x))
        tx = tx if self.tokens else tx.to(self.dtype)
        ty = torch.from_numpy(y)
        if self.regression:  # (N, K) real targets, as the model's outputs
            return tx, ty.to(self.dtype).reshape(len(tx), -1)
        if self.binary:
            return tx, ty.to(self.dtype).reshape(-1, 1) * (1.0 - self.smoothing) + self.smoothing / 2
        return tx, ty

    def _loss_of(self, logits, ty):
        """CE over classes, or over every scored position of token sequences (flattened)."""
        if self.tokens:
            return self.loss_fn(logits.reshape(-1, logits.shape[-1]), ty.reshape(-1))
        return self.loss_fn(logits, ty)

    def _penalty(self, l1_ratio: float):
        """The elastic-net penalty with the given L1 share (a torch scalar, differentiable)."""
        r = self.reg
        return sum(r.lam * (l1_ratio * w.abs().sum() + (1.0 - r.l1_ratio) / 2.0 * (w * w).sum())
                   for w in self.decay)

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        self.opt.zero_grad()
        tx, ty = self._tensors(x, y)
        self._loss = loss = self._loss_of(self.model(tx), ty)
        if not self.reg.active:
            return loss.item(), 0.0
        # autograd sees the L1 part only when it is a subgradient; a proximal step handles it
        # otherwise. The penalty reported is always the whole one, as backend=numpy reports it.
        r = self.reg
        self._loss = loss + self._penalty(0.0 if r.proximal else r.l1_ratio)
        with torch.no_grad():
            return loss.item(), float(self._penalty(r.l1_ratio))

    def update(self, lr: float) -> None:
        self._loss.backward()
        self.grad_norm = None
        if self.clip_norm is not None or self.clip_value is not None:  # torch's own functions
            grads = [p.grad for p in self.params if p.grad is not None]
            self.grad_norm = float(torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(g.double()) for g in grads])))
            if self.clip_value is not None:
                torch.nn.utils.clip_grad_value_(self.params, self.clip_value)
            if self.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.params, self.clip_norm)
        for group, factor in zip(self.opt.param_groups, self.lr_mult):
            group["lr"] = lr * factor
        self.opt.step()
        self.steps += 1
        r = self.reg
        if r.proximal:  # as ElasticNet.after_step, with D from torch's own state buffers
            decay = {id(w) for w in self.decay}
            with torch.no_grad():
                for group in self.opt.param_groups:  # each at its own lr (lr_mult)
                    for w in (w for w in group["params"] if id(w) in decay):
                        scale = self.ours.diagonal_step(self.opt.state[w], self.steps, group["lr"])
                        w.copy_(w.sign() * (w.abs() - r.lam * r.l1_ratio * scale).clamp_min(0))

    def evaluate(self, X: np.ndarray, y: np.ndarray, chunk: int | None = None,
                 losses: list | None = None) -> tuple[float, ...]:
        """Mean loss and the task's metrics over (X, y) in eval mode, in the NumPy backend's
        chunks (or of ``chunk`` rows): accuracy, or RMSE, MAE, R^2 (:mod:`dlx.nn.metrics`) for
        regression; each chunk's mean loss is appended to ``losses`` if given."""
        self.model.eval()
        X, y, rows = eval_batches(X, y, self.streams)
        chunk = chunk or rows
        total, correct = 0.0, 0
        scores = scorer(self.data.spec.task, self.data.target_scale) \
            if self.regression or self.data.spec.task == "language_model" else None
        kept = self.recurrent.state if self.recurrent is not None else None
        self.reset_state()
        for start in range(0, len(X), chunk):
            tx, ty = self._tensors(X[start:start + chunk], y[start:start + chunk])
            with torch.no_grad():
                logits = self.model(tx)
                loss = float(self._loss_of(logits, ty))
                total += loss * len(tx)
            if losses is not None:
                losses.append(loss)
            if scores is not None:
                scores.add(logits.numpy(), y[start:start + chunk])
                continue
            if self.tokens:  # as backend=numpy: whole sequences, every scored token right
                correct += sequence_accuracy(logits.numpy(), y[start:start + chunk]) * len(tx)
                continue
            pred = (logits[:, 0] > 0).long() if self.binary else logits.argmax(dim=1)
            correct += int((pred.numpy() == y[start:start + chunk]).sum())
        if self.recurrent is not None:
            self.recurrent.state = kept
        self.model.train()
        if scores is not None:
            return (total / len(X), *scores.result())
        return total / len(X), correct / len(X)

    def weight_norm(self) -> float:
        return math.sqrt(sum(float((w.detach().double() ** 2).sum()) for w in self.decay))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: (tp.detach().numpy().T if kind == "W" else tp.detach().numpy()).copy()
                for name, tp, kind in self.names}

    def load_state_dict(self, arrays: Mapping[str, np.ndarray]) -> None:
        with torch.no_grad():
            for name, tp, kind in self.names:
                a = arrays[name]
                tp.copy_(torch.from_numpy(np.ascontiguousarray(a.T if kind == "W" else a)))

    def state_bytes(self) -> int:
        return sum(v.numel() * v.element_size() for s in self.opt.state.values()
                   for k, v in s.items() if torch.is_tensor(v) and k != "step" and v.dim() > 0)

    def param_bytes(self) -> int:
        return sum(tp.numel() * tp.element_size() for tp in self.params)

    def sizes(self) -> dict[str, int]:
        return {"params": sum(tp.numel() for tp in self.params)}
