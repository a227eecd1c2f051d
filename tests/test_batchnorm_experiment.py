"""experiment=batchnorm (and batchnorm_batch): BN makes a deep MLP insensitive to a small init
scale (real MNIST, every seed), the covariate-shift recorder measures what it says, training-mode
outputs depend on the batch while eval-mode ones do not, and the sweeps draw their figures."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dlx.data.spec import DataSpec
from dlx.experiments.batchnorm import MODES_FILE, UNIT_FILE, Recorder, logits_in, train_eval_gap
from dlx.nn import SoftmaxCrossEntropy
from dlx.nn.models import mlp
from tests.conftest import assert_one_error_line


def small_net(norm: str, seed: int = 0, hidden=(8, 6)):
    """A float64 MLP on 5 features with random weights and, for BN, gamma/beta and running
    statistics away from their initial values (so nothing below holds by accident)."""
    rng = np.random.default_rng(seed)
    model = mlp(DataSpec.features(5, 3), hidden=list(hidden), norm=norm, dtype=np.float64)
    for p in model.parameters():
        p.data[...] = rng.normal(0.3 if not p.decay else 0.0, 0.5, p.data.shape)
    for _ in range(3):  # training-mode passes move BN's running mean and variance
        model.forward(rng.normal(1.0, 2.0, (7, 5)))
    return model


@pytest.mark.parametrize("norm", ["none", "batchnorm"])
def test_recorded_percentiles_are_those_of_the_unit_input(tmp_path, norm):
    rng = np.random.default_rng(1)
    model = small_net(norm)
    X, y = rng.normal(0.5, 1.5, (40, 5)), rng.integers(0, 3, 40)
    running = [b.data.copy() for b in model.buffers()]
    recorder = Recorder(X, y, unit=2, batch=8, every=5, run_dir=tmp_path)
    backend = SimpleNamespace(model=model, loss_fn=SoftmaxCrossEntropy())
    for step in range(11):
        recorder(step, backend)  # records at 0, 5, 10
    recorder.close()
    units = pd.read_csv(tmp_path / UNIT_FILE)
    assert units["step"].tolist() == [0, 5, 10]

    # the unit's input by hand: fc1 -> [BN with X's own statistics] -> ReLU -> fc2 -> [BN]
    fc1, fc2 = model.layers[0], model.layers[3 if norm == "batchnorm" else 2]

    def bn(z, layer):
        g, b = layer.gamma.data, layer.beta.data
        return g * (z - z.mean(0)) / np.sqrt(z.var(0) + layer.eps) + b

    z1 = X @ fc1.W.data
    h = np.maximum(bn(z1, model.layers[1]) if norm == "batchnorm" else z1 + fc1.b.data, 0)
    z2 = h @ fc2.W.data
    z = bn(z2, model.layers[4])[:, 2] if norm == "batchnorm" else (z2 + fc2.b.data)[:, 2]
    np.testing.assert_allclose(units.iloc[0][["p15", "p50", "p85"]].to_numpy(float),
                               np.percentile(z, [15, 50, 85]), rtol=1e-12, atol=1e-12)
    assert units["p85"].iloc[0] > units["p50"].iloc[0] > units["p15"].iloc[0]
    # recording changed nothing: running statistics as before, back in training mode
    for b, before in zip(model.buffers(), running):
        np.testing.assert_array_equal(b.data, before)
    assert all(m.training for m in model.layers)
    modes = pd.read_csv(tmp_path / MODES_FILE)
    assert modes["step"].tolist() == [0, 5, 10]
    assert (modes["max_abs_diff"] > 1e-3).all() if norm == "batchnorm" \
        else (modes["max_abs_diff"] < 1e-12).all()


def test_training_mode_depends_on_the_batch_eval_mode_does_not():
    rng = np.random.default_rng(2)
    X, y = rng.normal(0.5, 1.5, (30, 5)), rng.integers(0, 3, 30)
    perm = rng.permutation(30)
    bn = small_net("batchnorm")
    # eval mode: each example's logits are its own, whatever batch it comes in
    whole = logits_in(bn, X, training=False, batch=30)
    np.testing.assert_allclose(logits_in(bn, X[perm], training=False, batch=30), whole[perm],
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([logits_in(bn, X[i:i + 1], False, 1)
                                               for i in range(3)]), whole[:3], rtol=1e-12)
    # training mode: the same examples in other batches of 5 give other logits
    train = logits_in(bn, X, training=True, batch=5)
    shuffled = logits_in(bn, X[perm], training=True, batch=5)
    assert np.abs(shuffled - train[perm]).max() > 1e-2
    assert train_eval_gap(bn, SoftmaxCrossEntropy(), X, y, 5)["max_abs_diff"] > 1e-2
    # LayerNorm (each example's own statistics) and no norm: the two modes agree
    for norm in ("layernorm", "none"):
        net = small_net(norm)
        assert train_eval_gap(net, SoftmaxCrossEntropy(), X, y, 5)["max_abs_diff"] < 1e-12


@pytest.mark.science
@pytest.mark.needs("mnist")
def test_bn_is_insensitive_to_a_small_init_scale_on_every_seed(tmp_path):
    """cs231n's result at CI size (6 x 100 ReLU, 1000 MNIST images, 100 Adam steps of 50): at
    init std 1e-3 and 1e-2 the un-normalized net's signal vanishes with depth and it stays near
    chance, while BN rescales every layer and learns; the gap beats the seed spread."""
    from dlx.assemble import build_data
    from dlx.records.metrics import MetricsWriter
    from dlx.training import NumpyBackend, train
    from tests.test_train import config

    best = {}
    for std in (1e-3, 1e-2):
        for norm in ("none", "batchnorm"):
            for seed in (0, 1, 2):
                cfg = config("experiment=batchnorm", f"model.norm={norm}", f"init.std={std}",
                             f"seed={seed}", "epochs=5", "dataset.val_size=500")
                backend = NumpyBackend(cfg, build_data(cfg))
                backend.data.X_test = None  # only the validation accuracy is compared
                rec = MetricsWriter(tmp_path / f"{std}-{norm}-{seed}.csv")
                train(cfg, rec, "none", backend=backend)
                rec.close()
                best[std, norm, seed] = rec.best["val/acc"]
    for std in (1e-3, 1e-2):
        bn = np.array([best[std, "batchnorm", s] for s in range(3)])
        base = np.array([best[std, "none", s] for s in range(3)])
        assert (base < 0.3).all(), (std, base)  # near chance (0.1): it has hardly learnt
        spread = max(bn.std(ddof=1), base.std(ddof=1))
        print(std, bn, base, spread)
        assert (bn - base > 0.25).all(), (std, bn, base)  # paired by seed: same data and order
        assert (bn - base > 2 * spread).all(), (std, bn, base, spread)


@pytest.mark.needs("mnist")
def test_recording_leaves_training_unchanged_and_reruns_are_byte_identical(tmp_path):
    """The recorder's training-mode passes put BN's running averages back: the run's metrics
    are those of plain training with the same config, byte for byte, and so are reruns'."""
    from dlx.experiments.batchnorm import run
    from dlx.records.metrics import MetricsWriter
    from dlx.training import train
    from tests.test_train import config

    cfg = config("experiment=batchnorm", "model.norm=batchnorm", "model.hidden=[32,32,32]",
                 "dataset.subset=200", "dataset.val_size=200", "epochs=2",
                 "batchnorm.probe_size=100")
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
        rec = MetricsWriter(d / "metrics.csv")
        run(cfg, rec, d)
        rec.close()
    plain = MetricsWriter(tmp_path / "plain.csv")
    train(cfg, plain, "none")
    plain.close()
    assert (dirs[0] / "metrics.csv").read_bytes() == (dirs[1] / "metrics.csv").read_bytes() \
        == (tmp_path / "plain.csv").read_bytes()
    for name in (UNIT_FILE, MODES_FILE):
        assert (dirs[0] / name).read_bytes() == (dirs[1] / name).read_bytes()
        assert len(pd.read_csv(dirs[0] / name)) == 9  # steps 0 ... 8: 4 updates an epoch, each recorded


