"""`dlx check layer=mine.lstm.LSTMCell`: the learner's LSTM step against dlx's LSTMCell (torch's
layout and gate order i, f, g, o), built alike as ``LSTMCell(input_size, hidden_size)``, from
the same weights, in float64, in stages:

0. interface: the Parameters weight_ih (4H, I), weight_hh (4H, H), bias_ih and bias_hh (4H,), in
   that order; ``forward(x, (h, c))`` returning the pair (h', c'), each (B, H);
   ``backward((dh', dc'))`` returning dx (B, I);
1. fixed inputs: x, h, c, dh' and dc' from ``linspace``: h', c', every weight's gradient, dx, and
   the gradient of the state given to forward (``self.dstate0 = (dh, dc)``, as dlx's cell sets
   it: what backpropagation through time carries to the step before);
2. gradients: against centred finite differences of sum(h' dh' + c' dc');
3. named intermediates (when stage 1 fails): the gates, c' and tanh(c'), and their gradients,
   against the arrays the learner's cell keeps on self.

A failure is matched against a catalogue: the four gate blocks in another order (cs231n's
i, f, o, g, say, where torch's and dlx's rows are i, f, g, o), no forget gate (c' = c + i g),
h' = o c' without the tanh.
"""

from __future__ import annotations

import itertools

import numpy as np

from dlx.checks.linear import build
from dlx.checks.models import _fixed, _localise, kept_arrays, match
from dlx.checks.result import GRAD_RTOL, RTOL, Result, Row, rel_error
from dlx.nn.recurrent import LSTMCell

B, I, H = 3, 4, 5  # noqa: E741 - the batch, input and hidden sizes, as the docs write them


def _sig(z):
    return 1 / (1 + np.exp(-z))


def forward(x, h, c, params, order="ifgo", forget=True, tanh_c=True):
    """One LSTM step with switches: the gate blocks' ``order`` along the rows, the forget gate,
    the tanh of c' in h'."""
    w_ih, w_hh, b_ih, b_hh = params
    z = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    n = h.shape[1]
    block = {name: z[:, k * n:(k + 1) * n] for k, name in enumerate(order)}
    i, f, o, g = _sig(block["i"]), _sig(block["f"]), _sig(block["o"]), np.tanh(block["g"])
    c2 = (f * c if forget else c) + i * g
    return o * (np.tanh(c2) if tanh_c else c2), c2


def _catalogue():
    out = [(f"your gate blocks are read in the order {', '.join(p)}: dlx's (and torch's) "
            f"weight rows hold i, f, g, o", {"order": "".join(p)})
           for p in itertools.permutations("ifgo") if "".join(p) != "ifgo"]
    out.append(("your cell has no forget gate: c' = c + i g where c' = f c + i g",
                {"forget": False}))
    out.append(("your h' is o c' without the tanh: h' = o tanh(c')", {"tanh_c": False}))
    return out


CATALOGUE = _catalogue()


def _inputs():
    x = np.sin(np.linspace(0.0, 4.0, B * I)).reshape(B, I)
    h = np.cos(np.linspace(0.0, 3.0, B * H)).reshape(B, H) * 0.5
    c = np.linspace(-0.8, 0.9, B * H).reshape(B, H)
    dh = np.linspace(0.3, -0.4, B * H).reshape(B, H)
    dc = np.sin(np.linspace(1.0, 5.0, B * H)).reshape(B, H) * 0.2
    return x, h, c, dh, dc


def _step(cell, x, h, c, dh, dc, pairs, side: int):
    for p in cell.parameters():
        p.grad[...] = 0
    out = cell.forward(x.copy(), (h.copy(), c.copy()))
    kept = kept_arrays(cell, lambda: cell.backward((dh.copy(), dc.copy())))
    dx = kept.pop("<result>")
    grads = [p[side].grad.copy() for p in pairs]
    return out, dx, grads, getattr(cell, "dstate0", None), kept


def _intermediates(ref, x, h, c, dh, dc):
    ref.forward(x.copy(), (h.copy(), c.copy()))
    i, f, g, o, _, tc = ref._one[2]
    c2 = f * c + i * g
    dc_total = dc + dh * o * (1 - tc * tc)
    named = [("input gate i", i), ("forget gate f", f), ("cell candidate g", g),
             ("output gate o", o), ("c' = f c + i g", c2), ("tanh(c')", tc),
             ("dL/dc' (dc' + dh' o (1 - tanh^2 c'))", dc_total)]
    return [(n, v, "the gradient reaching c' (both its paths)" if n.startswith("dL/d") else
             f"the LSTM step's {n.split(' ')[0]}") for n, v in named]


def check(cls) -> Result:
    result = Result(passed=False)
    cell = build(cls, I, H)
    ref = LSTMCell(I, H, dtype=np.float64)
    pairs = match(cell.parameters(), ref.parameters())
    if isinstance(pairs, str) or any(t for _, _, t in pairs):
        return result.fail("0 interface", pairs if isinstance(pairs, str) else
                           "your weights are transposed: torch's (and dlx's) layout is "
                           "weight_ih (4H, I) and weight_hh (4H, H)")
    _fixed(pairs, np.random.default_rng(0))
    x, h, c, dh, dc = _inputs()
    out, dx, grads, dstate0, kept = _step(cell, x, h, c, dh, dc, pairs, 0)
    if not (isinstance(out, (tuple, list)) and len(out) == 2
            and all(np.shape(a) == (B, H) for a in out)):
        got = [np.shape(a) for a in out] if isinstance(out, (tuple, list)) else np.shape(out)
        return result.fail("0 interface", f"forward(x, (h, c)) returned {type(out).__name__} "
                           f"{got}: it returns the pair (h', c'), each (B, H) = {(B, H)}")
    if dx is None or np.shape(dx) != (B, I):
        return result.fail("0 interface", f"backward returned "
                           f"{'None' if dx is None else np.shape(dx)}; dx is (B, I) = {(B, I)}")
    result.stages.append(("0 interface", "passed"))
    theirs = _step(ref, x, h, c, dh, dc, pairs, 1)
    named = [("h'", out[0], theirs[0][0]), ("c'", out[1], theirs[0][1]),
             *[(f"{p[1].name} grad", g, rg) for p, g, rg in zip(pairs, grads, theirs[2])],
             ("dx", dx, theirs[1])]
    if dstate0 is not None:
        named += [("dstate0 h", dstate0[0], theirs[3][0]), ("dstate0 c", dstate0[1], theirs[3][1])]
    else:
        result.notes.append("not checked: the gradient of the state given to forward (set "
                            "self.dstate0 = (dh, dc) in backward: BPTT carries it back a step)")
    result.rows = [Row(0, n, float(np.abs(np.asarray(a) - b).max()), rel_error(a, b),
                       rel_error(a, b) <= RTOL) for n, a, b in named]
    if not all(r.ok for r in result.rows):
        params = [p[1].data for p in pairs]
        for title, switches in CATALOGUE:
            twin = forward(x, h, c, params, **switches)
            if rel_error(out[0], twin[0]) <= RTOL and rel_error(out[1], twin[1]) <= RTOL:
                return result.fail("1 fixed inputs", title, "[i, f, g, o] = x W_ih^T + b_ih + "
                                   "h W_hh^T + b_hh; i, f, o = sigmoid, g = tanh; c' = f c + "
                                   "i g; h' = o tanh(c')")
        bad = next(r for r in result.rows if not r.ok)
        result.stages.append(("1 fixed inputs", "failed"))
        where = _localise(_intermediates(ref, x, h, c, dh, dc), kept, result, (x, h, c))
        result.failed = "1 fixed inputs"
        result.diagnosis = f"your {bad.name} differs from dlx's LSTMCell's" + where
        result.revisit = ("derive that step again (the rows below compare dlx's intermediates "
                          "with the closest arrays your cell keeps on self)")
        return result
    result.stages.append(("1 fixed inputs", "passed"))

    def f() -> float:
        hh, cc = cell.forward(x, (h, c))
        return float((hh * dh).sum() + (cc * dc).sum())

    rng, step = np.random.default_rng(1), 1e-6
    rows = []
    for (mine, _, _), g in [*zip(pairs, grads)]:
        pick = rng.choice(mine.data.size, 8, replace=False)
        numeric = []
        for k in pick:
            idx = np.unravel_index(k, mine.data.shape)
            old = mine.data[idx]
            mine.data[idx] = old + step
            up = f()
            mine.data[idx] = old - step
            numeric.append((up - f()) / (2 * step))
            mine.data[idx] = old
        err = rel_error(g.reshape(-1)[pick], np.array(numeric))
        rows.append(Row(0, f"{mine.name or 'param'} grad vs finite differences",
                        float(np.abs(g.reshape(-1)[pick] - numeric).max()), err,
                        err <= GRAD_RTOL, GRAD_RTOL))
    result.rows += rows
    if not all(r.ok for r in rows):
        return result.fail("2 gradients", "your backward is not your forward's derivative")
    result.stages.append(("2 gradients", "passed"))
    result.passed = True
    return result
