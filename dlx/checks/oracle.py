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


def module(mine, ref, pairs, x: np.ndarray, dout: np.ndarray) -> Row | str:
    """The learner's output, dx and every Parameter's gradient against torch's autograd through
    the twin of dlx's module (:mod:`dlx.checks.twin`), at the weights the check ran with."""
    from dlx.checks.twin import NoTwin, twin

    torch = _torch()
    if torch is None:
        return SKIPPED
    params: dict = {}
    try:
        f = twin(ref, torch, params)
    except NoTwin as e:
        return f"torch: no twin of dlx's {e} here: compared with dlx's reference only"
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ty = f(tx)
    ty.backward(torch.tensor(dout, dtype=torch.float64))
    for p in mine.parameters():
        p.grad[...] = 0
    out = np.asarray(mine.forward(x.copy()), float)
    dx = np.asarray(mine.backward(dout.copy()), float)
    errs = [rel_error(out, ty.detach().numpy()), rel_error(dx, tx.grad.numpy())]
    for a, b, transposed in pairs:
        t = params.get(id(b))
        if t is not None and t.grad is not None:
            errs.append(rel_error(a.grad.T if transposed else a.grad, t.grad.numpy()))
    err = max(errs)
    return Row(0, "output, dx and every gradient vs torch", err, err, err <= RTOL)


def cell(which: str, params: list, x, state, dstate, got, dx, grads, dstate0) -> Row | str:
    """A recurrent step's results (the learner's: ``got`` the new state's tuple, ``dx``, the
    weights' ``grads`` in torch's order, ``dstate0`` or None) against torch.nn's cell of that
    kind with the same weights (``params``: weight_ih, weight_hh, bias_ih, bias_hh)."""
    torch = _torch()
    if torch is None:
        return SKIPPED
    cls = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell, "rnn": torch.nn.RNNCell}[which]
    mod = cls(x.shape[1], state[0].shape[1], dtype=torch.float64)
    with torch.no_grad():
        for name, p in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), params):
            getattr(mod, name).copy_(torch.tensor(p))
    arity = 2 if which == "lstm" else 1
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ts = [torch.tensor(s, dtype=torch.float64, requires_grad=True) for s in state[:arity]]
    out = mod(tx, tuple(ts)) if arity == 2 else (mod(tx, ts[0]),)
    sum((o * torch.tensor(d)).sum() for o, d in zip(out, dstate[:arity])).backward()
    errs = [rel_error(np.asarray(a, float), o.detach().numpy()) for a, o in zip(got, out)]
    errs.append(rel_error(np.asarray(dx, float), tx.grad.numpy()))
    errs += [rel_error(g, getattr(mod, n).grad.numpy())
             for g, n in zip(grads, ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))]
    if dstate0 is not None:
        errs += [rel_error(np.asarray(a, float), t.grad.numpy()) for a, t in zip(dstate0, ts)]
    err = max(errs)
    return Row(0, f"step, dx, gradients vs torch.nn.{cls.__name__}", err, err, err <= RTOL)


def penalty(make, lam: float, l1_ratio: float) -> Row | str:
    """The learner's penalty and gradient on the fixed weights against torch's autograd of
    lam (l1_ratio |w|_1 + (1 - l1_ratio) / 2 |w|^2) (L1: l1_ratio 1, L2: 0)."""
    from dlx.checks.regularizers import fixed_w

    torch = _torch()
    if torch is None:
        return SKIPPED
    w = fixed_w()
    tw = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    value = lam * (l1_ratio * tw.abs().sum() + (1 - l1_ratio) / 2 * (tw ** 2).sum())
    value.backward()
    reg = make()
    err = max(rel_error(np.array([float(reg.penalty(w.copy()))]), np.array([value.item()])),
              rel_error(np.asarray(reg.grad(w.copy()), float), tw.grad.numpy()))
    return Row(0, "penalty and gradient vs torch autograd", err, err, err <= RTOL)


def schedule(mine, reference: str, options: dict) -> Row | str:
    """The learner's rates over the checked run against torch.optim.lr_scheduler's (StepLR,
    ExponentialLR, CosineAnnealingLR; the range test's sweep as an ExponentialLR; a warm-up
    and cosine as SequentialLR of LinearLR and CosineAnnealingLR)."""
    from dlx.checks.schedules import LR, TOTAL

    torch = _torch()
    if torch is None:
        return SKIPPED
    S = torch.optim.lr_scheduler
    make = {"step": lambda o: S.StepLR(o, options["step_size"], options["gamma"]),
            "exponential": lambda o: S.ExponentialLR(o, options["gamma"]),
            "cosine": lambda o: S.CosineAnnealingLR(o, options.get("T_max") or TOTAL,
                                                    options.get("eta_min", 0.0)),
            "log_range": lambda o: S.ExponentialLR(
                o, (options["final_lr"] / LR) ** (1 / (TOTAL - 1))),
            "warmup_cosine": lambda o: S.SequentialLR(o, [
                S.LinearLR(o, options["warmup_start_factor"], 1.0,
                           total_iters=options["warmup_steps"]),
                S.CosineAnnealingLR(o, TOTAL - options["warmup_steps"],
                                    options.get("eta_min", 0.0))],
                milestones=[options["warmup_steps"]])}.get(reference)
    if make is None:
        return f"torch has no scheduler of dlx's {reference}: compared with dlx's reference only"
    steps = TOTAL if reference == "log_range" else TOTAL + 1  # the sweep holds after T - 1
    import warnings

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    with warnings.catch_warnings():  # torch's notes on scheduler usage: not the learner's
        warnings.simplefilter("ignore")
        sched, theirs = make(opt), []
        for _ in range(steps):
            theirs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    ours = mine(LR, TOTAL)
    err = rel_error(np.array([float(ours(t)) for t in range(steps)]), np.array(theirs))
    return Row(steps - 1, f"lr at every step vs torch's {type(sched).__name__}", err, err,
               err <= RTOL)
