"""`dlx check layer=mine.bptt.RNN` (and an LSTM or GRU over a sequence): the learner's recurrent
layer over a whole sequence, forward and backpropagation through time, against dlx's RNN, LSTM
or GRU (one layer, batch first, zero initial state: torch's with batch_first=True), built alike
as ``Layer(input_size, hidden_size)``, from the same weights, in float64: the stages of
:mod:`dlx.checks.models` on x (B, T, I), with every step's state h_t and the whole gradient
reaching it, dL/dh_t, as the intermediates of stage 3.

A failure of stage 1 is placed in time (the first step whose h_t differs; the steps whose dx
differs, counted back from the last) and matched against BPTT's own mistakes, each a switch on
the reference's backward: the gradient from step t+1 not carried back (each step sees dout[:, t]
alone), the weights' gradients overwritten at each step instead of summed over time, and
W_hh's gradient taken with h_t where h_{t-1} belongs.
"""

from __future__ import annotations

import inspect

import numpy as np

from dlx.checks import models
from dlx.checks.linear import build
from dlx.checks.result import RTOL, Result, rel_error
from dlx.nn.recurrent import RECURRENT

B, T, I, H = 2, 6, 3, 4  # noqa: E741 - batch, steps, input and hidden sizes, as the docs write them
NAMES = {"rnn": "RNN (tanh)", "lstm": "LSTM", "gru": "GRU"}
CELLS = {"rnn": "rnn.RNNCell", "lstm": "lstm.LSTMCell", "gru": "rnn.GRUCell"}  # the exercises

# (title, revisit, switches of _bptt)
CATALOGUE = (
    ("your backward does not carry the gradient from step t+1 back to step t: each step's "
     "gradient is dout[:, t] alone (the last step matches, earlier ones do not)",
     "h_t reaches the loss through out[:, t] and through h_{t+1}: dh_t = dout[:, t] + dh_next, "
     "with dh_next = (what step t+1's backward sends to its h input)", {"carry": False}),
    ("your weight gradients hold one step's share: they are overwritten at every step where "
     "they sum over time", "the weights are shared by every step: add each step's gradient "
     "(+=), from t = T down to 1", {"accumulate": False}),
    ("your weight_hh gradient takes h_t where the step's input, h_{t-1}, belongs",
     "step t computes h_{t-1} W_hh^T: its weight gradient is da_t^T h_{t-1} (the state it was "
     "given, not the one it made)", {"h_offset": 1}),
)


def is_sequence(cls) -> bool:
    """A layer over a sequence (``forward(x)``, the state optional), not a cell
    (``forward(x, state)``): its name says no "cell" and forward asks for one input."""
    if "cell" in cls.__name__.lower():
        return False
    try:
        params = list(inspect.signature(cls.forward).parameters.values())[1:]  # self
    except (TypeError, ValueError):
        return False
    return sum(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               for p in params) == 1


def _x() -> np.ndarray:
    return np.sin(np.linspace(0.0, 7.0, B * T * I)).reshape(B, T, I)


def _bptt(ref, x, dout, carry=True, accumulate=True, h_offset=0):
    """dlx's backward through time for one layer, with the catalogue's switches: the weights'
    gradients (in the Parameters' order) and dx."""
    cell = ref.cells[0]
    ref.forward(x.copy())
    _, hs, steps = ref._caches[0]
    grads = [np.zeros_like(p.data) for p in cell.parameters()]  # W_ih, W_hh, b_ih, b_hh
    zero = tuple(np.zeros_like(s) for s in cell.zero_state(len(x)))
    state, dx = zero, np.empty_like(x)
    for t in reversed(range(x.shape[1])):
        ds = (state[0] + dout[:, t], *state[1:])
        da, dhx, prev = cell._step_back(ds, steps[t])
        shares = (da.T @ x[:, t], dhx.T @ hs[:, t + h_offset], da.sum(0), dhx.sum(0))
        for g, share in zip(grads, shares):
            if accumulate:
                g += share
            else:
                g[...] = share
        dx[:, t] = da @ cell.weight_ih.data
        state = (prev[0] + dhx @ cell.weight_hh.data, *prev[1:]) if carry else zero
    return grads, dx


