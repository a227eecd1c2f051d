"""The layer contract, in the spirit of cs231n and torch.nn.

* ``forward(x) -> out`` keeps what ``backward`` needs (the cache lives on the module).
* ``backward(dout) -> dx`` returns the gradient w.r.t. the input and *accumulates* parameter
  gradients into ``Parameter.grad`` (as torch does, so a weight used twice sums its grads).
* An optimizer gets ``module.parameters()``: Parameter objects, no string keys.

Training step: ``opt.zero_grad(); loss = crit.forward(model.forward(x), y);
model.backward(crit.backward()); opt.step()``.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np


class Parameter:
    """A trainable array and its gradient buffer (same shape and dtype).

    ``decay`` marks weights that regularizers and weight decay act on; biases (and e.g. norm
    gains) have ``decay=False``.
    """

    __slots__ = ("data", "grad", "name", "decay")

    def __init__(self, data: np.ndarray, name: str = "", decay: bool = True):
        self.data = data
        self.grad = np.zeros_like(data)
        self.name = name
        self.decay = decay

    def __repr__(self) -> str:
        return f"Parameter({self.name or '?'}, shape={self.data.shape}, dtype={self.data.dtype})"


class Buffer:
    """A non-trainable array that is part of a module's state (BatchNorm's running mean and
    variance): saved and loaded with the weights, never seen by an optimizer."""

    __slots__ = ("data", "name")

    def __init__(self, data: np.ndarray, name: str = ""):
        self.data = data
        self.name = name


class Module:
    """Base class: parameter discovery, train/eval mode, and ``__call__ = forward``."""

    training: bool = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def children(self) -> Iterator["Module"]:
        for value in vars(self).values():
            if isinstance(value, Module):
                yield value
            elif isinstance(value, (list, tuple)):
                yield from (v for v in value if isinstance(v, Module))

    def modules(self) -> Iterator["Module"]:
        """This module and every module inside it, depth first (torch's Module.modules())."""
        yield self
        for child in self.children():
            yield from child.modules()

    def parameters(self) -> list[Parameter]:
        """Every Parameter of this module and its children, in definition order, each once."""
        seen: dict[int, Parameter] = {}
        for value in vars(self).values():
            if isinstance(value, Parameter):
                seen.setdefault(id(value), value)
        for child in self.children():
            for p in child.parameters():
                seen.setdefault(id(p), p)
        return list(seen.values())

    def buffers(self) -> list[Buffer]:
        """Every Buffer of this module and its children, in definition order."""
        found = [v for v in vars(self).values() if isinstance(v, Buffer)]
        for child in self.children():
            found += [b for b in child.buffers() if all(b is not f for f in found)]
        return found

    def train(self, mode: bool = True) -> "Module":
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad.fill(0)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter and buffer arrays by name (e.g. for ``np.savez``; no pickle)."""
        return {p.name: p.data for p in [*self.parameters(), *self.buffers()]}

    def load_state_dict(self, arrays) -> None:
        for p in [*self.parameters(), *self.buffers()]:
            if p.name not in arrays:
                raise KeyError(f"missing parameter {p.name!r}")
            value = np.asarray(arrays[p.name])
            if value.shape != p.data.shape:
                raise ValueError(f"parameter {p.name!r}: shape {value.shape} != {p.data.shape}")
            p.data[...] = value


class Sequential(Module):
    """Modules applied in order; backward runs them in reverse."""

    def __init__(self, *layers: Module):
        self.layers = list(layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout
