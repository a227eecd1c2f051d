"""Multi-head scaled dot-product self-attention with a hand-written backward pass.

Shapes: B batch, T sequence length, C = H * D model width, H heads of width D.
"""

from __future__ import annotations

import math

import numpy as np

from dlx.nn.core import Module
from dlx.nn.layers import Linear


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class MultiHeadAttention(Module):
    """y = concat_h softmax(q_h k_h^T / sqrt(D) + mask) v_h, then an output projection.

    ``causal`` masks position s > t out of position t's attention, so the output at t
    depends on tokens 0..t only. ``attention`` keeps the last forward's weights (B, H, T, T).
    """

    def __init__(self, d_model: int, n_heads: int, *, causal: bool = True, dtype=np.float32,
                 name: str = "attn"):
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of n_heads ({n_heads})")
        self.n_heads, self.causal = n_heads, causal
        self.qkv = Linear(d_model, 3 * d_model, dtype=dtype, name=f"{name}.qkv")
        self.proj = Linear(d_model, d_model, dtype=dtype, name=f"{name}.proj")
        self.attention: np.ndarray | None = None

    def _heads(self, x: np.ndarray) -> np.ndarray:  # (B, T, C) -> (B, H, T, D)
        B, T, C = x.shape
        return x.reshape(B, T, self.n_heads, C // self.n_heads).transpose(0, 2, 1, 3)

    def forward(self, x: np.ndarray) -> np.ndarray:
        B, T, C = x.shape
        qkv = self.qkv.forward(x)  # (B, T, 3C)
        q, k, v = (self._heads(t) for t in np.split(qkv, 3, axis=-1))  # (B, H, T, D) each
        scale = 1.0 / math.sqrt(C // self.n_heads)
        scores = (q @ k.transpose(0, 1, 3, 2)) * scale  # (B, H, T, T)
        if self.causal:
            scores = np.where(np.triu(np.ones((T, T), dtype=bool), 1), -np.inf, scores)
        att = softmax(scores, axis=-1)  # rows sum to 1; masked entries are exactly 0
        y = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, C)  # (B, T, C)
        self._cache = (q, k, v, att, scale)
        self.attention = att
        return self.proj.forward(y)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        q, k, v, att, scale = self._cache
        dy = self._heads(self.proj.backward(dout))  # (B, H, T, D)
        datt = dy @ v.transpose(0, 1, 3, 2)  # (B, H, T, T)
        dv = att.transpose(0, 1, 3, 2) @ dy  # (B, H, T, D)
        dscores = att * (datt - (datt * att).sum(axis=-1, keepdims=True)) * scale
        dq = dscores @ k  # (B, H, T, D)
        dk = dscores.transpose(0, 1, 3, 2) @ q
        B, H, T, D = q.shape
        merge = lambda t: t.transpose(0, 2, 1, 3).reshape(B, T, H * D)  # noqa: E731
        return self.qkv.backward(np.concatenate([merge(dq), merge(dk), merge(dv)], axis=-1))