def _intermediates(ref, x, dout):
    ref.keep_hidden_grads = True
    for p in ref.parameters():
        p.grad[...] = 0
    out = np.asarray(ref.forward(x.copy())).copy()
    ref.backward(dout.copy())
    ref.keep_hidden_grads = False
    return [("h_t at every step (B, T, H)", out, "the recurrence, h_t from x_t and h_{t-1}"),
            ("dL/dh_t at every step, all of it (B, T, H)", ref.hidden_grads[0][:, 1:],
             "the carry: dL/dh_t = dout[:, t] + what step t+1 sends back")]


def _steps(a, b) -> list[bool]:
    """Whether each step t (axis 1) of ``a`` matches ``b``'s."""
    return [rel_error(a[:, t], b[:, t]) <= RTOL for t in range(b.shape[1])]


def check(cls, which: str = "rnn") -> Result:
    layer = build(cls, I, H)
    ref = RECURRENT[which](I, H, dtype=np.float64, name=which)
    x = _x()
    result = models.check(layer, ref, x, f"{NAMES[which]} over a sequence", _intermediates,
                          "output")
    if result.passed:
        result.notes.append(f"checked at input_size {I}, hidden_size {H}, x of shape "
                            f"{(B, T, I)} from a zero state; not checked: a given initial "
                            f"state, the final state's gradient, several layers")
    if result.failed != "1 fixed inputs":
        return result
    said = _in_time(layer, ref, x, which)
    if said:
        result.diagnosis, result.revisit = said
    return result


def _in_time(layer, ref, x, which) -> tuple[str, str] | None:
    """What went wrong, and when: the forward's first differing step, else BPTT's catalogue,
    else the steps whose dx differs."""
    for p in layer.parameters():
        p.grad[...] = 0
    mine = np.asarray(layer.forward(x.copy()))
    theirs = np.asarray(ref.forward(x.copy()))
    ok = _steps(mine, theirs)
    if not all(ok):
        t = ok.index(False)
        if t == 0:
            return (f"your h_1 already differs from dlx's {NAMES[which]}'s: the step itself is "
                    f"wrong (from h_0 = 0)", f"check one step on its own first (exercise "
                    f"{CELLS[which].split('.')[0]}): dlx check layer=mine.{CELLS[which]}")
        return (f"your h_t matches dlx's for t = 1..{t} and parts at t = {t + 1}: the step is "
                f"right from a zero state, so h_{{t-1}} reaches step t wrongly (the recurrent "
                f"term h_{{t-1}} W_hh^T + b_hh, or the state handed on)",
                "each step reads the previous step's new state: h_t = step(x_t, h_{t-1})")
    dout = np.linspace(-0.5, 0.6, theirs.size).reshape(theirs.shape) / len(x)
    dx = np.asarray(layer.backward(dout.copy()))
    grads = [p.grad.copy() for p in layer.parameters()]
    for title, revisit, switches in CATALOGUE:
        g, d = _bptt(ref, x, dout, **switches)
        if rel_error(dx, d) <= RTOL and all(np.shape(a) == np.shape(b) and rel_error(a, b)
                                            <= RTOL for a, b in zip(grads, g)):
            return title, revisit
    _, ref_dx = _bptt(ref, x, dout)
    ok = _steps(dx, ref_dx)
    if all(ok):
        return ("your dx matches dlx's at every step; a weight's gradient differs: each is a "
                "sum over the steps of that step's share", "step t's shares: da_t^T x_t for "
                "W_ih, da_t^T h_{t-1} for W_hh, da_t summed over the batch for the biases")
    last = len(ok) - 1 - ok[::-1].index(False)  # the latest step that differs
    if last < len(ok) - 1:
        return (f"your dx matches dlx's at the last {len(ok) - 1 - last} step(s) and parts at "
                f"t = {last + 1} of {len(ok)}: what a step sends back to h_{{t-1}} is wrong "
                f"(the carry through W_hh, or its factor)", "dh_next = da_t W_hh (for an "
                "LSTM also the cell's dc_next = dc_t f_t): add it to dout[:, t-1]")
    return None
