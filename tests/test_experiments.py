"""Phase 1 experiments: each shows the result it exists to show (on small, fast settings)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from dlx.records.store import Run
from tests.conftest import assert_one_error_line
from tests.test_train import config


def run(tmp_path: Path, *overrides: str, figures: bool = False) -> Run:
    """One member run of an experiment, in-process, through the runner (so its status logic,
    summary and record are the real ones); its directory as a Run. Figures are skipped unless
    asked for (they cost a second a run)."""
    from omegaconf import OmegaConf

    from dlx import runner

    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=tmp_path))
    cfg = OmegaConf.create(config(*overrides))
    plot = runner._plot
    if not figures:
        runner._plot = lambda run_dir: None
    try:
        result = runner.run_job(cfg, run_dir, list(overrides))
    finally:
        runner._plot = plot
    assert result.status in ("completed", "diverged"), result.message
    return Run(run_dir)

@pytest.mark.science
def test_conditioning_slopes_boundary_and_standardization(tmp_path):
    r = run(tmp_path, "experiment=conditioning", "conditioning.kappas=[10,100,1000]")
    info = r.summary["conditioning"]
    assert 0.9 < info["slopes"]["gd"] < 1.1          # iterations ~ kappa
    assert 0.4 < info["slopes"]["momentum"] < 0.65   # iterations ~ sqrt(kappa)
    assert info["boundary"] == {"step_above_2_over_L": "diverged",
                                "step_below_2_over_L": "converged", "margin": 0.01}
    raw, std = info["logreg"]["raw"], info["logreg"]["standardized"]
    assert std["kappa"] < 2 < 1000 < raw["kappa"]
    assert std["iterations"] * 20 < raw["iterations"]


@pytest.mark.science
def test_logreg_weight_norm_grows_only_on_separable_data(tmp_path):
    def norms(std):
        s = run(tmp_path, "experiment=logreg", f"dataset.std={std}", "epochs=40").series(
            "model", "weight_norm")
        return s.set_index("epoch")["value"]

    separable, overlapping = norms(0.35), norms(2.0)
    assert separable[40] > 1.25 * separable[10] and separable[40] > separable[30] + 0.05
    assert abs(overlapping[40] - overlapping[20]) < 0.05 * overlapping[20]


@pytest.mark.science
@pytest.mark.parametrize("schedule", ["step", "exponential", "time_based", "cosine",
                                      "warmup_cosine", "onecycle"])
def test_lr_schedules_decay_and_train(tmp_path, schedule):
    r = run(tmp_path, "experiment=lr_schedules", f"schedule={schedule}", "epochs=10")
    lr = r.series("batch", "lr")["value"].to_numpy()
    assert lr[-1] <= 0.5 * lr.max()  # every schedule here ends at half its peak or below
    if schedule == "warmup_cosine":
        assert lr[0] == pytest.approx(0.5 * 0.01) and lr.argmax() == 50
    loss = r.series("train", "loss")["value"].to_numpy()
    assert loss[-1] < 0.35 * loss[0]


# learning_rate, gd_variants and optimizers: their effects are checked on every seed of a
# 3-seed sweep in tests/test_seeds.py


@pytest.mark.parametrize("problem,argmin", [("quadratic", [0.0, 0.0]), ("rosenbrock", [1.0, 1.0])])
def test_loss_surface_exact_problems(tmp_path, problem, argmin):
    r = run(tmp_path, "experiment=loss_surface", f"loss_surface.problem={problem}")
    info = r.summary["loss_surface"]
    np.testing.assert_allclose(info["grid_argmin"], argmin, atol=1e-9)
    paths = __import__("pandas").read_csv(r.path / "trajectories.csv")
    for name in ("sgd", "momentum", "adam"):
        p = paths[paths["optimizer"] == name]
        assert p["loss"].iloc[-1] < 0.5 * p["loss"].iloc[0], name


def test_loss_surface_mlp_slice_is_centred_on_the_trained_weights(tmp_path):
    r = run(tmp_path, "experiment=loss_surface", "loss_surface.problem=mlp", "epochs=15",
            "loss_surface.grid=21")
    info = r.summary["loss_surface"]
    assert info["centre_loss"] == pytest.approx(info["trained_loss"], rel=1e-9)
    assert info["argmin_cells_from_centre"] <= 1
    grid = __import__("pandas").read_csv(r.path / "surface.csv")
    assert len(grid) == 21 * 21 and grid["loss"].max() > 3 * info["centre_loss"]


@pytest.mark.slow
def test_an_experiment_sweep_end_to_end(cli):
    result = cli("run", "-m", "experiment=learning_rate", "epochs=3")
    assert result.returncode == 0, result.stderr
    assert "sweep of 9 runs: 6 completed, 3 diverged" in result.stderr  # 3 rates x 3 seeds
    sweep = cli.run_dir(result)
    plotted = cli("plot", str(sweep))
    assert plotted.returncode == 0, plotted.stderr
    assert (sweep / "plots" / "learning_rates.png").is_file()
    assert_one_error_line(cli("run", "experiment=lr_range", "lr_range.min_lr=100.0"),
                          "lr_range needs 0 < min_lr < max_lr")
