"""`dlx check layer=mine.lstm.LSTMCell` (and ``GRUCell``, ``RNNCell``): the learner's recurrent
step against dlx's cell of that kind (torch's layout and gate order: LSTM i, f, g, o; GRU r, z,
n), built alike as ``Cell(input_size, hidden_size)``, from the same weights, in float64, in
stages (for an LSTM; a GRU's and an RNN's state is h alone):

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
h' = o c' without the tanh; a GRU's blocks in another order than r, z, n, its reset gate applied
to h before W_hn (Cho et al.'s original, not torch's), its update gate's sides swapped; an RNN
step with a ReLU or a sigmoid where the reference's is tanh.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from dlx.checks.linear import build
from dlx.checks.models import _fixed, _localise, kept_arrays, match
from dlx.checks.result import GRAD_RTOL, RTOL, Result, Row, rel_error
from dlx.nn.recurrent import GRUCell, LSTMCell, RNNCell

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


def gru_forward(x, h, params, order="rzn", reset_after=True, z_swapped=False):
    """One GRU step with switches: the gate blocks' ``order``, the reset gate applied after
    W_hn (torch's) or to h before it (Cho et al.'s original), the update gate's two sides."""
    w_ih, w_hh, b_ih, b_hh = params
    n_ = h.shape[1]
    a, b = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    k = {name: slice(j * n_, (j + 1) * n_) for j, name in enumerate(order)}
    r, z = _sig(a[:, k["r"]] + b[:, k["r"]]), _sig(a[:, k["z"]] + b[:, k["z"]])
    if reset_after:
        n = np.tanh(a[:, k["n"]] + r * b[:, k["n"]])
    else:
        n = np.tanh(a[:, k["n"]] + (r * h) @ w_hh[k["n"]].T + b_hh[k["n"]])
    return (z * n + (1 - z) * h if z_swapped else (1 - z) * n + z * h,)


def rnn_forward(x, h, params, act="tanh"):
    w_ih, w_hh, b_ih, b_hh = params
    pre = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    return (np.tanh(pre) if act == "tanh" else np.maximum(pre, 0) if act == "relu"
            else _sig(pre),)


def _gru_catalogue():
    out = [(f"your gate blocks are read in the order {', '.join(p)}: dlx's (and torch's) "
            f"weight rows hold r, z, n", {"order": "".join(p)})
           for p in itertools.permutations("rzn") if "".join(p) != "rzn"]
    out.append(("your reset gate multiplies h before W_hn (Cho et al.'s original GRU): torch's "
                "(and dlx's) multiplies W_hn h + b_hn, n = tanh(a_n + r (W_hn h + b_hn))",
                {"reset_after": False}))
    out.append(("your update gate weighs the two sides the other way: h' = z n + (1 - z) h "
                "where torch's is h' = (1 - z) n + z h (z keeps the old state)",
                {"z_swapped": True}))
    return out


def _lstm_intermediates(ref, x, state, dstate):
    (h, c), (dh, dc) = state, dstate
    ref.forward(x.copy(), (h.copy(), c.copy()))
    i, f, g, o, _, tc = ref._one[2]
    c2 = f * c + i * g
    dc_total = dc + dh * o * (1 - tc * tc)
    named = [("input gate i", i), ("forget gate f", f), ("cell candidate g", g),
             ("output gate o", o), ("c' = f c + i g", c2), ("tanh(c')", tc),
             ("dL/dc' (dc' + dh' o (1 - tanh^2 c'))", dc_total)]
    return [(n, v, "the gradient reaching c' (both its paths)" if n.startswith("dL/d") else
             f"the LSTM step's {n.split(' ')[0]}") for n, v in named]


def _gru_intermediates(ref, x, state, dstate):
    ref.forward(x.copy(), state[0].copy())
    r, z, n, bn, _ = ref._one[2]
    return [("reset gate r", r, "the GRU step's r"), ("update gate z", z, "the GRU step's z"),
            ("candidate n", n, "the GRU step's n")]


def _rnn_intermediates(ref, x, state, dstate):
    h2 = ref.forward(x.copy(), state[0].copy())
    return [("h' = tanh(...)", h2, "the step's tanh"),
            ("dL/d(pre-activation)", dstate[0] * (1 - h2 * h2),
             "the tanh's backward, dh' (1 - h'^2)")]


@dataclass(frozen=True)
class Kind:
    name: str
    ref: type
    gates: int
    arity: int            # 2: the state is (h, c); 1: h alone
    forward: Callable     # (x, h, params, **switches) -> the new state's tuple, the catalogue's
    catalogue: list
    intermediates: Callable
    layout: str           # what the weights' rows hold
    rule: str


def _lstm_forward(x, h, params, c=None, **switches):
    return forward(x, h, c, params, **switches)


KINDS = {
    "lstm": Kind("LSTMCell", LSTMCell, 4, 2, _lstm_forward, CATALOGUE, _lstm_intermediates,
                 "i, f, g, o", "[i, f, g, o] = x W_ih^T + b_ih + h W_hh^T + b_hh; i, f, o = "
                 "sigmoid, g = tanh; c' = f c + i g; h' = o tanh(c')"),
    "gru": Kind("GRUCell", GRUCell, 3, 1, gru_forward, _gru_catalogue(), _gru_intermediates,
                "r, z, n", "r = sigmoid(a_r + b_r); z = sigmoid(a_z + b_z); n = tanh(a_n + r "
                "b_n); h' = (1 - z) n + z h, with a = x W_ih^T + b_ih, b = h W_hh^T + b_hh"),
    "rnn": Kind("RNNCell", RNNCell, 1, 1, rnn_forward,
                [("your step's nonlinearity is a ReLU where dlx's RNNCell (and torch's default) "
                  "is tanh", {"act": "relu"}),
                 ("your step's nonlinearity is a sigmoid where dlx's RNNCell is tanh",
                  {"act": "sigmoid"})],
                _rnn_intermediates, "one block", "h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)"),
}


