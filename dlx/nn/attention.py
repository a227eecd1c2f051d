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

    def _mask(self, T: int) -> np.ndarray:
        """(T, T) True above the diagonal (s > t: the future), made once per length."""
        masks = self.__dict__.setdefault("_masks", {})
        if T not in masks:
            masks[T] = np.triu(np.ones((T, T), dtype=bool), 1)
        return masks[T]

    def forward(self, x: np.ndarray) -> np.ndarray:
        B, T, C = x.shape
        H, D = self.n_heads, C // self.n_heads
        qkv = self.qkv.forward(x).reshape(B, T, 3, H, D)  # q, k, v side by side, per head
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (B, H, T, D) views
        scale = 1.0 / math.sqrt(D)
        att = q @ k.transpose(0, 1, 3, 2)  # (B, H, T, T) scores
        att *= scale
        if self.causal:  # -inf before the softmax: masked weights are exactly 0
            np.copyto(att, -np.inf, where=self._mask(T))
        att -= att.max(axis=-1, keepdims=True)  # the softmax, in place
        np.exp(att, out=att)
        ones = np.ones(T, dtype=att.dtype)  # row sums as gemv: ~4x NumPy's sum over T
        att /= (att @ ones)[..., None]
        y = np.empty((B, T, C), dtype=att.dtype)  # heads written straight into (B, T, C)
        np.matmul(att, v, out=y.reshape(B, T, H, D).transpose(0, 2, 1, 3))
        self._cache = (q, k, v, att, scale)
        self.attention = att
        return self.proj.forward(y)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        q, k, v, att, scale = self._cache
        B, H, T, D = q.shape
        dy = self._heads(self.proj.backward(dout))  # (B, H, T, D)
        # d(qkv) is filled head by head through (B, H, T, D) views: no concatenation
        dqkv = np.empty((B, T, 3, H, D), dtype=dy.dtype)
        dq, dk, dv = (dqkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
        np.matmul(att.transpose(0, 1, 3, 2), dy, out=dv)
        dscores = dy @ v.transpose(0, 1, 3, 2)  # d att (B, H, T, T), then d scores in place
        dscores -= ((dscores * att) @ np.ones(T, dtype=att.dtype))[..., None]
        dscores *= att
        dscores *= scale
        np.matmul(dscores, k, out=dq)
        np.matmul(dscores.transpose(0, 1, 3, 2), q, out=dk)
        return self.qkv.backward(dqkv.reshape(B, T, 3 * H * D))
