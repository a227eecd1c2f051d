"""A decoder-only transformer from scratch: embeddings, positional encodings, LayerNorm,
pre-LN and post-LN blocks, each with a hand-written backward pass. Shapes: (B, T, C)."""

from __future__ import annotations

import math

import numpy as np

from dlx.nn.activations import GELU
from dlx.nn.attention import MultiHeadAttention
from dlx.nn.core import Module, Parameter
from dlx.nn.layers import Linear
from dlx.nn.norm import LayerNorm


class Embedding(Module):
    """Row lookup: out[b, t] = W[idx[b, t]];  dW[i] += sum of dout where idx == i."""

    def __init__(self, n: int, d: int, *, dtype=np.float32, name: str = "emb"):
        self.W = Parameter(np.zeros((n, d), dtype=dtype), f"{name}.W")

    def forward(self, idx: np.ndarray) -> np.ndarray:
        self._idx = idx  # (B, T) ints
        return self.W.data[idx]  # (B, T, C)

    def backward(self, dout: np.ndarray) -> None:
        # the rows of dout grouped by token (a stable sort), each group summed by one reduceat:
        # ~4x faster than np.add.at(W.grad, idx, dout), which adds one row at a time
        idx = self._idx.reshape(-1)
        rows = dout.reshape(len(idx), -1)  # (B*T, C)
        order = np.argsort(idx, kind="stable")
        tokens = idx[order]
        starts = np.flatnonzero(np.concatenate(([True], tokens[1:] != tokens[:-1])))
        self.W.grad[tokens[starts]] += np.add.reduceat(rows[order], starts, axis=0)
        return None  # token indices have no gradient


