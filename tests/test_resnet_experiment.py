"""experiment=resnet: plain against residual networks (He et al. 2016).

At CI size, the signature that shows cheaply and on every seed: at initialization (BatchNorm on
batch statistics, as training uses it) a plain stack's ||dL/dz|| grows geometrically towards
the input — a constant factor per layer, near Yang et al.'s (2019) sqrt(pi / (pi - 1)) = 1.21
for ReLU + BN — while the residual net's grows far less and slower than geometrically. The
degradation itself (deep plain nets fit worse after the same updates) is tested at width 2 on
1,000 images (~1 min of CPU); the full sweep's numbers are in the README.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlx.assemble import build_model
from dlx.data.spec import DataSpec
from dlx.nn import SoftmaxCrossEntropy
from dlx.nn.conv import Conv2d
from dlx.nn.layers import Linear
from dlx.nn.norm import BatchNorm
from dlx.nn.probe import layer_stats
from tests.test_experiments import run
from tests.test_mnist import tiny  # noqa: F401 - a fixture

SEEDS = (0, 1, 2)
SPEC = DataSpec.image(1, 16, 16, n_classes=10)


def net(name: str, depth: int, seed: int, width: int = 4):
    return build_model({"name": name, "depth": depth, "width": width}, {"name": "he_normal"},
                       SPEC, np.random.default_rng(seed), np.float64)


def images(seed: int, n: int = 32):
    rng = np.random.default_rng(100 + seed)
    return rng.standard_normal((n, *SPEC.shape)), rng.integers(0, 10, n)


def main_path(name: str, depth: int, seed: int) -> np.ndarray:
    """||dL/dz|| at init along the convs of the main path (stem first), as the experiment
    reads it: projections and the output layer left out."""
    from dlx.experiments.resnet import weight_layers

    model = net(name, depth, seed)
    rows = layer_stats(model, SoftmaxCrossEntropy(), *images(seed), batch_stats=True)
    names = weight_layers(model)
    return np.array([r["grad_z_norm"] for r, n in zip(rows, names)
                     if not n.endswith(".proj") and n != "fc"])


def per_layer_factor(g: np.ndarray) -> float:
    """exp of minus the least-squares slope of log ||dL/dz|| against position: how much the
    gradient grows per layer towards the input."""
    return float(np.exp(-np.polyfit(np.arange(len(g)), np.log(g), 1)[0]))


def test_the_probe_covers_every_conv_of_both_families():
    """One row per weight layer, forward order, named: plain-d has d (d - 1 convs and fc),
    resnet-d also its 2 projections; the main path is d - 1 convs in both."""
    from dlx.experiments.resnet import weight_layers

    for name, extra in (("plain", 0), ("resnet", 2)):
        model = net(name, 20, 0, width=2)
        weighted = [m for m in model.modules() if isinstance(m, (Conv2d, Linear))]
        rows = layer_stats(model, SoftmaxCrossEntropy(), *images(0, 8), batch_stats=True)
        names = weight_layers(model)
        assert len(rows) == len(names) == len(weighted) == 20 + extra
        assert [r["layer"] for r in rows] == list(range(1, 21 + extra))
        assert all(r["grad_z_norm"] > 0 and r["grad_W_norm"] > 0 for r in rows)
        assert names[0] == "stem" and names[-1] == "fc"
        assert sum(n.endswith(".proj") for n in names) == extra
        if extra:  # a residual block runs its body, then its shortcut
            assert names.index("s2b1.proj") == names.index("s2b1.conv2") + 1
        assert len(main_path(name, 20, 0)) == 19


def test_batch_statistics_probe_is_trainings_gradient_and_changes_nothing():
    """batch_stats=True gives the gradient a training step computes (BN on the batch), leaves
    the running estimates and the mode as they were; the eval-mode probe at init sees BN as the
    identity (running mean 0, var 1), a different network."""
    model = net("plain", 8, 0)
    X, y = images(0)
    loss = SoftmaxCrossEntropy()
    probed = layer_stats(model, loss, X, y, batch_stats=True)
    assert model.training
    for bn in (m for m in model.modules() if isinstance(m, BatchNorm)):
        np.testing.assert_array_equal(bn.running_mean.data, 0.0)
        np.testing.assert_array_equal(bn.running_var.data, 1.0)
    model.zero_grad()
    loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    fc = [m for m in model.modules() if isinstance(m, Linear)][-1]
    stem = [m for m in model.modules() if isinstance(m, Conv2d)][0]
    assert probed[-1]["grad_W_norm"] == pytest.approx(np.linalg.norm(fc.W.grad), rel=1e-12)
    assert probed[0]["grad_W_norm"] == pytest.approx(np.linalg.norm(stem.W.grad), rel=1e-12)
    model.zero_grad()
    identity_bn = layer_stats(model, loss, X, y)
    assert abs(identity_bn[0]["grad_W_norm"] / probed[0]["grad_W_norm"] - 1) > 0.1


@pytest.mark.science
def test_plain_gradients_grow_geometrically_residual_ones_do_not():
    """On every seed, at init: the plain net's ||dL/dz|| grows by a constant ~1.15-1.2 per layer
    towards the input (32 and 56 layers alike), so its stem/last ratio multiplies by > 10 from
    32 to 56 layers and exceeds 1000 at 56; the residual net's per-layer factor is smaller and
    falls with depth, its ratio at 56 is < 1/20 of the plain one's and grows < 5x from 32."""
    for seed in SEEDS:
        g = {(name, d): main_path(name, d, seed) for name in ("plain", "resnet") for d in (32, 56)}
        ratio = {k: v[0] / v[-1] for k, v in g.items()}
        factor = {k: per_layer_factor(v) for k, v in g.items()}
        for d in (32, 56):
            assert 1.13 < factor["plain", d] < 1.25, (seed, d, factor)
            assert factor["resnet", d] < factor["plain", d] - 0.05, (seed, d, factor)
        assert factor["resnet", 56] < factor["resnet", 32], (seed, factor)
        assert ratio["plain", 56] > 1000 and ratio["plain", 56] > 10 * ratio["plain", 32], ratio
        assert ratio["resnet", 56] < ratio["plain", 56] / 20, (seed, ratio)
        assert ratio["resnet", 56] < 5 * ratio["resnet", 32], (seed, ratio)


