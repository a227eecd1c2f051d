"""The transformer's parts: finite differences, invariants, and torch parity of a block."""

from __future__ import annotations

import numpy as np
import pytest

from dlx.nn.attention import MultiHeadAttention
from dlx.nn.gradcheck import check_module, numerical_grad, rel_error
from dlx.nn.losses import IGNORE, SequenceCrossEntropy
from dlx.nn.transformer import Block, Embedding, FeedForward, LayerNorm, PositionalEncoding, TransformerLM

rng = np.random.default_rng(0)


def randomize(module, scale=0.3):
    for p in module.parameters():
        p.data[...] = rng.standard_normal(p.data.shape) * scale + (1.0 if "gamma" in p.name else 0)


def check(module, x, tol=1e-7):
    errors = check_module(module, x, rng)
    assert errors and max(errors.values()) < tol, errors


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


def test_toy_tasks_are_prompt_separator_answer():
    from dlx.data.sequences import SEQUENCES

    g = np.random.default_rng(0)
    for name, answer in (("copy", lambda x: x), ("reverse", lambda x: x[:, ::-1]),
                         ("sort", lambda x: np.sort(x, axis=1))):
        X, Y, vocab = SEQUENCES[name](g, n_samples=50, length=5, symbols=7)
        assert vocab == 8 and X.shape == Y.shape == (50, 10)
        assert (X[:, 5] == 7).all()  # the separator
        np.testing.assert_array_equal(Y[:, 5:], answer(X[:, :5]))
        assert (Y[:, :5] == IGNORE).all()
        np.testing.assert_array_equal(X[:, 6:], Y[:, 5:-1])  # inputs are targets shifted
    X, Y, vocab = SEQUENCES["modular_addition"](g, n_samples=100, p=11)
    assert vocab == 12 and (Y[:, -1] == (X[:, 0] + X[:, 1]) % 11).all()
    assert len({(a, b) for a, b in X[:, :2]}) == 100  # distinct pairs


@pytest.mark.parametrize("depth", [1, 2, 4, 8])
def test_depth_width_widths_keep_the_parameter_budget(depth):
    from dlx.nn.transformer import width_for_budget

    d = width_for_budget(depth, 24576)
    model = TransformerLM(11, 16, n_layers=depth, d_model=d, n_heads=1)
    assert model.n_params(embeddings=False) == pytest.approx(24576, rel=0.05)


@pytest.mark.science
@pytest.mark.slow
def test_a_tiny_transformer_learns_to_reverse(tmp_path):
    from tests.test_experiments import run

    r = run(tmp_path, "experiment=transformer", "epochs=2")
    assert r.summary["final"]["val/acc"] >= 0.99  # exact sequences, on held-out prompts
    from dlx.experiments.transformer import plot_run

    assert [p.name for p in plot_run(r, tmp_path, "png")] == ["attention_maps.png"]


@pytest.mark.torch
def test_bench_has_a_transformer_case(torch):
    from dlx import bench

    report = bench.run(steps=2, repeats=2, warmup=1, cases=("transformer",))
    case = report["cases"][0]
    assert case["name"] == "transformer" and case["numpy_over_torch"] > 0


def test_block_arithmetic_matches_the_model_and_the_budget():
    from dlx.nn.transformer import TransformerLM, block_params, width_for_budget

    for layers, d in ((1, 8), (3, 16)):
        m = TransformerLM(10, 8, n_layers=layers, d_model=d, n_heads=4, d_ff=None,
                          positional="learned", pre_ln=True, dtype=np.float64)
        head_and_final_norm = d * 10 + 10 + 2 * d
        assert m.n_params(embeddings=False) == block_params(layers, d) + head_and_final_norm
    for layers in (1, 2, 4, 8):  # depth_width's budget: the closest width at each depth
        d = width_for_budget(layers, 24_576)
        gap = abs(block_params(layers, d) - 24_576)
        assert gap <= min(abs(block_params(layers, d + k) - 24_576) for k in (-1, 1))
        assert gap / 24_576 < 0.06