def _inputs():
    x = np.sin(np.linspace(0.0, 4.0, B * I)).reshape(B, I)
    h = np.cos(np.linspace(0.0, 3.0, B * H)).reshape(B, H) * 0.5
    c = np.linspace(-0.8, 0.9, B * H).reshape(B, H)
    dh = np.linspace(0.3, -0.4, B * H).reshape(B, H)
    dc = np.sin(np.linspace(1.0, 5.0, B * H)).reshape(B, H) * 0.2
    return x, (h, c), (dh, dc)


def _as_tuple(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _step(cell, kind: Kind, x, state, dstate, pairs, side: int):
    for p in cell.parameters():
        p.grad[...] = 0
    given = tuple(a.copy() for a in state[:kind.arity])
    out = cell.forward(x.copy(), given if kind.arity > 1 else given[0])
    back = tuple(a.copy() for a in dstate[:kind.arity])
    kept = kept_arrays(cell, lambda: cell.backward(back if kind.arity > 1 else back[0]))
    dx = kept.pop("<result>")
    grads = [p[side].grad.copy() for p in pairs]
    d0 = getattr(cell, "dstate0", None)
    return out, dx, grads, None if d0 is None else _as_tuple(d0), kept


def check(cls, which: str = "lstm") -> Result:
    kind = KINDS[which]
    result = Result(passed=False)
    cell = build(cls, I, H)
    ref = kind.ref(I, H, dtype=np.float64)
    pairs = match(cell.parameters(), ref.parameters())
    if isinstance(pairs, str) or any(t for _, _, t in pairs):
        return result.fail("0 interface", pairs if isinstance(pairs, str) else
                           f"your weights are transposed: torch's (and dlx's) layout is "
                           f"weight_ih ({kind.gates}H, I) and weight_hh ({kind.gates}H, H)")
    _fixed(pairs, np.random.default_rng(0))
    x, state, dstate = _inputs()
    out, dx, grads, dstate0, kept = _step(cell, kind, x, state, dstate, pairs, 0)
    names = ("h'", "c'")[:kind.arity]
    shown = "(h, c)" if kind.arity > 1 else "h"
    got = _as_tuple(out)
    if len(got) != kind.arity or any(np.shape(a) != (B, H) for a in got):
        return result.fail("0 interface", f"forward(x, {shown}) returned "
                           f"{[np.shape(a) for a in got]}: it returns "
                           + ("the pair (h', c'), each" if kind.arity > 1 else "h',")
                           + f" (B, H) = {(B, H)}")
    if dx is None or np.shape(dx) != (B, I):
        return result.fail("0 interface", f"backward returned "
                           f"{'None' if dx is None else np.shape(dx)}; dx is (B, I) = {(B, I)}")
    result.stages.append(("0 interface", "passed"))
    theirs = _step(ref, kind, x, state, dstate, pairs, 1)
    named = [*zip(names, got, _as_tuple(theirs[0])),
             *[(f"{p[1].name} grad", g, rg) for p, g, rg in zip(pairs, grads, theirs[2])],
             ("dx", dx, theirs[1])]
    if dstate0 is not None and len(dstate0) == kind.arity:
        named += [(f"dstate0 {n[0]}", a, b) for n, a, b in zip(names, dstate0, theirs[3])]
    else:
        result.notes.append(f"not checked: the gradient of the state given to forward (set "
                            f"self.dstate0 = {'(dh, dc)' if kind.arity > 1 else 'dh'} in "
                            f"backward: BPTT carries it back a step)")
    result.rows = [Row(0, n, float(np.abs(np.asarray(a) - b).max()), rel_error(a, b),
                       rel_error(a, b) <= RTOL) for n, a, b in named]
    if not all(r.ok for r in result.rows):
        params = [p[1].data for p in pairs]
        for title, switches in kind.catalogue:
            extra = {"c": state[1]} if kind.arity > 1 else {}
            twin = kind.forward(x, state[0], params, **extra, **switches)
            if all(rel_error(a, b) <= RTOL for a, b in zip(got, twin)):
                return result.fail("1 fixed inputs", title, kind.rule)
        bad = next(r for r in result.rows if not r.ok)
        result.stages.append(("1 fixed inputs", "failed"))
        where = _localise(kind.intermediates(ref, x, state, dstate), kept, result,
                          (x, *state[:kind.arity]))
        result.failed = "1 fixed inputs"
        result.diagnosis = f"your {bad.name} differs from dlx's {kind.name}'s" + where
        result.revisit = ("derive that step again (the rows below compare dlx's intermediates "
                          "with the closest arrays your cell keeps on self)")
        return result
    result.stages.append(("1 fixed inputs", "passed"))

    def f() -> float:
        given = state[:kind.arity]
        new = _as_tuple(cell.forward(x, given if kind.arity > 1 else given[0]))
        return float(sum((a * d).sum() for a, d in zip(new, dstate)))

    rng, step = np.random.default_rng(1), 1e-6
    rows = []
    for (mine, _, _), g in [*zip(pairs, grads)]:
        pick = rng.choice(mine.data.size, min(8, mine.data.size), replace=False)
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
    from dlx.checks import oracle

    oracle.attach(result, oracle.cell(which, [p[1].data for p in pairs], x, state, dstate, got,
                                      dx, grads, dstate0 if dstate0 is not None
                                      and len(dstate0) == kind.arity else None))
    return result
