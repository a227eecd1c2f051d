"""`dlx check layer=mine.layers.Linear`: the learner's fully connected layer against dlx's Linear
(out = x W + b), in float64, in stages:

0. interface: built as ``Linear(d_in, d_out)`` (``name``, ``dtype``, ``rng`` given if asked for),
   with a weight of shape (d_in, d_out) or torch's (d_out, d_in) and a bias (d_out,) among its
   Parameters; forward (N, d_in) -> (N, d_out); backward returns dx shaped as x and adds dW, db
   into the Parameters' .grad, shaped as the Parameters;
1. fixed inputs: x, W, b and dout from ``linspace``: out, dx, dW and db against the reference's;
2. gradients: dx, dW, db against centred finite differences of sum(forward(x) * dout).

A weight gradient of the wrong shape, or the transpose of the right one (caught with a square
layer, where the shapes agree), is named: dL/dW = x^T dout, shaped as W.
"""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from dlx.checks.result import RTOL, Result, Row, rel_error


def build(cls: Callable, *sizes: int):
    """The learner's layer, built as dlx builds its own: the sizes, then what its signature asks."""
    extra = {}
    for name, p in list(inspect.signature(cls).parameters.items())[len(sizes):]:
        if p.default is not p.empty or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        extra[name] = {"name": "fc", "dtype": np.float64,
                       "rng": np.random.default_rng(0)}.get(name, None)
        if extra[name] is None:
            from dlx.errors import UsageError

            raise UsageError(f"cannot build your layer: its argument {name!r} has no default "
                            f"(dlx passes the sizes, and name, dtype, rng if asked)")
    return cls(*sizes, **extra)


def _weights(layer, d_in: int, d_out: int):
    """(W, transposed, b): the layer's weight Parameter (torch's (d_out, d_in) layout noted)
    and bias, or a message saying what is missing."""
    params = list(layer.parameters())
    w = [p for p in params if p.data.shape in ((d_in, d_out), (d_out, d_in))]
    b = [p for p in params if p.data.shape == (d_out,)]
    if not w or not b:
        shapes = [tuple(p.data.shape) for p in params]
        return (f"among its Parameters {shapes} there is no weight of shape ({d_in}, {d_out}) "
                f"(or ({d_out}, {d_in})) and bias of shape ({d_out},)")
    return w[0], w[0].data.shape == (d_out, d_in) and d_in != d_out, b[0]


def _run(layer, parts, x, dout, d_in, d_out):
    w, transposed, b = parts
    w.data[...] = np.linspace(-0.5, 0.7, d_in * d_out).reshape(w.data.shape)
    b.data[...] = np.linspace(0.2, -0.3, d_out)
    for p in layer.parameters():  # not zero: a backward must add into .grad, not set it
        p.grad[...] = PRE
    out = layer.forward(x.copy())
    dx = layer.backward(dout.copy())
    return out, dx, w.grad - PRE, b.grad - PRE, w.data.copy()


PRE = 0.25  # what .grad holds before the checked backward (dlx's loop zeroes it before a step)


def overwritten(names_grads: list[tuple[str, np.ndarray, np.ndarray]]) -> str | None:
    """The diagnosis when a backward set a Parameter's .grad (=) instead of adding (+=):
    ``(name, the learner's gradient as read minus PRE, the reference's)``."""
    for name, mine, theirs in names_grads:
        if rel_error(mine, theirs) > RTOL and rel_error(mine + PRE, theirs) <= RTOL:
            return (f"your backward sets {name}'s .grad (=) where it must add into it (+=): "
                    f"a weight used twice sums its gradients, and dlx zeroes .grad before each "
                    f"step")
    return None


