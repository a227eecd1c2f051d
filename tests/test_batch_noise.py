"""batch_noise: the noise-scale estimator against exact values, and figures of measured points.

The exact B_simple = tr(Sigma) / |G|^2 of a finite population follows from its per-example
gradients: G = mean_i g_i, tr(Sigma) = mean_i |g_i - G|^2 (batches are drawn with replacement,
so this Sigma is the one E|g_b|^2 = |G|^2 + tr(Sigma)/b holds for).
"""

from __future__ import annotations

import numpy as np
import pytest

from dlx.experiments.batch_noise import NoiseMeter, estimate, flat_grad, noise_scale, plot_sweep, step_grid
from tests.test_experiments import run
from tests.test_train import config

TINY = ("experiment=batch_noise", "dataset.subset=1000", "epochs=1", "model.hidden=[32]",
        "batch_noise.sizes=[1,4,16]", "batch_noise.draws=4", "batch_noise.population=256",
        "batch_noise.small_batch=8", "batch_noise.big_batch=64", "batch_noise.batches=8",
        "batch_noise.bootstrap=200")


def exact(per_example: np.ndarray) -> float:
    G = per_example.mean(axis=0)
    return float(np.mean(np.sum((per_example - G) ** 2, axis=1)) / (G @ G))


def sample(per_example, rng, K, b, B):
    """|g_b|^2 of K x (B/b) small batches (with replacement) and |g_B|^2 of the K big ones."""
    idx = rng.integers(0, len(per_example), (K, B // b, b))
    small_g = per_example[idx].mean(axis=2)         # (K, B/b, D)
    big_g = small_g.mean(axis=1)                    # (K, D)
    return np.sum(small_g**2, axis=2), np.sum(big_g**2, axis=1)


@pytest.mark.science
def test_two_batch_size_estimates_are_unbiased_and_intervals_cover():
    rng = np.random.default_rng(0)
    D, N = 40, 500
    per_example = rng.normal(0.3, 1.0, (N, D)) * rng.uniform(0.2, 2.0, D)  # anisotropic
    G = per_example.mean(axis=0)
    true_trace, true_norm2 = np.mean(np.sum((per_example - G) ** 2, axis=1)), G @ G
    truth = exact(per_example)
    b, B, K = 8, 64, 16
    trials = [sample(per_example, rng, K, b, B) for _ in range(400)]
    norm2, trace = np.array([noise_scale(s.ravel(), g, b, B) for s, g in trials]).T
    # unbiased: the mean over 400 trials within 4 standard errors of the truth
    for est, true in ((norm2, true_norm2), (trace, true_trace)):
        assert abs(est.mean() - true) < 4 * est.std() / np.sqrt(len(est)), (est.mean(), true)
    # the 95% bootstrap interval holds the truth about 95% of the time (>= 85% of 100)
    covered = [(lambda e: e["b_simple_lo"] <= truth <= e["b_simple_hi"])(
        estimate(s, g, b, B, rng, 400)) for s, g in trials[:100]]
    assert np.mean(covered) >= 0.85, np.mean(covered)


@pytest.mark.science
@pytest.mark.needs("mnist")
def test_estimate_at_fixed_weights_matches_exact_per_example_value(tmp_path):
    """A real MLP on 256 MNIST examples, at init and after an epoch, three seeds: exact B_simple
    from the 256 per-example gradients against 4 independent probes each (24 intervals)."""
    from dlx import threads
    from dlx.assemble import build_data
    from dlx.records.metrics import MetricsWriter
    from dlx.training import NumpyBackend, train

    covered, ratios = [], []
    try:
        for seed in range(3):
            cfg = config(*TINY, f"seed={seed}", "batch_noise.batches=32")
            threads.apply(cfg)  # one BLAS thread, as in a run: many small products
            data = build_data(cfg)
            backend = NumpyBackend(cfg, data)
            for trained in (False, True):
                if trained:
                    rec = MetricsWriter(tmp_path / f"metrics-{seed}.csv")
                    train(cfg, rec, "none", backend=backend)
                    rec.close()
                meter = NoiseMeter(cfg, backend, data.X_train, data.y_train)
                per_example = np.stack([flat_grad(backend, meter.X[i:i + 1], meter.y[i:i + 1])
                                        for i in range(len(meter.X))])
                truth = exact(per_example)
                probes = [meter.probe(backend) for _ in range(4)]
                covered += [p["b_simple_lo"] <= truth <= p["b_simple_hi"] for p in probes]
                ratios.append(np.mean([p["b_simple"] for p in probes]) / truth)
                assert all(p["b_simple_hi"] < 2 * p["b_simple_lo"] for p in probes)  # informative
    finally:
        threads.release()
    assert sum(covered) >= 20, covered      # 95% intervals: 22.8 of 24 expected
    assert np.all(np.abs(np.log(ratios)) < 0.1), ratios  # the mean of 4 probes within 10%


def test_bad_settings_are_usage_errors():
    from dlx.errors import UsageError

    with pytest.raises(UsageError, match="big_batch must be a multiple > 1 of small_batch"):
        config("experiment=batch_noise", "batch_noise.big_batch=48")
    with pytest.raises(UsageError, match="batches must be >= 2"):
        config("experiment=batch_noise", "batch_noise.batches=1")


def test_step_grid_is_log_spaced_and_common():
    assert step_grid(2, 100) == [0, 1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91]
    assert step_grid(2, 30) == step_grid(2, 100)[:10]  # a short run measures a prefix


def captured(monkeypatch) -> dict:
    """Figures plot_sweep saves, by file name, instead of writing them."""
    import dlx.experiments.batch_noise as module

    figures = {}
    monkeypatch.setattr(module, "save", lambda fig, path: figures.setdefault(path.name, fig))
    return figures


@pytest.mark.needs("mnist")
def test_equal_steps_panel_draws_only_measured_points(tmp_path, monkeypatch):
    import pandas as pd

    runs = [run(tmp_path, *TINY, f"batch_size={size}", f"seed={seed}")
            for size in (16, 128) for seed in (0, 1)]
    figures = captured(monkeypatch)
    plot_sweep(tmp_path, runs, [], "png", tmp_path)
    panel = figures["loss_by_batch_size.png"].axes[1]
    assert panel.get_xscale() == "log"
    for size, line in zip((16, 128), panel.get_lines()):
        members = [r for r in runs if r.config["batch_size"] == size]
        tables = [pd.read_csv(r.path / "noise_scale.csv").set_index("step") for r in members]
        x, y = line.get_xdata(), line.get_ydata()
        assert line.get_marker() == "o"
        last = min(t.index.max() for t in tables)
        assert list(x) == step_grid(2, last)[1:]  # every grid step from 1, no other step
        for t in tables:
            assert set(x) <= set(t.index)  # each plotted step was measured by every seed
        np.testing.assert_allclose(y, np.mean([t.loc[x, "loss"] for t in tables], axis=0))
    assert "± sd over 2 seeds" in figures["loss_by_batch_size.png"]._suptitle.get_text()
    noise = figures["gradient_noise.png"].axes[1]
    assert all("±" in t.get_text() for t in noise.get_legend().get_texts())
    table = pd.read_csv(tmp_path / "noise_scale_by_batch.csv")
    assert list(table["batch_size"]) == [16, 128] and list(table["seeds"]) == [2, 2]


@pytest.mark.science
@pytest.mark.needs("mnist")
@pytest.mark.slow
def test_variance_falls_as_one_over_b_and_the_noise_scale_grows(tmp_path):
    """(moved here from test_mnist.py) With intervals: B_simple at the end of two epochs is
    clearly above its value at init, not by one noisy probe."""
    r = run(tmp_path, "experiment=batch_noise", "epochs=2", "dataset.subset=3000",
            "batch_noise.sizes=[1,4,16,64,256]")
    info = r.summary["batch_noise"]
    assert -1.15 < info["variance_slope"] < -0.85
    init, final = info["b_simple_at_init"], info["b_simple_final"]
    assert init[1] <= init[0] <= init[2] and final[1] <= final[0] <= final[2]
    assert final[1] > 2 * init[2]  # the noise scale grows: intervals well apart
