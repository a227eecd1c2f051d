"""Parameter groups: one optimizer per group of parameters, each with its own weight decay and
learning-rate multiplier — torch.optim's ``param_groups``, as two config options.

``no_decay_bias`` puts every parameter with ``decay=False`` (biases, norm gains, positional
tables) in groups with ``weight_decay=0``; ``lr_mult`` maps name patterns (fnmatch, the first
that matches wins, in the order written) to a factor on the learning rate. A group is then the
set of parameters with the same (decay, factor); groups keep the parameters' order of first
appearance, so backend=torch builds the same groups (:func:`partition`).

The group's learning rate at each step is ``lr_mult`` x the lr the schedule pushes. Per-group
updates do not interact, so a group's optimizer is simply the same optimizer class on that
group's parameters — the arithmetic torch does for a param group.
"""

from __future__ import annotations

import fnmatch
from typing import Callable, Mapping

import numpy as np

from dlx.nn.core import Parameter


def check(no_decay_bias, lr_mult) -> None:
    """ValueError for options of the wrong kind (a bool and a mapping pattern -> factor > 0)."""
    if not isinstance(no_decay_bias, bool):
        raise ValueError(f"no_decay_bias must be true or false, got {no_decay_bias!r}")
    if not isinstance(lr_mult, Mapping):
        raise ValueError(f"lr_mult must be a mapping from name pattern to factor, got {lr_mult!r}")
    for pattern, factor in lr_mult.items():
        if not (isinstance(factor, (int, float)) and not isinstance(factor, bool) and factor > 0):
            raise ValueError(f"lr_mult[{pattern!r}] must be a number > 0, got {factor!r}")


def partition(names: list[str], decays: list[bool], no_decay_bias: bool,
              lr_mult: Mapping[str, float]) -> list[tuple[list[int], bool, float]]:
    """Groups as (parameter indices, weight decay on?, lr factor), in order of first appearance."""
    groups: dict[tuple[bool, float], list[int]] = {}
    for i, (name, decay) in enumerate(zip(names, decays)):
        factor = next((float(f) for pat, f in lr_mult.items() if fnmatch.fnmatchcase(name, pat)),
                      1.0)
        groups.setdefault((decay or not no_decay_bias, factor), []).append(i)
    return [(idx, decay, factor) for (decay, factor), idx in groups.items()]


class GroupedOptimizer:
    """Several optimizers of one class acting as one: ``lr`` set here reaches group k as
    ``lr * factor_k``; ``state_dict`` prefixes each group's entries with ``g{k}.``."""

    def __init__(self, make: Callable[..., object], params: list[Parameter], no_decay_bias: bool,
                 lr_mult: Mapping[str, float]):
        self.params = list(params)
        spec = partition([p.name for p in self.params], [p.decay for p in self.params],
                         no_decay_bias, lr_mult)
        self.groups, self._where = [], {}
        for idx, decay, factor in spec:
            opt = make([self.params[i] for i in idx], **({} if decay else {"weight_decay": 0.0}))
            self.groups.append((opt, factor))
            self._where.update({i: (opt, local) for local, i in enumerate(idx)})
        self._template = make([])  # what every group is: for prox_unsupported
        self._lr = self.groups[0][0].lr / self.groups[0][1] if self.groups else 0.0
        self.lr = self._lr

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = value
        for opt, factor in self.groups:
            opt.lr = value * factor

    @property
    def steps(self) -> int:
        return self.groups[0][0].steps if self.groups else 0

    def zero_grad(self) -> None:
        for opt, _ in self.groups:
            opt.zero_grad()

    def step(self) -> None:
        for opt, _ in self.groups:
            opt.step()

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays, meta = {}, {}
        for k, (opt, _) in enumerate(self.groups):
            a, m = opt.state_dict()
            arrays.update({f"g{k}.{name}": v for name, v in a.items()})
            meta[f"g{k}"] = m
        return arrays, meta

    def load_state_dict(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        for k, (opt, _) in enumerate(self.groups):
            prefix = f"g{k}."
            opt.load_state_dict({n[len(prefix):]: v for n, v in arrays.items()
                                 if n.startswith(prefix)}, meta[f"g{k}"])

    def step_scale(self, index: int):
        """The diagonal step of ``params[index]`` in its group (its lr already x its factor)."""
        opt, local = self._where[index]
        return opt.step_scale(local)

    def prox_unsupported(self) -> str | None:
        return self._template.prox_unsupported()

    def state_bytes(self) -> int:
        return sum(opt.state_bytes() for opt, _ in self.groups)
