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

from dlx import registry
from dlx.assemble import build_regularizer
from dlx.data import Dataset
from dlx.errors import UsageError
from dlx.nn import GELU, Dropout, Flatten, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Tanh
from dlx.nn.dropout import DropConnectLinear
from dlx.optim.groups import partition
from dlx.optim.regularizers import ElasticNet

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


def to_torch(module) -> tuple[Any, list[tuple[Any, Any, str]]]:
    """A torch.nn module equal to our NumPy module, and (our Parameter, torch Parameter, kind)
    pairs; kind 'W' means our (in, out) weight is torch's (out, in) weight transposed."""
    nn = torch.nn
    layers = module.layers if isinstance(module, Sequential) else [module]
    out, pairs = [], []
    for layer in layers:
        if isinstance(layer, DropConnectLinear):
            raise UsageError("backend=torch has no DropConnect; use backend=numpy")
        if isinstance(layer, Linear):
            lin = nn.Linear(*layer.W.data.shape)
            pairs += [(layer.W, lin.weight, "W"), (layer.b, lin.bias, "b")]
            out.append(lin)
        elif isinstance(layer, Dropout):
            out.append(nn.Dropout(p=1.0 - layer.keep_prob))
        elif isinstance(layer, LeakyReLU):
            out.append(nn.LeakyReLU(layer.negative_slope))
        elif isinstance(layer, GELU):
            out.append(nn.GELU(approximate="tanh"))
        else:
            kinds = {ReLU: nn.ReLU, Sigmoid: nn.Sigmoid, Tanh: nn.Tanh, Flatten: nn.Flatten}
            if type(layer) not in kinds:
                raise UsageError(f"backend=torch cannot build {type(layer).__name__}")
            out.append(kinds[type(layer)]())
    return nn.Sequential(*out), pairs


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
        self.decay = [tp for p, tp, kind in self.pairs if p.decay]
        self.names = [(p.name, tp, kind) for p, tp, kind in self.pairs]
        self.binary = data.spec.n_out == 1
        self.loss_fn = (torch.nn.BCEWithLogitsLoss() if self.binary
                        else torch.nn.CrossEntropyLoss())

        node = dict(cfg["optimizer"])
        name = node.pop("name")
        no_decay_bias, lr_mult = node.pop("no_decay_bias", False), node.pop("lr_mult", None) or {}
        from dlx.optim import OPTIMIZERS as OURS

        registry.check_kwargs(registry.lookup(OURS, "optimizer", name), node, "optimizer",
                              ("params",))
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in node.items()}
        # the param groups backend=numpy makes (dlx.optim.groups), as torch param groups: a
        # group without decay gets weight_decay=0, its lr is lr_mult x the lr pushed each step
        spec = partition([p.name for p, _, _ in self.pairs], [p.decay for p, _, _ in self.pairs],
                         no_decay_bias, lr_mult)
        self.lr_mult = [factor for _, _, factor in spec]
        self.opt = getattr(torch.optim, OPTIMIZERS[name])(
            [{"params": [self.pairs[i][1] for i in idx], **({} if decay else {"weight_decay": 0.0})}
             for idx, decay, _ in spec], **kwargs)
        self.reg = build_regularizer(cfg["regularizer"])
        self._loss = None

    def _tensors(self, x: np.ndarray, y: np.ndarray):
        tx = torch.from_numpy(np.ascontiguousarray(x)).to(self.dtype)
        ty = torch.from_numpy(y)
        return tx, (ty.to(self.dtype).reshape(-1, 1) if self.binary else ty)

    def _penalty(self, l1_ratio: float):
        """The elastic-net penalty with the given L1 share (a torch scalar, differentiable)."""
        r = self.reg
        return sum(r.lam * (l1_ratio * w.abs().sum() + (1.0 - r.l1_ratio) / 2.0 * (w * w).sum())
                   for w in self.decay)

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        self.opt.zero_grad()
        tx, ty = self._tensors(x, y)
        self._loss = loss = self.loss_fn(self.model(tx), ty)
        if not self.reg.active:
            return loss.item(), 0.0
        # autograd sees the L1 part only when it is a subgradient; a proximal step handles it
        # otherwise. The penalty reported is always the whole one, as backend=numpy reports it.
        r = self.reg
        self._loss = loss + self._penalty(r.l1_ratio if r.method == "subgradient" else 0.0)
        with torch.no_grad():
            return loss.item(), float(self._penalty(r.l1_ratio))

    def update(self, lr: float) -> None:
        self._loss.backward()
        for group, factor in zip(self.opt.param_groups, self.lr_mult):
            group["lr"] = lr * factor
        self.opt.step()
        r = self.reg
        if isinstance(r, ElasticNet) and r.method == "proximal" and r.l1_ratio:
            with torch.no_grad():
                for w in self.decay:
                    w.copy_(w.sign() * (w.abs() - lr * r.lam * r.l1_ratio).clamp_min(0))

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        self.model.eval()
        tx, ty = self._tensors(X, y)
        with torch.no_grad():
            logits = self.model(tx)
            loss = float(self.loss_fn(logits, ty))
        pred = (logits[:, 0] > 0).long() if self.binary else logits.argmax(dim=1)
        acc = float((pred.numpy() == y).mean())
        self.model.train()
        return loss, acc

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
        return sum(tp.numel() * tp.element_size() for _, tp, _ in self.pairs)

    def sizes(self) -> dict[str, int]:
        return {"params": sum(tp.numel() for _, tp, _ in self.pairs)}