def test_a_run_probes_at_init_trains_without_the_test_set_and_repeats(tiny, tmp_path):  # noqa: F811
    """A member writes layer_stats.csv at step 0 (BN on batch statistics) and layers.csv, skips
    the 10,000 test images, reports its numbers, and the same seed gives the same bytes."""
    from dlx.experiments.resnet import first_last_ratio, profile, report_numbers

    overrides = ("experiment=resnet", "model=resnet", "dataset.val_size=20", "dataset.subset=64",
                 "epochs=1", "batch_size=16", "probe_batch=16")
    a, b = (run(tmp_path, *overrides) for _ in range(2))
    for name in ("metrics.csv", "layer_stats.csv", "layers.csv"):
        assert (a.path / name).read_bytes() == (b.path / name).read_bytes(), name
    assert set(a.metrics["split"]) == {"batch", "train", "val", "model"}  # no test split
    assert a.metrics.query("split == 'batch' and metric == 'loss'")["step"].max() == 4  # 64 / 16 updates
    stats = pd.read_csv(a.path / "layer_stats.csv")
    assert set(stats["step"]) == {0} and stats["layer"].max() == 10  # 8 layers + 2 projections
    layers, values = profile(a)
    assert list(layers) == list(range(1, 8))
    numbers = report_numbers(a)
    assert numbers["‖∂L/∂z‖ stem conv / last conv, at init"] == first_last_ratio(a) > 0
    assert numbers["training error at the end"] == \
        pytest.approx(1 - a.summary["final"]["train/acc"])
    batch = a.metrics.query("split == 'batch' and metric == 'loss'")["value"].to_numpy()
    assert numbers["mini-batch loss, last quarter of the updates"] == pytest.approx(batch[-1])
    g = values  # growth per layer: exp(-slope) of log ||dL/dz|| against position
    assert numbers["‖∂L/∂z‖ growth per layer towards the input, at init"] == pytest.approx(
        np.exp(-np.polyfit(np.arange(len(g)), np.log(g), 1)[0]), rel=1e-12)


