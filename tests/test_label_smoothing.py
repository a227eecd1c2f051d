"""``label_smoothing=eps``: the run option reaches the loss of both backends (torch's
CrossEntropyLoss(label_smoothing=eps) semantics, and for one sigmoid output the same smoothing
over two classes), changes the trajectory, and bad values are refused before anything runs."""

from __future__ import annotations

import numpy as np
import pytest

from dlx.nn import BCEWithLogits, SoftmaxCrossEntropy
from tests.conftest import assert_one_error_line
from tests.test_backends import batch_losses


def test_binary_smoothing_is_two_class_softmax_smoothing():
    """sigmoid(z) is softmax over the logits (0, z): BCE on targets (1 - eps) y + eps/2 equals
    SoftmaxCrossEntropy(eps) on those two logits, loss and gradient, to round-off."""
    rng = np.random.default_rng(0)
    z, y = rng.standard_normal((7, 1)) * 3, rng.integers(0, 2, 7)
    for eps in (0.0, 0.1, 0.6):
        bce, ce = BCEWithLogits(eps), SoftmaxCrossEntropy(eps)
        two = np.concatenate([np.zeros_like(z), z], axis=1)  # (N, 2)
        assert bce.forward(z, y) == pytest.approx(ce.forward(two, y), rel=1e-13)
        np.testing.assert_allclose(bce.backward()[:, 0], ce.backward()[:, 1], rtol=1e-12,
                                   atol=1e-16)
    with pytest.raises(ValueError):
        BCEWithLogits(1.0)


def test_smoothing_equals_torch_and_its_gradient_checks(torch):
    rng = np.random.default_rng(1)
    logits, y = rng.standard_normal((6, 4)) * 2, rng.integers(0, 4, 6)
    loss = SoftmaxCrossEntropy(0.2)
    value, grad = loss.forward(logits, y), loss.backward()
    t = torch.tensor(logits, requires_grad=True)
    theirs = torch.nn.CrossEntropyLoss(label_smoothing=0.2)(t, torch.tensor(y))
    theirs.backward()
    assert value == pytest.approx(theirs.item(), rel=1e-13)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-12, atol=1e-16)
    zb, yb = rng.standard_normal((5, 1)), rng.integers(0, 2, 5)
    bce = BCEWithLogits(0.2)
    value, grad = bce.forward(zb, yb), bce.backward()
    tz = torch.tensor(zb, requires_grad=True)
    target = torch.tensor(yb, dtype=torch.float64)[:, None] * 0.8 + 0.1
    theirs = torch.nn.BCEWithLogitsLoss()(tz, target)
    theirs.backward()
    assert value == pytest.approx(theirs.item(), rel=1e-13)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("data", [("dataset=blobs", "dataset.n_classes=3"),  # softmax-CE
                                  ("dataset=moons",)])                       # one sigmoid output
def test_numpy_and_torch_runs_agree_step_by_step_with_smoothing(torch, tmp_path, data):
    common = ("model=mlp", "optimizer=momentum", "dtype=float64", "seed=3", "epochs=2", *data)
    ours = batch_losses(tmp_path, "numpy", *common, "label_smoothing=0.2")
    theirs = batch_losses(tmp_path, "torch", *common, "label_smoothing=0.2", "backend=torch")
    plain = batch_losses(tmp_path, "plain", *common)
    assert len(ours) == len(theirs) == 50
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    # the option is applied: a smoothed loss is not the plain one, from the first step
    assert ours[0] != pytest.approx(plain[0], rel=1e-3)
    assert ours[-1] > plain[-1]  # its minimum is above 0: the targets are never 0 or 1


@pytest.mark.slow
@pytest.mark.parametrize("args, needle", [
    (("label_smoothing=1.0",), "label_smoothing must be a number in [0, 1)"),
    (("label_smoothing=-0.1",), "label_smoothing must be a number in [0, 1)"),
    (("label_smoothing=abc",), "label_smoothing"),
    (("dataset=function", "model=linreg", "label_smoothing=0.1"), "classification"),  # regression
    (("dataset=copy", "model=transformer", "label_smoothing=0.1"), "classification"),
])
def test_bad_label_smoothing_is_one_error_line(cli, args, needle):
    result = cli("run", *args)
    assert_one_error_line(result, needle)
    assert not (cli.cwd / "runs").exists()
