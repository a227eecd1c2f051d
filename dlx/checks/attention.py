"""`dlx check layer=mine.attention.SelfAttention`: the learner's multi-head causal self-attention
against dlx's MultiHeadAttention, built alike as ``Attention(d_model, n_heads)`` with the same
Parameters (the fused q, k, v projection (C, 3C) and its bias, the output projection (C, C) and
its bias), from the same weights, in float64: the stages of :mod:`dlx.checks.models` on
x (B, T, C), with the attention's own intermediates for stage 3 (qkv, the weights softmax(q k^T
/ sqrt(D) + mask) per head, the heads' output before the projection, and their gradients).

A failure is matched against a catalogue of switches on the reference: no 1/sqrt(D) (or 1/D),
no causal mask, the diagonal masked too (a position cannot attend to itself: the first row
is all -inf, NaN), the past masked instead of the future.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dlx.checks import models
from dlx.checks.linear import build
from dlx.checks.result import RTOL, Result, rel_error
from dlx.nn.attention import MultiHeadAttention, softmax

C, H, B, T = 8, 2, 2, 5


@dataclass(frozen=True)
class Mistake:
    key: str
    title: str
    revisit: str
    options: dict


class _Switched(MultiHeadAttention):
    """dlx's attention written out plainly, with one switch thrown (the catalogue's)."""

    def __init__(self, d_model, n_heads, scale="sqrt", mask="future"):
        super().__init__(d_model, n_heads, dtype=np.float64)
        self.scale_kind, self.mask_kind = scale, mask

    def forward(self, x):
        Bx, Tx, Cx = x.shape
        D = Cx // self.n_heads
        qkv = self.qkv.forward(x)
        self.inner = {"qkv": qkv}
        q, k, v = (self._heads(part) for part in np.split(qkv, 3, axis=-1))
        scale = {"sqrt": 1 / math.sqrt(D), "none": 1.0, "d": 1 / D}[self.scale_kind]
        att = q @ k.transpose(0, 1, 3, 2) * scale
        offset = {"future": 1, "diagonal": 0}.get(self.mask_kind)
        if offset is not None:
            att = np.where(np.triu(np.ones((Tx, Tx), bool), offset), -np.inf, att)
        elif self.mask_kind == "past":
            att = np.where(np.tril(np.ones((Tx, Tx), bool), -1), -np.inf, att)
        with np.errstate(invalid="ignore"):
            att = softmax(att)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(Bx, Tx, Cx)
        self._cache = (q, k, v, att, scale)
        self.inner.update(att=att, y=y)
        self.qkv_out, self.att, self.y = qkv, att, y  # kept as a learner would keep them
        return self.proj.forward(y)


CATALOGUE = (
    Mistake("no_scale", "your attention scores are q k^T without the 1/sqrt(D) (D the head's "
            "width)", "with q and k of unit-variance entries, q.k has variance D: dividing by "
            "sqrt(D) keeps the softmax out of saturation", {"scale": "none"}),
    Mistake("scale_by_d", "your attention scores are divided by D where sqrt(D) belongs",
            "the variance of q.k is D, its standard deviation sqrt(D)", {"scale": "d"}),
    Mistake("no_mask", "your attention is not causal: a position attends to later ones",
            "set the scores at s > t to -inf before the softmax (np.triu(..., 1))",
            {"mask": "none"}),
    Mistake("mask_diagonal", "your causal mask also masks the diagonal: a position cannot attend "
            "to itself, so the first one attends to nothing (all -inf: NaN)",
            "mask s > t only: np.triu(ones, k=1), the diagonal kept", {"mask": "diagonal"}),
    Mistake("mask_past", "your mask hides the past and keeps the future (the triangle is the "
            "wrong one)", "position t may see s <= t: mask s > t (np.triu, above the diagonal)",
            {"mask": "past"}),
)


def intermediates(ref, x, dout) -> list[tuple[str, np.ndarray, str]]:
    """The attention's named intermediates, forward then backward."""
    for p in ref.parameters():
        p.grad[...] = 0
    ref.forward(x.copy())
    inner = ref.inner
    out = [("qkv = x W_qkv + b_qkv (B, T, 3C)", inner["qkv"], "the q, k, v projection"),
           ("attention weights (B, H, T, T)", inner["att"],
            "the scores q k^T / sqrt(D), the causal mask and the softmax over s"),
           ("heads' output att @ v, (B, T, C)", inner["y"], "att @ v and the heads' concatenation")]
    dy = dout @ ref.proj.W.data.T
    q, k, v, att, scale = ref._cache
    dyh = ref._heads(dy)
    datt = dyh @ v.transpose(0, 1, 3, 2)
    dscores = att * (datt - (datt * att).sum(-1, keepdims=True))
    out += [("dL/d(heads' output) (B, T, C)", dy, "the output projection's backward"),
            ("dL/d(attention weights)", datt, "the backward of att @ v"),
            ("dL/d(scores) (after the softmax's backward)", dscores * scale,
             "the softmax's backward (and the 1/sqrt(D))")]
    return out


def check(cls) -> Result:
    layer = build(cls, C, H)
    ref = _Switched(C, H)
    x = np.sin(np.linspace(0.0, 9.0, B * T * C)).reshape(B, T, C)
    result = models.check(layer, ref, x, "MultiHeadAttention", intermediates, "output")
    if result.passed or result.failed != "1 fixed inputs":
        if result.passed:
            result.notes.append(f"checked at d_model {C}, {H} heads, x of shape {(B, T, C)}")
        return result
    checked = layer.parameters()  # the weights the stages ran with (the reference's)
    for m in CATALOGUE:
        twin = _Switched(C, H, **m.options)
        for p, q in zip(twin.parameters(), ref.parameters()):
            p.data[...] = q.data
        with np.errstate(invalid="ignore"):
            theirs = np.asarray(twin.forward(x.copy()))
            ours = np.asarray(build_like(cls, checked).forward(x.copy()))
        if rel_error(ours, theirs) <= RTOL:  # the learner's output is exactly this mistake's
            result.diagnosis, result.revisit = m.title, m.revisit
            return result
    return result


def build_like(cls, params):
    """A fresh layer of the learner's with the checked weights (the catalogue's comparison)."""
    layer = build(cls, C, H)
    for p, q in zip(layer.parameters(), params):
        p.data[...] = q.data
    return layer
