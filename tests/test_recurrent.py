"""Recurrent layers: BPTT against finite differences (float64) and against torch.nn.RNN / LSTM /
GRU and their cells (forward, dx, d initial state, every parameter gradient)."""

from __future__ import annotations

import numpy as np
import pytest

from dlx.nn.gradcheck import check_module, numerical_grad, rel_error
from dlx.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

B, T, D_IN, H = 3, 5, 4, 6

LAYERS = {
    "rnn_tanh": lambda L, rng: RNN(D_IN, H, L, "tanh", dtype=np.float64, rng=rng),
    "rnn_relu": lambda L, rng: RNN(D_IN, H, L, "relu", dtype=np.float64, rng=rng),
    "lstm": lambda L, rng: LSTM(D_IN, H, L, dtype=np.float64, rng=rng),
    "gru": lambda L, rng: GRU(D_IN, H, L, dtype=np.float64, rng=rng),
}


def _scale_up(layer, rng):
    """Weights larger than torch's init so every gate is away from its linear regime (a gradient
    error in a saturating term would hide behind small weights)."""
    for p in layer.parameters():
        p.data[...] = rng.uniform(-0.8, 0.8, p.data.shape)


def _state(kind, L, rng):
    h = rng.standard_normal((L, B, H)) * 0.5
    return (h, rng.standard_normal((L, B, H)) * 0.5) if kind == "lstm" else h


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_bptt_matches_finite_differences(kind, layers):
    rng = np.random.default_rng(1)
    layer = LAYERS[kind](layers, rng)
    _scale_up(layer, rng)
    x = rng.standard_normal((B, T, D_IN))
    errors = check_module(layer, x, rng)  # dx and every parameter, from zero initial state
    assert len(errors) == 1 + 4 * layers and max(errors.values()) < 1e-7, errors

    # ... and from a given initial state, its own gradient included
    state = _state(kind, layers, rng)
    r = rng.standard_normal((B, T, H))
    parts = state if kind == "lstm" else (state,)

    def f():
        return float((layer.forward(x, state) * r).sum())

    f()
    layer.zero_grad()
    layer.backward(r)
    d0 = layer.dstate0 if kind == "lstm" else (layer.dstate0,)
    for analytic, part in zip(d0, parts):
        assert analytic.shape == part.shape
        assert rel_error(analytic, numerical_grad(f, part)) < 1e-7
    for p in layer.parameters():
        assert rel_error(p.grad.copy(), numerical_grad(f, p.data)) < 1e-7, p.name


@pytest.mark.parametrize("kind", list(LAYERS))
def test_gradient_of_the_final_state_is_followed_back(kind):
    """A loss on the final state only (dout = 0): backward(dout, dstate) reaches x and h0."""
    rng = np.random.default_rng(2)
    layer = LAYERS[kind](2, rng)
    _scale_up(layer, rng)
    x = rng.standard_normal((B, T, D_IN))
    state = _state(kind, 2, rng)
    parts = state if kind == "lstm" else (state,)
    rs = tuple(rng.standard_normal((2, B, H)) for _ in parts)

    def f():
        layer.forward(x, state)
        final = layer.final_state if kind == "lstm" else (layer.final_state,)
        return float(sum((s * q).sum() for s, q in zip(final, rs)))

    f()
    layer.zero_grad()
    dx = layer.backward(np.zeros((B, T, H)), rs if kind == "lstm" else rs[0])
    assert rel_error(dx, numerical_grad(f, x)) < 1e-7
    d0 = layer.dstate0 if kind == "lstm" else (layer.dstate0,)
    for analytic, part in zip(d0, parts):
        assert rel_error(analytic, numerical_grad(f, part)) < 1e-7


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_cells_match_finite_differences(kind):
    rng = np.random.default_rng(3)
    cls = {"rnn_tanh": RNNCell, "lstm": LSTMCell, "gru": GRUCell}[kind]
    cell = cls(D_IN, H, dtype=np.float64, rng=rng)
    _scale_up(cell, rng)
    x = rng.standard_normal((B, D_IN))
    state = (rng.standard_normal((B, H)), rng.standard_normal((B, H))) if kind == "lstm" \
        else rng.standard_normal((B, H))
    rs = tuple(rng.standard_normal((B, H)) for _ in range(2 if kind == "lstm" else 1))

    def f():
        out = cell.forward(x, state)
        return float(sum((o * q).sum() for o, q in zip(out if kind == "lstm" else (out,), rs)))

    f()
    cell.zero_grad()
    dx = cell.backward(rs if kind == "lstm" else rs[0])
    assert rel_error(dx, numerical_grad(f, x)) < 1e-7
    for analytic, part in zip(cell.dstate0 if kind == "lstm" else (cell.dstate0,),
                              state if kind == "lstm" else (state,)):
        assert rel_error(analytic, numerical_grad(f, part)) < 1e-7
    for p in cell.parameters():
        assert rel_error(p.grad.copy(), numerical_grad(f, p.data)) < 1e-7, p.name


def test_torch_initialization_bounds():
    layer = LSTM(D_IN, 16, 2, dtype=np.float64, rng=np.random.default_rng(0))
    for p in layer.parameters():
        assert np.abs(p.data).max() <= 0.25 and np.abs(p.data).max() > 0.2, p.name
    assert [p.name.split(".")[-1] for p in layer.parameters()][:4] == \
        ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert LSTM(D_IN, 16, dtype=np.float64).parameters()[0].data.any() == False  # noqa: E712


