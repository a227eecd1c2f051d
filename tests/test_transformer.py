"""The transformer's parts: finite differences, invariants, and torch parity of a block."""

from __future__ import annotations

import numpy as np
import pytest

from dlx.nn.attention import MultiHeadAttention
from dlx.nn.losses import IGNORE, SequenceCrossEntropy
from dlx.nn.transformer import (Block, Embedding, FeedForward, LayerNorm, PositionalEncoding,
                                TransformerLM)
from tests.gradcheck import numerical_grad, rel_error

rng = np.random.default_rng(0)


def randomize(module, scale=0.3):
    for p in module.parameters():
        p.data[...] = rng.standard_normal(p.data.shape) * scale + (1.0 if "gamma" in p.name else 0)


def check(module, x, tol=1e-7):
    r = rng.standard_normal(module.forward(x).shape)

    def f():
        return float((module.forward(x) * r).sum())

    f()
    module.zero_grad()
    dx = module.backward(r)
    if dx is not None:
        assert rel_error(dx, numerical_grad(f, x)) < tol
    for p in module.parameters():
        assert rel_error(p.grad.copy(), numerical_grad(f, p.data)) < tol, p.name


X = rng.standard_normal((2, 5, 8))


@pytest.mark.parametrize("make", [
    lambda: LayerNorm(8, dtype=np.float64),
    lambda: FeedForward(8, 16, dtype=np.float64),
    lambda: MultiHeadAttention(8, 2, causal=True, dtype=np.float64),
    lambda: MultiHeadAttention(8, 2, causal=False, dtype=np.float64),
    lambda: PositionalEncoding(7, 8, "learned", dtype=np.float64),
    lambda: Block(8, 2, 16, pre_ln=True, dtype=np.float64),
    lambda: Block(8, 2, 16, pre_ln=False, dtype=np.float64),
], ids=["layernorm", "mlp", "causal_attention", "attention", "learned_pos", "pre_ln_block",
        "post_ln_block"])
def test_gradients(make):
    module = make()
    randomize(module)
    check(module, X.copy())


def test_embedding_and_model_gradients_with_an_ignored_prompt():
    model = TransformerLM(7, 6, n_layers=2, d_model=8, n_heads=2, dtype=np.float64)
    randomize(model)
    idx = rng.integers(0, 7, (3, 6))
    y = rng.integers(0, 7, (3, 6))
    y[:, :3] = IGNORE
    loss = SequenceCrossEntropy()

    def f():
        return loss.forward(model.forward(idx), y)

    f()
    model.zero_grad()
    model.backward(loss.backward())
    for p in model.parameters():
        assert rel_error(p.grad.copy(), numerical_grad(f, p.data)) < 1e-7, p.name
    emb = Embedding(5, 3, dtype=np.float64)
    randomize(emb)
    check(emb, rng.integers(0, 5, (2, 4)))


def test_attention_rows_sum_to_one_and_respect_the_mask():
    attn = MultiHeadAttention(8, 2, causal=True, dtype=np.float64)
    randomize(attn)
    attn.forward(X)
    a = attn.attention
    np.testing.assert_allclose(a.sum(axis=-1), 1.0, rtol=1e-12)
    assert (a[..., np.triu_indices(5, 1)[0], np.triu_indices(5, 1)[1]] == 0).all()


def test_causal_outputs_ignore_the_future():
    model = TransformerLM(9, 8, n_layers=2, d_model=8, n_heads=2, dtype=np.float64)
    randomize(model)
    idx = rng.integers(0, 9, (2, 8))
    before = model.forward(idx)
    later = idx.copy()
    later[:, 5:] = (later[:, 5:] + 1) % 9
    after = model.forward(later)
    np.testing.assert_allclose(after[:, :5], before[:, :5], rtol=1e-12, atol=1e-12)
    assert np.abs(after[:, 5:] - before[:, 5:]).max() > 1e-6


def test_without_positions_a_block_is_permutation_equivariant():
    block = Block(8, 2, 16, causal=False, dtype=np.float64)
    randomize(block)
    perm = rng.permutation(5)
    np.testing.assert_allclose(block.forward(X[:, perm]), block.forward(X)[:, perm],
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("d", [32, 64])
def test_parameter_count_is_about_12_d_squared_per_layer(d):
    model = TransformerLM(10, 16, n_layers=3, d_model=d, n_heads=4)
    non_embedding = model.n_params(embeddings=False)
    embedding = model.n_params() - non_embedding
    assert embedding == 10 * d + 16 * d
    blocks = non_embedding - (d * 10 + 10) - 2 * d  # head and final LayerNorm
    assert blocks == pytest.approx(12 * d * d * 3, rel=0.1)


@pytest.mark.torch
def test_block_matches_torch(torch):
    """One pre-LN block, forward and backward, against the same computation in torch."""
    F = torch.nn.functional
    block = Block(8, 2, 16, pre_ln=True, dtype=np.float64)
    randomize(block)
    x = X.copy()
    r = rng.standard_normal(x.shape)
    out = block.forward(x)
    block.zero_grad()
    dx = block.backward(r)

    t = {p.name: torch.tensor(p.data, requires_grad=True) for p in block.parameters()}
    tx = torch.tensor(x, requires_grad=True)

    def ln(h, name):
        return F.layer_norm(h, (8,), t[f"{name}.gamma"], t[f"{name}.beta"], eps=1e-5)

    h = ln(tx, "block.ln1")
    qkv = h @ t["block.attn.qkv.W"] + t["block.attn.qkv.b"]
    q, k, v = (z.reshape(2, 5, 2, 4).transpose(1, 2) for z in qkv.split(8, dim=-1))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 5, 8)
    h1 = tx + (y @ t["block.attn.proj.W"] + t["block.attn.proj.b"])
    m = F.gelu(ln(h1, "block.ln2") @ t["block.mlp.fc.W"] + t["block.mlp.fc.b"], approximate="tanh")
    tout = h1 + (m @ t["block.mlp.out.W"] + t["block.mlp.out.b"])
    (tout * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-6, atol=1e-9)
    for p in block.parameters():
        np.testing.assert_allclose(p.grad, t[p.name].grad.numpy(), rtol=1e-6, atol=1e-9)