def sinusoidal(max_len: int, d: int) -> np.ndarray:
    """Vaswani et al. (2017): PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(...)."""
    pos = np.arange(max_len)[:, None]
    freq = np.exp(-math.log(10000.0) * np.arange(0, d, 2) / d)
    pe = np.zeros((max_len, d))
    pe[:, 0::2] = np.sin(pos * freq)
    pe[:, 1::2] = np.cos(pos * freq)[:, : d // 2]
    return pe


class PositionalEncoding(Module):
    """x + P[:T]: P learned (a parameter) or sinusoidal (fixed); ``none`` adds nothing."""

    def __init__(self, max_len: int, d: int, kind: str = "learned", *, dtype=np.float32):
        if kind not in ("learned", "sinusoidal", "none"):
            raise ValueError(f"positional must be learned, sinusoidal or none, got {kind!r}")
        self.kind = kind
        if kind == "learned":
            self.P = Parameter(np.zeros((max_len, d), dtype=dtype), "pos.P", decay=False)
        else:
            self._fixed = sinusoidal(max_len, d).astype(dtype) if kind == "sinusoidal" else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        T = x.shape[1]
        if self.kind == "learned":
            return x + self.P.data[:T]
        return x + self._fixed[:T] if self._fixed is not None else x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self.kind == "learned":
            self.P.grad[: dout.shape[1]] += dout.sum(axis=0)
        return dout


class FeedForward(Module):
    """Position-wise MLP: Linear(C, d_ff) -> GELU -> Linear(d_ff, C)."""

    def __init__(self, d_model: int, d_ff: int, *, dtype=np.float32, name: str = "mlp"):
        self.fc = Linear(d_model, d_ff, dtype=dtype, name=f"{name}.fc")
        self.act = GELU()
        self.out = Linear(d_ff, d_model, dtype=dtype, name=f"{name}.out")

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.out.forward(self.act.forward(self.fc.forward(x)))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self.fc.backward(self.act.backward(self.out.backward(dout)))


class Block(Module):
    """A residual transformer block.

    pre-LN (GPT-2):   x = x + attn(ln1(x));   x = x + mlp(ln2(x))
    post-LN (2017):   x = ln1(x + attn(x));   x = ln2(x + mlp(x))
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, *, pre_ln: bool = True,
                 causal: bool = True, dtype=np.float32, name: str = "block"):
        self.pre_ln = pre_ln
        self.ln1 = LayerNorm(d_model, dtype=dtype, name=f"{name}.ln1")
        self.attn = MultiHeadAttention(d_model, n_heads, causal=causal, dtype=dtype,
                                       name=f"{name}.attn")
        self.ln2 = LayerNorm(d_model, dtype=dtype, name=f"{name}.ln2")
        self.mlp = FeedForward(d_model, d_ff, dtype=dtype, name=f"{name}.mlp")

    # The residual sums are made in place, into the branch's fresh output (no layer keeps it),
    # so a block allocates no array for them.

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.pre_ln:
            h = self.attn.forward(self.ln1.forward(x))
            h += x
            out = self.mlp.forward(self.ln2.forward(h))
            out += h
            return out
        h = self.attn.forward(x)
        h += x
        h = self.ln1.forward(h)
        out = self.mlp.forward(h)
        out += h
        return self.ln2.forward(out)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self.pre_ln:
            d = self.ln2.backward(self.mlp.backward(dout))
            d += dout
            dx = self.ln1.backward(self.attn.backward(d))
            dx += d
            return dx
        d = self.ln2.backward(dout)
        dh = self.mlp.backward(d)
        dh += d
        d = self.ln1.backward(dh)
        dx = self.attn.backward(d)
        dx += d
        return dx


class TransformerLM(Module):
    """Decoder-only transformer: token embedding + positions -> blocks -> (final LN) -> logits
    over the vocabulary at every position. Input (B, T) token ids, output (B, T, V)."""

    def __init__(self, vocab: int, max_len: int, *, n_layers: int = 2, d_model: int = 64,
                 n_heads: int = 4, d_ff: int | None = None, positional: str = "learned",
                 pre_ln: bool = True, causal: bool = True, dtype=np.float32):
        d_ff = d_ff or 4 * d_model
        self.tok = Embedding(vocab, d_model, dtype=dtype, name="tok")
        self.pos = PositionalEncoding(max_len, d_model, positional, dtype=dtype)
        self.blocks = [Block(d_model, n_heads, d_ff, pre_ln=pre_ln, causal=causal, dtype=dtype,
                             name=f"block{i}") for i in range(n_layers)]
        self.ln_f = LayerNorm(d_model, dtype=dtype, name="ln_f") if pre_ln else None
        self.head = Linear(d_model, vocab, dtype=dtype, name="head")

    def forward(self, idx: np.ndarray) -> np.ndarray:
        x = self.pos.forward(self.tok.forward(idx))  # (B, T, C)
        for block in self.blocks:
            x = block.forward(x)
        if self.ln_f is not None:
            x = self.ln_f.forward(x)
        return self.head.forward(x)  # (B, T, V)

    def backward(self, dout: np.ndarray) -> None:
        d = self.head.backward(dout)
        if self.ln_f is not None:
            d = self.ln_f.backward(d)
        for block in reversed(self.blocks):
            d = block.backward(d)
        self.tok.backward(self.pos.backward(d))

    def attention_maps(self) -> list[np.ndarray]:
        """The last forward's attention weights, one (B, H, T, T) array per layer."""
        return [b.attn.attention for b in self.blocks]

    def n_params(self, embeddings: bool = True) -> int:
        skip = {id(self.tok.W)} | ({id(self.pos.P)} if hasattr(self.pos, "P") else set())
        return sum(p.data.size for p in self.parameters() if embeddings or id(p) not in skip)


def block_params(n_layers: int, d_model: int, d_ff: int | None = None) -> int:
    """Non-embedding parameters of ``n_layers`` blocks: attention 4d^2 + 4d, the MLP 2*d*d_ff +
    d_ff + d, two LayerNorms 4d (12d^2 + 13d with d_ff = 4d); the output head's d x vocab aside."""
    d, f = d_model, d_ff or 4 * d_model
    return n_layers * (4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d)


def width_for_budget(n_layers: int, budget: int) -> int:
    """The d_model whose ``n_layers`` blocks come closest to ``budget`` non-embedding
    parameters (the depth_width experiment: deeper nets at one parameter count)."""
    return min(range(2, 1024), key=lambda d: abs(block_params(n_layers, d) - budget))
