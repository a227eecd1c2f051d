"""`dlx check layer=mine.dropconnect.DropConnectLinear`: the learner's DropConnect layer (Wan et
al. 2013, inverted), built as ``DropConnectLinear(in_features, out_features, keep_prob, rng)``:
a Linear whose *weights* are dropped, W * M / keep_prob with M ~ Bernoulli(keep_prob) per
weight, one mask per forward (per mini-batch). The mask is random, so it is read off the
layer's own output: a batch that starts with the identity matrix gives, row by row, the weights
the forward used, W_eff = out - b. Then, as :mod:`dlx.checks.dropout` does:

0. interface: the Parameters W (in, out) (or torch's (out, in)) and b; out (N, out), dx (N, in);
1. fixed inputs (W and b from ``linspace``, 60 x 150 weights, keep_prob 0.8):
   - every weight used is 0 or W / keep_prob; keep_prob of them kept (within 5 binomial sd);
   - the rest of the batch used the same W_eff: out = x W_eff + b (one mask per forward);
   - backward: dx = dout W_eff^T, dW = (x^T dout) * M / keep_prob, db = sum of dout;
   - a new mask per forward, the same one from the same seeded ``rng``; eval mode and
     keep_prob 1 are the plain Linear.

Each failure names the mistake: the outputs dropped (dropout after a Linear) instead of the
weights, no 1/keep_prob scaling, a mask per example, dW without the mask (or its scaling), dx
through the undropped W, a mask reused, numpy's global generator, dropping in eval mode.
"""

from __future__ import annotations

import numpy as np

from dlx.checks.dropout import KEEP
from dlx.checks.linear import _weights, build
from dlx.checks.result import RTOL, Result, Row, rel_error

D_IN, D_OUT, N = 60, 150, 20


def _prop(name: str, ok: bool, err: float = 0.0) -> Row:
    return Row(0, name, err, err, ok, 0.0)


def _layer(cls, keep: float = KEEP):
    layer = build(cls, D_IN, D_OUT, keep)
    parts = _weights(layer, D_IN, D_OUT)
    if isinstance(parts, str):
        return layer, parts
    w, transposed, b = parts
    W = np.linspace(0.2, 1.0, D_IN * D_OUT).reshape(D_IN, D_OUT)
    W *= np.where(np.arange(W.size).reshape(W.shape) % 3 == 0, -1.0, 1.0)  # signs mixed
    w.data[...] = W.T if transposed else W
    b.data[...] = np.linspace(0.2, -0.3, D_OUT)
    return layer, (w, transposed, b, W)


def _inputs():
    dense = np.sin(np.linspace(0.0, 30.0, N * D_IN)).reshape(N, D_IN)
    x = np.vstack([np.eye(D_IN), dense])  # the identity rows read the weights used
    dout = np.cos(np.linspace(0.0, 50.0, len(x) * D_OUT)).reshape(len(x), D_OUT)
    return x, dout


def _pass(layer, parts, x, dout):
    w, transposed, b, W = parts
    for p in layer.parameters():
        p.grad[...] = 0
    out = np.asarray(layer.forward(x.copy()))
    dx = layer.backward(dout.copy())
    dW = w.grad.T if transposed else w.grad
    return out, dx, dW.copy(), b.grad.copy()


def _dropped_outputs(out: np.ndarray, plain: np.ndarray) -> bool:
    """Every output entry is 0 or (x W + b) / keep_prob: the outputs' dropout."""
    some = np.abs(plain) > 1e-9
    ratio = out[some] / plain[some]
    kept = np.abs(ratio) > 1e-12
    return bool(kept.any() and not kept.all() and np.allclose(ratio[kept], 1 / KEEP, rtol=1e-9))


