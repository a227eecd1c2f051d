"""`dlx check layer=mine.residual.ResidualBlock` and `layer=mine.block.Block`: blocks made of
layers, whose own maths is how the layers are joined: the residual sum and the gradient that
flows around each branch. Each is checked against dlx's block of the same layers, built alike,
from the same weights, in float64, with the stages of :mod:`dlx.checks.models` and the block's
intermediates (each layer's output and the gradient reaching it) for stage 3:

- a residual block, ``ResidualBlock(d, hidden)``: y = x + F(x), F = Linear(d, hidden) -> ReLU ->
  Linear(hidden, d) (He et al. 2016, the identity shortcut), against dlx's Residual;
- a transformer block, ``Block(d_model, n_heads, d_ff)``, pre-LN as GPT-2:
  h = x + attn(ln1(x)); y = h + mlp(ln2(h)), against dlx's Block.

A failure is matched against a catalogue: no skip in the forward; for the transformer block,
the post-LN order of the 2017 paper, the residual taken around the normalised input, and the
gradient of a residual path left out of the backward (which leaves dx alone wrong, or the first
sublayer's gradients too).
"""

from __future__ import annotations

import numpy as np

from dlx.checks import models
from dlx.checks.linear import build
from dlx.checks.result import RTOL, Result, rel_error
from dlx.nn.activations import ReLU
from dlx.nn.core import Sequential
from dlx.nn.layers import Linear
from dlx.nn.residual import Residual
from dlx.nn.transformer import Block

D, HID = 6, 10                 # the residual block's width and its branch's
C, NH, FF, B, T = 8, 2, 16, 2, 5  # the transformer block's d_model, heads, d_ff; x (B, T, C)


def _residual_ref():
    f64 = {"dtype": np.float64}
    return Residual(Sequential(Linear(D, HID, name="fc1", **f64), ReLU(),
                               Linear(HID, D, name="fc2", **f64)))


def _residual_intermediates(ref, x, dout):
    body = models._reference_intermediates(ref.body, x, dout)  # the branch's, dout reaching F
    return [*[(n.replace("layer", "F's layer"), v, c.replace("layer", "F's layer"))
              for n, v, c in body if not n.startswith("dL/d")],
            ("y = x + F(x)", ref.forward(x.copy()), "the residual sum"),
            *[(n.replace("layer", "F's layer"), v, c.replace("layer", "F's layer"))
              for n, v, c in body if n.startswith("dL/d")]]


def check_residual(cls) -> Result:
    layer, ref = build(cls, D, HID), _residual_ref()
    x = np.sin(np.linspace(0.0, 6.0, 5 * D)).reshape(5, D)
    result = models.check(layer, ref, x, "Residual (y = x + F(x))", _residual_intermediates,
                          "output")
    if result.failed == "1 fixed inputs":
        y = np.asarray(layer.forward(x.copy()))
        dout = np.linspace(-0.5, 0.6, y.size).reshape(y.shape) / len(x)
        if rel_error(y, ref.body.forward(x.copy())) <= RTOL:
            result.diagnosis = "your block's output is F(x) alone: the skip, + x, is missing"
            result.revisit = ("y = x + F(x): the identity shortcut carries x (and, backward, "
                              "dout) around the branch")
        elif rel_error(y, ref.forward(x.copy())) <= RTOL and rel_error(
                np.asarray(layer.backward(dout.copy())),
                np.asarray(ref.body.backward(dout.copy()))) <= RTOL:
            result.diagnosis = ("your backward leaves out the skip's gradient: dL/dx is only what "
                                "comes back through F")
            result.revisit = ("y = x + F(x): x reaches y directly too, so dL/dx = dout + "
                              "F's backward of dout (the identity's Jacobian is I)")
    elif result.passed:
        result.notes.append(f"checked at d {D}, hidden {HID}, x of shape {x.shape}")
    return result


def _block_ref(**options):
    return Block(C, NH, FF, dtype=np.float64, **options)


