"""experiment=cnn: LeNet-5-like on MNIST reaches LeCun et al.'s ~99% (real MNIST, slow), and
its figures (filters and feature maps, naive against im2col) come from the trained layers."""

from __future__ import annotations

import pytest

from tests.test_experiments import run
from tests.test_mnist import tiny  # noqa: F401 - a fixture


def test_cnn_figures_and_numbers(tiny, tmp_path):  # noqa: F811
    from dlx.experiments.cnn import MLP_PARAMS, conv_timings, plot_run, report_numbers

    r = run(tmp_path, "experiment=cnn", "epochs=1", "dataset.val_size=50")
    written = {p.name for p in plot_run(r, tmp_path / "plots", "png")}
    assert {"filters_and_maps.png", "conv_speed.png", "confusion_matrix.png"} <= written
    numbers = report_numbers(r)
    assert numbers["parameters"] == 61706 and numbers["parameters of the 784-256-10 MLP"] == \
        MLP_PARAMS == 203530  # LeNet-5's layout: 3.3x fewer than the MLP
    from dlx.assemble import trained_model

    model, data = trained_model(r)
    timings = conv_timings(model, data.X_test[:2], repeats=1)
    assert [t["layer"] for t in timings] == ["conv1", "conv2"]
    assert all(t["naive_s"] > 3 * t["im2col_s"] for t in timings)


@pytest.mark.science
@pytest.mark.needs("mnist")
@pytest.mark.slow
def test_lenet_reaches_about_99_percent_on_mnist(tmp_path):
    """LeCun et al. (1998) report 99.05% for LeNet-5; the README's 99.15 +- 0.08% is the mean of
    seeds 0-2. Measured here over seeds 0-2 under the SkylakeX and Haswell OpenBLAS kernels:
    99.06-99.25%, so a bar at 99.0% sat 6 test images below one of them. Asserted on one seed:
    >= 98.9%, 2.5 standard deviations (0.07) below the lowest. The epochs' evaluations estimate
    the training and validation splits on 20 batches (eval.*_batches: the same training, byte
    for byte, as tests/test_eval.py shows); the test split is scored whole."""
    r = run(tmp_path, "experiment=cnn", "eval.train_batches=20", "eval.val_batches=20")
    assert r.summary["final"]["test/acc"] >= 0.989, r.summary["final"]