TINY = ("dataset.subset=100", "dataset.val_size=100", "epochs=2", "batch_size=20",
        "model.hidden=[16,16,16]", "batchnorm.probe_size=40", "progress=none")


@pytest.mark.needs("mnist")
@pytest.mark.slow
def test_tiny_sweeps_end_to_end_draw_their_figures(cli):
    bad = cli("run", "experiment=batchnorm", "batchnorm.unit=16", *TINY)
    assert_one_error_line(bad, "batchnorm.unit", "16")

    result = cli("run", "-m", "experiment=batchnorm", *TINY, "init.std=0.001,0.1", "seed=0,1")
    assert result.returncode == 0, result.stderr
    assert "8 completed" in result.stderr  # 2 norms x 2 scales x 2 seeds
    sweep = cli.run_dir(result)
    member = next(p for p in sweep.iterdir() if (p / "summary.json").is_file())
    units = pd.read_csv(member / UNIT_FILE)
    assert units["step"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]  # 5 steps an epoch, 4 records
    info = json.loads((member / "summary.json").read_text())["batchnorm"]
    assert info["batch_size"] == 20 and 0 <= info["val_acc_eval"] <= 1
    assert (member / "plots" / "batchnorm_unit.png").is_file()
    plotted = cli("plot", str(sweep))
    assert plotted.returncode == 0, plotted.stderr
    for name in ("init_scale", "convergence", "covariate_shift", "train_vs_eval"):
        assert (sweep / "plots" / f"batchnorm_{name}.png").is_file(), name

    result = cli("run", "-m", "experiment=batchnorm_batch", *TINY, "batch_size=10,20", "seed=0")
    assert result.returncode == 0, result.stderr
    assert "4 completed" in result.stderr  # 2 norms x 2 batch sizes, one seed (CI time)
    sweep = cli.run_dir(result)
    plotted = cli("plot", str(sweep))
    assert plotted.returncode == 0, plotted.stderr
    assert (sweep / "plots" / "batchnorm_batch_size.png").is_file()