@pytest.mark.needs("mnist")
@pytest.mark.slow
def test_a_tiny_sweep_draws_the_figures_and_the_table(cli, tmp_path):
    """`dlx run -m experiment=resnet` at toy size (real MNIST, a few steps), then `dlx plot`:
    the degradation, training-curve and gradient-profile figures and resnet.csv with one row per
    (family, depth) holding the members' mean and sd."""
    from dlx.records.store import Run

    result = cli("run", "-m", "experiment=resnet", "model.depth=8,14", "seed=0,1",
                 "dataset.subset=64", "dataset.val_size=32", "batch_size=16", "probe_batch=16",
                 "epochs=1", timeout=600)
    assert result.returncode == 0, result.stderr
    sweep = cli.run_dir(result)
    assert "8 completed" in result.stderr
    plotted = cli("plot", str(sweep))
    assert plotted.returncode == 0, plotted.stderr
    for name in ("degradation", "training_curves", "grad_profiles"):
        assert (sweep / "plots" / f"{name}.png").is_file(), name
    table = pd.read_csv(sweep / "plots" / "resnet.csv")
    assert sorted(zip(table["family"], table["depth"])) == [
        ("plain", 8), ("plain", 14), ("residual", 8), ("residual", 14)]
    assert (table["n"] == 2).all()
    members = [Run(p) for p in sorted(sweep.iterdir()) if p.name.isdigit()]
    plain14 = [1 - m.summary["final"]["train/acc"] for m in members
               if m.config["model"]["name"] == "plain" and m.config["model"]["depth"] == 14]
    row = table[(table["family"] == "plain") & (table["depth"] == 14)].iloc[0]
    assert row["train_err_mean"] == pytest.approx(np.mean(plain14), rel=1e-12)
    assert row["train_err_sd"] == pytest.approx(np.std(plain14, ddof=1), rel=1e-9)


@pytest.mark.science
@pytest.mark.needs("mnist")
def test_degradation_the_deep_plain_net_trains_worse_the_deep_residual_net_does_not(tmp_path):
    """He et al.'s degradation at CI size (width 2, 1,000 real MNIST images, 124 updates): on
    every seed the mini-batch loss over the last quarter of plain-56 is above plain-8's by
    > 0.3 nats (measured +0.67, +0.58, +0.56; training error 0.89 / 0.86 / 0.78 against
    0.41 / 0.53 / 0.64), and residual-56's is below plain-56's by > 0.3 (measured -0.64, -1.15,
    -0.60): the same depth trains with shortcuts. Over seeds 0-4 under the Haswell, Sandybridge
    and Prescott OpenBLAS kernels (15 draws) the two gaps were 0.42-0.76 and 0.60-1.49 nats.
    ~60 s of CPU, plain-56 and resnet-56 ~15 s each."""
    from dlx.experiments.resnet import batch_loss_end

    for seed in SEEDS:
        loss = {(name, depth): batch_loss_end(run(
                    tmp_path, "experiment=resnet", f"model={name}", f"model.depth={depth}",
                    "model.width=2", "dataset.subset=1000", "epochs=4", "probe_batch=32",
                    "eval.train_batches=1", "eval.val_batches=1", f"seed={seed}"))
                for name, depth in (("plain", 8), ("plain", 56), ("resnet", 56))}
        assert loss["plain", 56] > loss["plain", 8] + 0.3, (seed, loss)
        assert loss["resnet", 56] < loss["plain", 56] - 0.3, (seed, loss)