def check(cls: Callable) -> Result:
    from dlx.nn import Linear

    result, d_in, d_out, n = Result(passed=False), 5, 3, 4
    x = np.linspace(-1.0, 1.2, n * d_in).reshape(n, d_in)
    dout = np.linspace(0.4, -0.6, n * d_out).reshape(n, d_out)

    layer = build(cls, d_in, d_out)
    parts = _weights(layer, d_in, d_out)
    if isinstance(parts, str):
        return result.fail("0 interface", parts)
    try:
        out, dx, dw, db, w = _run(layer, parts, x, dout, d_in, d_out)
    except ValueError as e:  # numpy refused to add a wrong-shaped dW into W.grad
        square = build(cls, 4, 4)
        sq = _weights(square, 4, 4)
        xs, ds = x[:, :4], np.linspace(0.4, -0.6, n * 4).reshape(n, 4)
        try:
            _, _, dws, _, ws = _run(square, sq, xs, ds, 4, 4)
        except ValueError:
            raise e from None
        ref = xs.T @ ds
        if rel_error(dws, ref.T) <= RTOL and rel_error(dws, ref) > RTOL:
            return result.fail("0 interface", f"your weight gradient is the transpose of dL/dW: it is "
                        f"shaped (d_out, d_in) where W is (d_in, d_out), so adding it into "
                        f"W.grad failed ({e})", "out = x W + b gives dL/dW = x^T dout, shaped "
                        "as W: (d_in, N) @ (N, d_out)")
        return result.fail("0 interface", f"backward could not add its gradients into .grad: {e}")
    if np.shape(out) != (n, d_out):
        return result.fail("0 interface", f"forward returned shape {np.shape(out)} for x of shape "
                                   f"{x.shape}; expected ({n}, {d_out})")
    if dx is None or np.shape(dx) != x.shape:
        return result.fail("0 interface", f"backward returned {'None' if dx is None else np.shape(dx)}; "
                                   f"dx has x's shape {x.shape}")
    result.stages.append(("0 interface", "passed"))

    ref = Linear(d_in, d_out, dtype=np.float64, name="ref")
    W = w.T if parts[1] else w
    ref.W.data[...], ref.b.data[...] = W, parts[2].data
    ref_out = ref.forward(x.copy())
    ref_dx = ref.backward(dout.copy())
    ref_dw = ref.W.grad.T if parts[1] else ref.W.grad
    rows = [("out", out, ref_out), ("dx", dx, ref_dx), ("dW", dw, ref_dw), ("db", db, ref.b.grad)]
    result.rows = [Row(0, name, float(np.abs(a - b).max()), rel_error(a, b),
                       rel_error(a, b) <= RTOL) for name, a, b in rows]
    bad = next((r for r in result.rows if not r.ok), None)
    said = overwritten([("W", dw, ref_dw), ("b", db, ref.b.grad)])
    if said:
        return result.fail("1 fixed inputs", said, "self.W.grad += ... (and the same for b)")
    if bad is not None:
        why = {"out": "your forward is not x W + b",
               "dx": "your dx is not dout W^T",
               "dW": "your dW is not x^T dout",
               "db": "your db is not dout summed over the batch"}[bad.name]
        c = _factor(dict((n, a) for n, a, _ in rows)[bad.name],
                    dict((n, b) for n, _, b in rows)[bad.name])
        if c is not None:
            why += f" (it is {c:g} times it" + (": the 1/N of a mean does not belong in a "
                                                 "layer's gradient" if np.isclose(c, 1 / n)
                                                 else "") + ")"
        return result.fail("1 fixed inputs", why, "each gradient has its parameter's shape: dW = x^T "
                                           "dout (d_in, d_out), db = sum over N of dout, dx = "
                                           "dout W^T (N, d_in)")
    result.stages.append(("1 fixed inputs", "passed"))
    result.notes.append("stage 2 (finite differences) not run: stage 1 compared out, dx, dW and "
                        "db with dlx's Linear, whose gradients are tested against them")
    result.passed = True
    from dlx.checks import oracle  # torch's autograd of x W + b

    oracle.attach(result, oracle.module(layer, ref, [(parts[0], ref.W, parts[1]),
                                                     (parts[2], ref.b, False)], x, dout))
    return result


def _factor(a: np.ndarray, b: np.ndarray) -> float | None:
    keep = np.abs(b) > 1e-12
    if a.shape != b.shape or not keep.any():
        return None
    ratio = a[keep] / b[keep]
    return float(ratio[0]) if np.allclose(ratio, ratio[0], rtol=1e-6) else None