def _torch_layer(torch, kind, L):
    nn = torch.nn
    if kind.startswith("rnn"):
        return nn.RNN(D_IN, H, L, nonlinearity=kind[4:], batch_first=True)
    return (nn.LSTM if kind == "lstm" else nn.GRU)(D_IN, H, L, batch_first=True)


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_equals_torch_in_float64(torch, kind, layers):
    rng = np.random.default_rng(4)
    ours = LAYERS[kind](layers, rng)
    _scale_up(ours, rng)
    theirs = _torch_layer(torch, kind, layers).double()
    names = {p.name.split(".")[-1]: p for p in ours.parameters()}
    assert set(names) == {n for n, _ in theirs.named_parameters()}
    with torch.no_grad():
        for n, tp in theirs.named_parameters():
            tp.copy_(torch.from_numpy(names[n].data))
    x = rng.standard_normal((B, T, D_IN))
    state = _state(kind, layers, rng)
    dout = rng.standard_normal((B, T, H))
    dfinal = _state(kind, layers, rng)

    out = ours.forward(x, state)
    dx = ours.backward(dout, dfinal)

    tx = torch.from_numpy(x).requires_grad_()
    parts = state if kind == "lstm" else (state,)
    tstate = tuple(torch.from_numpy(s).requires_grad_() for s in parts)
    tout, tfinal = theirs(tx, tstate if kind == "lstm" else tstate[0])
    tfinal = tfinal if kind == "lstm" else (tfinal,)
    dparts = dfinal if kind == "lstm" else (dfinal,)
    loss = (tout * torch.from_numpy(dout)).sum() + sum(
        (f * torch.from_numpy(d)).sum() for f, d in zip(tfinal, dparts))
    loss.backward()

    assert np.abs(out - tout.detach().numpy()).max() < 1e-10
    final = ours.final_state if kind == "lstm" else (ours.final_state,)
    for a, b in zip(final, tfinal):
        assert np.abs(a - b.detach().numpy()).max() < 1e-10
    assert np.abs(dx - tx.grad.numpy()).max() < 1e-10
    d0 = ours.dstate0 if kind == "lstm" else (ours.dstate0,)
    for a, b in zip(d0, tstate):
        assert np.abs(a - b.grad.numpy()).max() < 1e-10
    for n, tp in theirs.named_parameters():
        assert np.abs(names[n].grad - tp.grad.numpy()).max() < 1e-10, n


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_cells_equal_torch_cells(torch, kind):
    rng = np.random.default_rng(5)
    nn = torch.nn
    if kind.startswith("rnn"):
        ours, theirs = RNNCell(D_IN, H, kind[4:], dtype=np.float64, rng=rng), \
            nn.RNNCell(D_IN, H, nonlinearity=kind[4:])
    else:
        ours = (LSTMCell if kind == "lstm" else GRUCell)(D_IN, H, dtype=np.float64, rng=rng)
        theirs = (nn.LSTMCell if kind == "lstm" else nn.GRUCell)(D_IN, H)
    theirs = theirs.double()
    names = {p.name: p for p in ours.parameters()}
    with torch.no_grad():
        for n, tp in theirs.named_parameters():
            tp.copy_(torch.from_numpy(names[n].data))
    x = rng.standard_normal((B, D_IN))
    parts = tuple(rng.standard_normal((B, H)) for _ in range(2 if kind == "lstm" else 1))
    ds = tuple(rng.standard_normal((B, H)) for _ in parts)
    out = ours.forward(x, parts if kind == "lstm" else parts[0])
    dx = ours.backward(ds if kind == "lstm" else ds[0])

    tx = torch.from_numpy(x).requires_grad_()
    tparts = tuple(torch.from_numpy(p).requires_grad_() for p in parts)
    tout = theirs(tx, tparts if kind == "lstm" else tparts[0])
    tout = tout if kind == "lstm" else (tout,)
    sum((o * torch.from_numpy(d)).sum() for o, d in zip(tout, ds)).backward()
    for a, b in zip(out if kind == "lstm" else (out,), tout):
        assert np.abs(a - b.detach().numpy()).max() < 1e-10
    assert np.abs(dx - tx.grad.numpy()).max() < 1e-10
    for a, b in zip(ours.dstate0 if kind == "lstm" else (ours.dstate0,), tparts):
        assert np.abs(a - b.grad.numpy()).max() < 1e-10
    for n, tp in theirs.named_parameters():
        assert np.abs(names[n].grad - tp.grad.numpy()).max() < 1e-10, n


def test_carried_state_continues_the_sequence():
    """Truncated BPTT's premise: two halves, the second started from the first's final state,
    give the same outputs as one pass over the whole sequence."""
    rng = np.random.default_rng(6)
    for make in LAYERS.values():
        layer = make(2, rng)
        x = rng.standard_normal((B, 8, D_IN))
        whole = layer.forward(x)
        first = layer.forward(x[:, :4])
        second = layer.forward(x[:, 4:], layer.final_state)
        np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-14)


def test_bad_state_shape_is_refused():
    layer = LSTM(D_IN, H, 2, dtype=np.float64)
    with pytest.raises(ValueError, match="state must be 2 array"):
        layer.forward(np.zeros((B, T, D_IN)), np.zeros((2, B, H)))
