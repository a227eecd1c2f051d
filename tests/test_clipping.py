"""Gradient clipping (``clip_grad_norm`` / ``clip_grad_value``): equal to torch.nn.utils' on the
same gradients, applied between backward and the step of a run (which records the norm before
clipping), the same under backend=torch, and bad values refused before anything runs."""

from __future__ import annotations

import numpy as np
import pytest

from dlx.assemble import build_data
from dlx.errors import UsageError
from dlx.nn import Parameter
from dlx.optim.clip import clip_grad_norm, clip_grad_value
from dlx.training.backend import NumpyBackend
from tests.conftest import assert_one_error_line
from tests.test_backends import batch_series
from tests.test_train import config

SHAPES = [(4, 3), (3,), (2, 5, 2)]


def _params(rng, scale):
    params = []
    for shape in SHAPES:
        p = Parameter(np.zeros(shape))
        p.grad[...] = rng.standard_normal(shape) * scale
        params.append(p)
    return params


def _torch_params(torch, params):
    out = []
    for p in params:
        t = torch.zeros(p.data.shape, dtype=torch.float64, requires_grad=True)
        t.grad = torch.from_numpy(p.grad.copy())
        out.append(t)
    return out


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e6])  # clipped hard, a little, not at all
def test_clip_grad_norm_equals_torch(torch, max_norm):
    params = _params(np.random.default_rng(0), 1.0)   # global norm ~ 5.4
    theirs = _torch_params(torch, params)
    before = [p.grad.copy() for p in params]
    norm = clip_grad_norm(params, max_norm)
    tnorm = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
    assert abs(norm - float(tnorm)) < 1e-12 * norm
    for p, t, g in zip(params, theirs, before):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-13, atol=0)
        if max_norm > norm:  # below the threshold nothing moves
            assert np.array_equal(p.grad, g)
    after = np.sqrt(sum((p.grad ** 2).sum() for p in params))
    assert after == pytest.approx(min(norm, max_norm), rel=1e-6)


@pytest.mark.parametrize("value", [0.1, 1.0, 10.0])
def test_clip_grad_value_equals_torch(torch, value):
    params = _params(np.random.default_rng(1), 2.0)
    theirs = _torch_params(torch, params)
    clip_grad_value(params, value)
    torch.nn.utils.clip_grad_value_(theirs, value)
    for p, t in zip(params, theirs):
        assert np.array_equal(p.grad, t.grad.numpy())
        assert np.abs(p.grad).max() <= value


def test_bad_bounds_are_refused_by_the_functions():
    params = _params(np.random.default_rng(2), 1.0)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError):
            clip_grad_norm(params, bad)
        with pytest.raises(ValueError):
            clip_grad_value(params, bad)


def test_a_run_records_the_norm_before_clipping_and_steps_with_the_clipped_gradient(tmp_path):
    """One full-batch SGD step with clip_grad_norm far below the gradient's norm: the logged
    norm is the unclipped gradient's, and the weights moved by lr * g * max_norm / (norm + 1e-6)."""
    from dlx.records.metrics import MetricsWriter
    from dlx.training import train

    common = ("model=mlp", "model.hidden=[8]", "dtype=float64", "batch_size=null",
              "optimizer=sgd", "optimizer.lr=0.5", "max_steps=1")
    cfg = config(*common, "clip_grad_norm=0.01")
    rec = MetricsWriter(tmp_path / "m.csv")
    result = train(cfg, rec, "none")
    rec.close()
    logged = batch_series(tmp_path, "again", *common, "clip_grad_norm=0.01",
                          metrics=("grad_norm",))["grad_norm"]

    ref = NumpyBackend(cfg, build_data(cfg))
    w0 = {p.name: p.data.copy() for p in ref.params}
    ref.forward(ref.data.X_train, ref.data.y_train)
    ref.model.backward(ref.loss_fn.backward())
    grads = {p.name: p.grad.copy() for p in ref.params}
    norm = np.sqrt(sum((g ** 2).sum() for g in grads.values()))
    assert len(logged) == 1 and logged[0] == pytest.approx(norm, rel=1e-12) and norm > 1.0
    scale = 0.01 / (norm + 1e-6)
    for name, w in result.weights.items():
        np.testing.assert_allclose(w, w0[name] - 0.5 * scale * grads[name], rtol=0, atol=1e-14)
    # without clipping: no grad_norm column, and a step a hundred times longer
    plain = config(*common)
    rec = MetricsWriter(tmp_path / "p.csv")
    unclipped = train(plain, rec, "none").weights
    rec.close()
    assert "grad_norm" not in (tmp_path / "p.csv").read_text()
    moved = {n: np.abs(unclipped[n] - w0[n]).max() / max(np.abs(result.weights[n] - w0[n]).max(),
                                                          1e-300) for n in w0}
    assert all(m == pytest.approx(1 / scale, rel=1e-6) for m in moved.values() if np.isfinite(m))


@pytest.mark.torch
@pytest.mark.parametrize("clip", ["clip_grad_norm=0.05",
                                  "clip_grad_norm=0.05 clip_grad_value=0.01"])  # value, then norm
def test_backend_torch_clips_the_same(torch, tmp_path, clip):
    common = ("model=mlp", "model.hidden=[16]", "optimizer=adam", "dtype=float64", "seed=1",
              "epochs=1", "dataset=moons", *clip.split())
    ours = batch_series(tmp_path, "n", *common, metrics=("loss", "grad_norm"))
    theirs = batch_series(tmp_path, "t", *common, "backend=torch", metrics=("loss", "grad_norm"))
    assert len(ours["grad_norm"]) == len(ours["loss"]) > 10
    for key in ("loss", "grad_norm"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-10)
    # clipping changed the run: the gradient norm is above the bound at some step
    assert ours["grad_norm"].max() > 0.05


@pytest.mark.parametrize("bad", ["clip_grad_norm=0", "clip_grad_norm=-1", "clip_grad_value=0",
                                 "clip_grad_norm=abc", "clip_grad_value=inf",
                                 "clip_grad_norm=true"])
def test_bad_values_are_refused(bad):
    with pytest.raises(UsageError, match=bad.split("=")[0] + " must be a finite number > 0"):
        config(bad)


@pytest.mark.slow
def test_bad_clip_is_one_error_line(cli):
    assert_one_error_line(cli("run", "clip_grad_norm=-1"), "clip_grad_norm", "-1")