def _block_intermediates(ref, x, dout):
    for p in ref.parameters():
        p.grad[...] = 0
    a = ref.ln1.forward(x.copy())
    att = ref.attn.forward(a)
    h = x + att
    b = ref.ln2.forward(h)
    m = ref.mlp.forward(b)
    d_b = ref.mlp.backward(dout.copy())
    dh = ref.ln2.backward(d_b) + dout
    d_a = ref.attn.backward(dh)
    return [("ln1(x)", a, "ln1"), ("attn(ln1(x))", att, "the attention"),
            ("h = x + attn(ln1(x))", h, "the first residual sum"), ("ln2(h)", b, "ln2"),
            ("mlp(ln2(h))", m, "the MLP"), ("y = h + mlp(ln2(h))", h + m,
                                            "the second residual sum"),
            ("dL/d(ln2(h))", d_b, "the MLP's backward"),
            ("dL/dh (dout + ln2's backward)", dh, "the second residual's gradient: dout reaches "
                                                  "h directly and through the MLP"),
            ("dL/d(ln1(x))", d_a, "the attention's backward")]


def _twin(params, x, dout, post_ln=False, skip_from_ln=False, drop=None):
    """dlx's block with one of the catalogue's switches: (y, the parameters' gradients, dx)."""
    ref = _block_ref(pre_ln=not post_ln)
    for p, q in zip(ref.parameters(), params):
        p.data[...] = q.data
    if post_ln:
        return ref.forward(x.copy()), None, None
    a = ref.ln1.forward(x.copy())
    h = ref.attn.forward(a) + (a if skip_from_ln else x)
    y = ref.mlp.forward(ref.ln2.forward(h)) + h
    if drop is None:
        return y, None, None
    dh = ref.ln2.backward(ref.mlp.backward(dout.copy())) + (0 if drop == "second" else dout)
    dx = ref.ln1.backward(ref.attn.backward(dh)) + (0 if drop == "first" else dh)
    return y, [p.grad.copy() for p in ref.parameters()], dx


BLOCK_CATALOGUE = (
    ("your block is post-LN (the 2017 paper's x = ln1(x + attn(x))): dlx's, like GPT-2's, is "
     "pre-LN, h = x + attn(ln1(x))", "pre-LN normalises each branch's input and leaves the "
     "residual stream itself unnormalised: the identity path runs from input to output",
     {"post_ln": True}),
    ("your first residual adds ln1(x) where x belongs: h = ln1(x) + attn(ln1(x))",
     "the skip carries the block's input itself, h = x + attn(ln1(x)): the residual stream is "
     "never normalised in a pre-LN block", {"skip_from_ln": True}),
    ("your backward leaves out the second residual's gradient: dL/dh must add dout itself to "
     "what comes back through the MLP and ln2", "y = h + mlp(ln2(h)): h reaches y directly and "
     "through the MLP, so dL/dh = dout + ln2.backward(mlp.backward(dout))", {"drop": "second"}),
    ("your backward leaves out the first residual's gradient: dL/dx must add dL/dh itself to "
     "what comes back through the attention and ln1", "h = x + attn(ln1(x)): dL/dx = dL/dh + "
     "ln1.backward(attn.backward(dL/dh))", {"drop": "first"}),
)


def check_block(cls) -> Result:
    layer, ref = build(cls, C, NH, FF), _block_ref()
    x = np.sin(np.linspace(0.0, 9.0, B * T * C)).reshape(B, T, C)
    result = models.check(layer, ref, x, "Block (pre-LN, as GPT-2)", _block_intermediates,
                          "output")
    if result.passed:
        result.notes.append(f"checked at d_model {C}, {NH} heads, d_ff {FF}, x of shape "
                            f"{(B, T, C)}")
    if result.failed != "1 fixed inputs":
        return result
    params = layer.parameters()  # the weights the stages ran with (the reference's)
    dout = np.linspace(-0.5, 0.6, x.size).reshape(x.shape) / len(x)
    for p in params:
        p.grad[...] = 0
    y = np.asarray(layer.forward(x.copy()))
    dx = np.asarray(layer.backward(dout.copy()))
    grads = [p.grad.copy() for p in params]
    for title, revisit, switches in BLOCK_CATALOGUE:
        ty, tgrads, tdx = _twin(params, x, dout, **switches)
        if rel_error(y, ty) > RTOL:
            continue
        if tgrads is None or (rel_error(dx, tdx) <= RTOL and all(
                rel_error(a, b) <= RTOL for a, b in zip(grads, tgrads))):
            result.diagnosis, result.revisit = title, revisit
            return result
    return result
