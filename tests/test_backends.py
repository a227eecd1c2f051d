"""backend=numpy against backend=torch: the same run, step by step."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlx.assemble import build_model
from dlx.data.spec import DataSpec
from dlx.nn import SoftmaxCrossEntropy
from dlx.records.metrics import MetricsWriter
from dlx.training import train
from tests.test_train import config

pytestmark = pytest.mark.torch

NINE = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamax", "nadam", "adamw"]


def batch_series(tmp_path, name, *overrides, metrics=("loss",)) -> dict[str, np.ndarray]:
    """One run of the test config with ``overrides``: its per-step ``batch/<metric>`` values."""
    path = tmp_path / f"{name}.csv"
    rec = MetricsWriter(path)
    train(config(*overrides), rec, "none")
    rec.close()
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    return {m: np.array([float(r[4]) for r in rows if r[2] == "batch" and r[3] == m])
            for m in metrics}


def batch_losses(tmp_path, name, *overrides):
    return batch_series(tmp_path, name, *overrides)["loss"]


@pytest.mark.parametrize("optimizer", NINE)
def test_numpy_and_torch_runs_agree_step_by_step(torch, tmp_path, optimizer):
    common = ("model=mlp", f"optimizer={optimizer}", "dtype=float64", "seed=1", "epochs=3",
              "dataset=moons")
    ours = batch_losses(tmp_path, "numpy", *common)
    theirs = batch_losses(tmp_path, "torch", *common, "backend=torch")
    assert len(ours) == len(theirs) == 75
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert ours[-1] < 0.8 * ours[0]  # and it trained


@pytest.mark.parametrize("regularizer", [("regularizer=l2", "regularizer.lam=0.01"),
                                         ("regularizer=l1", "regularizer.lam=0.001"),
                                         ("regularizer=elastic_net", "regularizer.method=subgradient")])
def test_regularized_runs_agree(torch, tmp_path, regularizer):
    common = ("model=mlp", "optimizer=sgd", "dtype=float64", "seed=2", "epochs=2", *regularizer)
    np.testing.assert_allclose(batch_losses(tmp_path, "numpy", *common),
                               batch_losses(tmp_path, "torch", *common, "backend=torch"),
                               rtol=1e-4)


def test_mlp_backward_equals_autograd(torch):
    """Hand-written backprop through a 3-hidden-layer MLP equals torch autograd to 1e-10."""
    from dlx.training.torch_backend import to_torch

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((32, 6)), rng.integers(0, 4, 32)
    model = build_model({"name": "mlp", "hidden": [16, 16, 8], "activation": ["relu", "gelu", "tanh"]},
                        {"name": "he_normal"}, DataSpec.features(6, 4), np.random.default_rng(1), np.float64)
    tmodel, pairs = to_torch(model)
    tmodel.double()
    with torch.no_grad():
        for p, tp, kind in pairs:
            tp.copy_(torch.from_numpy(p.data.T.copy() if kind == "W" else p.data))
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn.forward(model.forward(X), y)
    model.backward(loss_fn.backward())
    tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(X)), torch.from_numpy(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    for p, tp, kind in pairs:
        expected = tp.grad.numpy().T if kind == "W" else tp.grad.numpy()
        np.testing.assert_allclose(p.grad, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_the_cli_runs_both_backends(torch, cli):
    dirs = []
    for backend in ("numpy", "torch"):
        result = cli("run", "model=mlp", "optimizer=adam", "dtype=float64", "seed=1", "epochs=2",
                     f"backend={backend}")
        assert result.returncode == 0, result.stderr
        dirs.append(cli.run_dir(result))
    a, b = (np.array([float(line.split(",")[4]) for line in (d / "metrics.csv").read_text().splitlines()
                      if ",batch,loss," in line]) for d in dirs)
    np.testing.assert_allclose(a, b, rtol=1e-4)
    summaries = [json.loads((d / "summary.json").read_text()) for d in dirs]
    assert [s["backend"] for s in summaries] == ["numpy", "torch"]
    assert "torch" in summaries[1]["versions"]
    # Adam keeps two buffers per parameter, in both implementations
    assert all(s["optimizer_state_bytes"] == 2 * s["param_bytes"] for s in summaries)


def test_a_sampled_evaluation_is_the_same_estimate_in_both_backends(torch, tmp_path):
    """eval.train_batches / val_batches draw the same rows whatever the backend: in float64
    the estimates and their standard errors agree to rounding at every evaluation."""
    series = []
    for backend in ("numpy", "torch"):
        path = tmp_path / f"{backend}.csv"
        rec = MetricsWriter(path)
        train(config("model=mlp", "dataset=moons", "dtype=float64", "seed=1", "epochs=2",
                     "eval.train_batches=6", "eval.val_batches=3", f"backend={backend}"),
              rec, "none")
        rec.close()
        series.append({tuple(r[:4]): float(r[4]) for r in
                       (line.split(",") for line in path.read_text().splitlines()[1:])
                       if r[2] in ("train", "val")})
    assert series[0].keys() == series[1].keys()
    assert sum(k[3] == "loss_se" for k in series[0]) == 6  # train and val at steps 0, 25, 50
    for key, value in series[0].items():
        assert series[1][key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_both_backends_follow_the_backend_protocol(torch):
    """The loop's contract (dlx.training.backend.Backend) is met by both backends; checkpoints
    and per-layer probes are abilities of the NumPy one only, asked for by isinstance."""
    from dlx.assemble import build_data
    from dlx.training.backend import Backend, NumpyBackend, Probed, Resumable
    from dlx.training.torch_backend import TorchBackend

    cfg = config("model=mlp", "model.hidden=[4]")
    data = build_data(cfg)
    ours, theirs = NumpyBackend(cfg, data), TorchBackend(cfg, data)
    assert isinstance(ours, Backend) and isinstance(theirs, Backend)
    assert isinstance(ours, Resumable) and isinstance(ours, Probed)
    assert not isinstance(theirs, Resumable) and not isinstance(theirs, Probed)
    assert ours.sizes() == theirs.sizes() == {"params": 2 * 4 + 4 + 4 + 1}


def test_an_image_model_equals_its_torch_copy(torch):
    """An MLP built for (C, H, W) images flattens them as torch.nn.Flatten does: the same
    logits and input gradients in float64."""
    from dlx.training.torch_backend import to_torch

    rng = np.random.default_rng(0)
    model = build_model({"name": "mlp", "hidden": [7]}, {"name": "he_normal"},
                        DataSpec.image(2, 3, 3, n_classes=4), rng, np.float64)
    tmodel, pairs = to_torch(model)
    with torch.no_grad():
        for p, tp, kind in pairs:
            tp.copy_(torch.from_numpy(p.data.T.copy() if kind == "W" else p.data))
    x = rng.standard_normal((5, 2, 3, 3))
    np.testing.assert_allclose(model.forward(x), tmodel(torch.from_numpy(x)).detach().numpy(),
                               rtol=0, atol=1e-12)
