"""torch as a second reference: where it is installed, the learner's numbers on the fixed inputs
against torch.optim's, torch.nn.functional's and torch's autograd directly (a stage of its own,
"torch"), so that a pass does not rest on dlx's reference alone. Without torch the stage says
it was skipped: a pass never claims more than was checked.

Each function returns a Row (the worst relative error over what it compared) or a string
saying why torch was not compared.
"""

from __future__ import annotations

import importlib.util
import inspect

import numpy as np

from dlx.checks.result import RTOL, Result, Row, rel_error

SKIPPED = "torch not installed: the torch comparison was skipped (pip install 'dlx[torch]')"

_OPTIMIZERS = {"sgd": "SGD", "momentum": "SGD", "nesterov": "SGD", "adagrad": "Adagrad",
               "rmsprop": "RMSprop", "adam": "Adam", "adamax": "Adamax", "nadam": "NAdam",
               "adamw": "AdamW"}
_ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "silu": "silu",
                "elu": "elu", "selu": "selu", "softplus": "softplus",
                "leaky_relu": "leaky_relu"}


def _torch():
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return torch


def attach(result: Result, found) -> None:
    """The torch stage's outcome on ``result``: a row and "agrees" / "differs", or a note."""
    if isinstance(found, Row):
        result.rows.append(found)
        result.stages.append(("torch", "agrees" if found.ok else "differs"))
        if not found.ok and result.passed:  # dlx's reference and torch part: dlx's bug
            result.notes.append("dlx's reference and torch differ on these inputs: please "
                                "report it (your code agrees with dlx's)")
    else:
        result.stages.append(("torch", "skipped"))
        result.notes.append(found)


def optimizer(make, reference: str, options: dict, changed: dict) -> Row | str:
    """The learner's parameters after the fixed-input steps against torch.optim's, at dlx's
    ``options``; ``changed``: those that differ from dlx's class's defaults (an option torch
    does not have is fine only at its default)."""
    from dlx.checks import optim

    torch = _torch()
    if torch is None:
        return SKIPPED
    cls = getattr(torch.optim, _OPTIMIZERS.get(reference, ""), None)
    if cls is None:
        return f"torch has no {reference}: compared with dlx's reference only"
    taken = inspect.signature(cls).parameters
    own = {k: v for k, v in changed.items() if k not in taken}
    if own:
        return (f"torch.optim.{cls.__name__} has no {', '.join(sorted(own))}: compared with "
                f"dlx's reference only")
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in options.items()
              if k in taken}
    mine = optim.trace(make)
    params = optim.fixed_params()
    tparams = [torch.tensor(p.data.copy(), dtype=torch.float64, requires_grad=True)
               for p in params]
    topt = cls(tparams, **kwargs)
    worst = 0.0
    for t in range(1, optim.STEPS + 1):
        for tp, g in zip(tparams, optim.fixed_grads(t)):
            tp.grad = torch.tensor(g, dtype=torch.float64)
        topt.step()
        worst = max([worst, *(rel_error(a, tp.detach().numpy())
                              for a, tp in zip(mine.params[t - 1], tparams))])
    return Row(optim.STEPS, f"params vs torch.optim.{cls.__name__}", worst, worst,
               worst <= RTOL)


def loss(make, name: str) -> Row | str:
    """The learner's value and dL/dscores on the fixed inputs against torch's autograd."""
    from dlx.checks import losses

    torch = _torch()
    if torch is None:
        return SKIPPED
    import torch.nn.functional as F

    ref = losses.REFERENCES[name]
    z, y = losses.fixed_scores(ref.scores), ref.targets()
    tz = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    if name == "bce":
        value = F.binary_cross_entropy_with_logits(tz[:, 0], torch.tensor(y, dtype=torch.float64))
    elif name == "cross_entropy":
        value = F.cross_entropy(tz, torch.tensor(y))
    elif name == "entropy":  # torch has no entropy loss: autograd through its definition
        value = -(F.softmax(tz, 1) * F.log_softmax(tz, 1)).sum(1).mean()
    else:
        value = F.mse_loss(tz, torch.tensor(y, dtype=torch.float64))
    value.backward()
    ours = make()
    mine_value = float(ours.forward(z.copy(), y))
    mine_grad = np.asarray(ours.backward(), float)
    err = max(rel_error(np.array([mine_value]), np.array([value.item()])),
              rel_error(mine_grad, tz.grad.numpy()))
    return Row(0, "value and dL/dscores vs torch", err, err, err <= RTOL)


def activation(cls, name: str, x: np.ndarray, dout: np.ndarray) -> Row | str:
    """The learner's output and dx on the fixed inputs against torch's autograd."""
    torch = _torch()
    if torch is None:
        return SKIPPED
    fn = getattr(torch.nn.functional, _ACTIVATIONS.get(name, ""), None)
    if fn is None:
        return f"torch.nn.functional has no {name} of dlx's form: compared with dlx's only"
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ty = fn(tx)
    ty.backward(torch.tensor(dout, dtype=torch.float64))
    layer = cls()
    y = np.asarray(layer.forward(x.copy()), float)
    dx = np.asarray(layer.backward(dout.copy()), float)
    err = max(rel_error(y, ty.detach().numpy()), rel_error(dx, tx.grad.numpy()))
    return Row(0, "output and dx vs torch", err, err, err <= RTOL)
