"""The image models (cnn, resnet, plain) and the MLP's norm / residual options: gradients
against finite differences in float64, equal to their torch copies, and backend=torch runs
agreeing with backend=numpy step by step."""

from __future__ import annotations

import numpy as np
import pytest

from dlx.assemble import build_model
from dlx.data.spec import DataSpec
from dlx.errors import UsageError
from dlx.nn import SoftmaxCrossEntropy
from dlx.nn.gradcheck import check_model
from tests.test_backends import batch_losses
from tests.test_mnist import tiny  # noqa: F401 - a fixture

IMAGE = DataSpec.image(1, 8, 8, n_classes=3)
SMALL = DataSpec.image(1, 4, 4, n_classes=3)  # resnets: 4x4 -> 2x2 -> 1x1 over the stages
FEATURES = DataSpec.features(5, 3)

MODELS = {
    "cnn": ({"name": "cnn", "channels": [2, 3], "kernel": 3, "padding": 1, "hidden": [6]}, IMAGE),
    "cnn avg pool + BN": ({"name": "cnn", "channels": [2], "kernel": 3, "padding": 0,
                           "hidden": [], "pool": "avg", "batchnorm": True}, IMAGE),
    "resnet 8": ({"name": "resnet", "depth": 8, "width": 2}, SMALL),
    "resnet 8 pre-activation": ({"name": "resnet", "depth": 8, "width": 2, "preact": True}, SMALL),
    "plain 8": ({"name": "plain", "depth": 8, "width": 2}, SMALL),
    "mlp + batchnorm": ({"name": "mlp", "hidden": [6, 6], "norm": "batchnorm"}, FEATURES),
    "mlp + layernorm": ({"name": "mlp", "hidden": [6, 6], "norm": "layernorm"}, FEATURES),
    "residual mlp": ({"name": "mlp", "hidden": [6, 6, 6], "residual": True,
                      "activation": "tanh"}, FEATURES),
}


def batch(spec, n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *spec.shape)), np.arange(n) % spec.n_classes


@pytest.mark.parametrize("name", MODELS)
def test_model_gradients_match_finite_differences(name):
    """In training mode (BatchNorm on batch statistics: its gradient flows through them)."""
    node, spec = MODELS[name]
    model = build_model(node, {"name": "xavier_normal"}, spec, np.random.default_rng(1),
                        np.float64)
    errors = check_model(model, SoftmaxCrossEntropy(), *batch(spec))
    assert max(errors.values()) < 1e-6, {k: v for k, v in errors.items() if v > 1e-7}


@pytest.mark.torch
@pytest.mark.parametrize("name", MODELS)
def test_models_equal_their_torch_copies(torch, name):
    """Logits in training and eval mode and every parameter gradient, float64, <= 1e-10."""
    from dlx.training.torch_backend import to_torch

    node, spec = MODELS[name]
    model = build_model(node, {"name": "xavier_normal"}, spec, np.random.default_rng(1),
                        np.float64)
    tmodel, pairs = to_torch(model)
    tmodel.double()
    with torch.no_grad():
        for p, tp, kind in pairs:
            tp.copy_(torch.from_numpy(p.data.T.copy() if kind == "W" else p.data))
    x, y = batch(spec)
    loss = SoftmaxCrossEntropy()
    logits = model.forward(x)  # once: BatchNorm's running estimates move with every forward
    loss.forward(logits, y)
    model.backward(loss.backward())
    tlogits = tmodel(torch.from_numpy(x))
    torch.nn.functional.cross_entropy(tlogits, torch.from_numpy(y)).backward()
    np.testing.assert_allclose(logits, tlogits.detach().numpy(), rtol=0, atol=1e-10)
    for p, tp, kind in pairs:
        if kind != "buffer":
            theirs = tp.grad.numpy().T if kind == "W" else tp.grad.numpy()
            np.testing.assert_allclose(p.grad, theirs, rtol=0, atol=1e-10, err_msg=p.name)
    model.eval(), tmodel.eval()
    np.testing.assert_allclose(model.forward(x), tmodel(torch.from_numpy(x)).detach().numpy(),
                               rtol=0, atol=1e-10)


@pytest.mark.torch
@pytest.mark.parametrize("model", [("model=cnn", "model.channels=[4,8]", "model.hidden=[16]"),
                                   ("model=resnet", "model.depth=8", "model.width=4"),
                                   ("model=plain", "model.depth=8", "model.width=4")])
def test_backend_torch_runs_agree_step_by_step(torch, tiny, tmp_path, model):  # noqa: F811
    common = (*model, "dataset=mnist", "dataset.val_size=50", "optimizer=adam", "dtype=float64",
              "batch_size=30", "epochs=2", "seed=3")
    ours = batch_losses(tmp_path, "numpy", *common)
    theirs = batch_losses(tmp_path, "torch", *common, "backend=torch")
    assert len(ours) == len(theirs) == 10
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_image_models_refuse_feature_vectors():
    with pytest.raises(UsageError, match="model 'cnn' reads images; this data set gives feature "
                                         "vectors of 5 numbers"):
        build_model({"name": "cnn"}, {"name": "he_normal"}, FEATURES, np.random.default_rng(0),
                    np.float32)