def check(cls) -> Result:
    result = Result(passed=False)
    layer, parts = _layer(cls)
    if isinstance(parts, str):
        return result.fail("0 interface", parts)
    W, b = parts[3], parts[2].data.copy()
    x, dout = _inputs()
    kept_x = x.copy()
    out, dx, dW, db = _pass(layer, parts, x, dout)
    if out.shape != (len(x), D_OUT) or dx is None or np.shape(dx) != x.shape:
        return result.fail("0 interface", f"forward returned {out.shape} (want {(len(x), D_OUT)})"
                           f" and backward {None if dx is None else np.shape(dx)} (want dx "
                           f"shaped as x, {x.shape})")
    if not np.array_equal(x, kept_x):
        return result.fail("0 interface", "forward changed its input in place")
    result.stages.append(("0 interface", "passed"))
    rows: list[Row] = []

    def fail(title, revisit):
        result.rows = rows
        return result.fail("1 fixed inputs", title, revisit)

    plain = x @ W + b
    W_eff = out[:D_IN] - b
    ratio = W_eff / W
    kept = np.abs(ratio) > 1e-12
    scale = ratio[kept]
    rows.append(_prop("weights used are 0 or W / keep_prob",
                      bool(np.allclose(scale, 1 / KEEP, rtol=1e-9))))
    if not rows[-1].ok:
        some = np.abs(plain) > 1e-9
        on_out = out[some] / plain[some]
        if np.allclose(on_out[np.abs(on_out) > 1e-12], 1 / KEEP, rtol=1e-9):
            return fail("your layer drops outputs (dropout after a Linear), not weights",
                        "DropConnect masks W itself: out = x (W * M / keep_prob) + b, with M of "
                        "W's shape; the bias is not dropped")
        if len(scale) and np.allclose(scale, 1.0, rtol=1e-9):
            return fail("your kept weights are W itself: no 1/keep_prob scaling",
                        "inverted DropConnect divides the kept weights by keep_prob so that "
                        "E[W * M / keep_prob] = W, and eval uses W as it is")
        return fail("the weights your forward used are not 0 or W / keep_prob",
                    "out = x (W * M / keep_prob) + b with M ~ Bernoulli(keep_prob) per weight")
    err = rel_error(out[D_IN:], x[D_IN:] @ W_eff + b)
    if err > RTOL and _dropped_outputs(out[D_IN:], plain[D_IN:]):
        rows.append(Row(0, "one mask for the batch: out = x W_eff + b", err, err, False))
        return fail("your layer drops outputs (dropout after a Linear), not weights",
                    "DropConnect masks W itself: out = x (W * M / keep_prob) + b, with M of "
                    "W's shape, one per forward; a dropped output is a whole column of M")
    if kept.shape[1] > 1 and np.array_equal(kept.all(axis=0), kept.any(axis=0)):
        rows.append(_prop("a mask per weight", False))
        return fail("your mask keeps or drops whole output units (every weight into a unit "
                    "together): that is dropout on the outputs, shared by the batch",
                    "DropConnect draws M ~ Bernoulli(keep_prob) for every weight on its own, "
                    "M of W's shape")
    frac = float(kept.mean())
    sd = (KEEP * (1 - KEEP) / kept.size) ** 0.5
    rows.append(Row(0, "fraction of weights kept", abs(frac - KEEP), abs(frac - KEEP) / KEEP,
                    abs(frac - KEEP) <= 5 * sd, 5 * sd / KEEP))
    if not rows[-1].ok:
        return fail(f"your layer keeps {frac:.3f} of the weights at keep_prob {KEEP}"
                    + (": keep and drop probabilities are swapped"
                       if abs(frac - (1 - KEEP)) <= 5 * sd else ""),
                    "M ~ Bernoulli(keep_prob): each weight kept with probability keep_prob")
    rows.append(Row(0, "one mask for the batch: out = x W_eff + b", err, err, err <= RTOL))
    if not rows[-1].ok:
        return fail("the examples of one batch did not share one mask of the weights (a mask "
                    "per example?)", "DropConnect as dlx (and Wan et al.'s practice) writes it "
                    "draws one M per forward, for the whole mini-batch: out = x W_eff + b")
    want_dW = (x.T @ dout) * np.where(kept, 1 / KEEP, 0.0)
    named = [("dx = dout W_eff^T", dx, dout @ W_eff.T), ("dW = (x^T dout) * M / keep_prob", dW,
                                                           want_dW),
             ("db = sum of dout", db, dout.sum(axis=0))]
    for name, a, want in named:
        err = rel_error(np.asarray(a), want)
        rows.append(Row(0, name, float(np.abs(np.asarray(a) - want).max()), err, err <= RTOL))
    if not all(r.ok for r in rows[-3:]):
        if rel_error(dW, x.T @ dout) <= RTOL:
            return fail("your dW is x^T dout for every weight: the mask is missing from it",
                        "a dropped weight took no part in the forward, so its gradient is 0; a "
                        "kept one's carries the 1/keep_prob: dW = (x^T dout) * M / keep_prob")
        if rel_error(dW, (x.T @ dout) * kept) <= RTOL:
            return fail("your dW is masked but lacks the 1/keep_prob",
                        "the forward used W * M / keep_prob: dW = (x^T dout) * M / keep_prob")
        if rel_error(np.asarray(dx), dout @ W.T) <= RTOL:
            return fail("your dx goes through W, not the dropped W_eff the forward used",
                        "dx = dout (W * M / keep_prob)^T: keep the forward's W_eff on self")
        bad = next(r for r in rows[-3:] if not r.ok)
        return fail(f"your {bad.name.split(' = ')[0]} is not the gradient of the forward's "
                    f"x W_eff + b", "with W_eff = W * M / keep_prob fixed by the forward: dx = "
                    "dout W_eff^T, dW = (x^T dout) * M / keep_prob, db = sum of dout")

    again = np.asarray(layer.forward(x.copy()))[:D_IN] - b
    rows.append(_prop("a new mask per forward", not np.array_equal(again != 0, W_eff != 0)))
    if not rows[-1].ok:
        return fail("your layer uses the same mask at every forward",
                    "draw a new M at each forward: each mini-batch trains its own thinned net")
    twin, _ = _layer(cls)
    rows.append(_prop("masks from the rng given", np.array_equal(
        np.asarray(twin.forward(x.copy())), out)))
    if not rows[-1].ok:
        return fail("two layers given the same seeded rng drew different masks: yours does not "
                    "draw from the rng dlx passes (np.random.* uses a global state)",
                    "draw with self.rng (self.rng.random(W.shape) < keep_prob): a run is then "
                    "reproducible from its seed")
    layer.eval()
    ev, edx, edW, _ = _pass(layer, parts, x, dout)
    err = max(rel_error(ev, plain), rel_error(np.asarray(edx), dout @ W.T),
              rel_error(edW, x.T @ dout))
    rows.append(Row(0, "eval: the plain Linear (out, dx, dW)", err, err, err <= RTOL))
    if not rows[-1].ok:
        return fail("your layer drops weights in eval mode",
                    "after .eval() DropConnect is the plain Linear with W: the 1/keep_prob of "
                    "training already keeps E[W_eff] = W")
    one, _ = _layer(cls, 1.0)
    err = rel_error(np.asarray(one.forward(x.copy())), plain)
    rows.append(Row(0, "keep_prob 1: the plain Linear", err, err, err <= RTOL))
    if not rows[-1].ok:
        return fail("at keep_prob 1 your layer is not the plain Linear",
                    "keeping every weight is x W + b")
    result.rows = rows
    result.stages.append(("1 fixed inputs", "passed"))
    result.notes.append(f"checked at {D_IN} x {D_OUT} weights, keep_prob {KEEP}; the mask is "
                        f"random: not compared entry by entry with dlx's; stage 2 not run (dx "
                        f"and dW are checked against the forward's own W_eff above)")
    result.passed = True
    return result