@pytest.mark.parametrize("node,message", [
    ({"name": "resnet", "depth": 10}, "depth must be 6n \\+ 2"),
    ({"name": "cnn", "channels": [4, 4, 4, 4], "padding": 0}, "too small"),
    ({"name": "cnn", "channels": [4, 4], "padding": [1]}, "padding has 1 entries for 2"),
    ({"name": "mlp", "hidden": [4, 8], "residual": True}, "one width"),
    ({"name": "mlp", "norm": "weird"}, "norm must be one of"),
])
def test_bad_options_are_one_line(node, message):
    spec = FEATURES if node["name"] == "mlp" else IMAGE
    with pytest.raises(UsageError, match=message):
        build_model(node, {"name": "he_normal"}, spec, np.random.default_rng(0), np.float32)


def test_resnet_has_6n_plus_2_weight_layers_and_plain_the_same_minus_projections():
    """depth counts the stem, 2 convolutions per block and the classifier (projections are
    extra, as in He et al.); plain has the same layers without the shortcuts' 1x1 convs."""
    spec = DataSpec.image(1, 28, 28, 10)
    for depth in (8, 20):
        res = build_model({"name": "resnet", "depth": depth, "width": 4}, {"name": "he_normal"},
                          spec, np.random.default_rng(0), np.float32)
        pl = build_model({"name": "plain", "depth": depth, "width": 4}, {"name": "he_normal"},
                         spec, np.random.default_rng(0), np.float32)
        weights = [p.name for p in res.parameters() if p.decay]
        assert len([w for w in weights if ".proj." not in w]) == depth
        assert len([w for w in weights if ".proj." in w]) == 2  # entering stages 2 and 3
        assert [p.name for p in pl.parameters() if p.decay] == \
            [w for w in weights if ".proj." not in w]


def test_the_probe_sees_every_weight_layer_of_a_residual_network():
    """Nested layers count: a depth-8 resnet has 8 weight layers and 2 projections, each with
    its output std and gradient norms; the probe leaves the model as it found it."""
    from dlx.nn.probe import layer_stats

    spec = DataSpec.image(1, 8, 8, n_classes=3)
    model = build_model({"name": "resnet", "depth": 8, "width": 2}, {"name": "he_normal"}, spec,
                        np.random.default_rng(0), np.float64)
    x, y = batch(spec)
    before = model.forward(x)
    rows = layer_stats(model, SoftmaxCrossEntropy(), x, y)
    assert [r["layer"] for r in rows] == list(range(1, 11))
    assert all(r["grad_z_norm"] > 0 and r["grad_W_norm"] > 0 and r["z_std"] > 0 for r in rows)
    assert "act_std" in rows[1]  # block 1's first conv -> BN -> ReLU: the ReLU's output
    assert "act_std" not in rows[2] and "act_std" not in rows[-1]  # conv2 -> BN -> (+ x); fc
    assert "forward" not in vars(model.layers[0]) and model.training
    assert all(not p.grad.any() for p in model.parameters())
    np.testing.assert_array_equal(model.forward(x), before)


def test_evaluation_of_images_goes_in_bounded_chunks(tiny, monkeypatch):  # noqa: F811
    """A conv's im2col holds k*k copies of its input: images are evaluated 256 at a time (a
    LeNet epoch on MNIST measured 2.3 GB resident with 8192-image chunks, 0.7 GB with 1024; a
    56-layer resnet 4.6 GB with 1024), and
    the chunked mean equals the one-pass mean."""
    from dlx.assemble import build_data
    from dlx.training.backend import NumpyBackend
    from dlx.training.chunks import eval_rows
    from tests.test_train import config

    assert eval_rows(np.zeros((5, 1, 28, 28))) == 256 and eval_rows(np.zeros((5, 784))) == 8192
    assert eval_rows(np.zeros((5, 16), dtype=np.int64)) == 512  # tokens
    cfg = config("model=cnn", "dataset=mnist", "dataset.val_size=50", "dtype=float64")
    backend = NumpyBackend(cfg, build_data(cfg))
    sizes, forward = [], backend.model.forward
    monkeypatch.setattr(backend.model, "forward", lambda x: sizes.append(len(x)) or forward(x))
    monkeypatch.setattr("dlx.training.chunks.eval_rows", lambda X: 64)
    X, y = backend.data.X_train, backend.data.y_train
    loss, acc = backend.evaluate(X, y)
    assert sizes == [64, 64, 22]
    sizes.clear()
    monkeypatch.setattr("dlx.training.chunks.eval_rows", lambda X: len(X))
    assert backend.evaluate(X, y) == (pytest.approx(loss, abs=1e-12), acc) and sizes == [150]
