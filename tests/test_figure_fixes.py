"""Figures say what they show (issue #13, item 9): every drawn point was measured, labels
describe the weights drawn, axes keep step 0, ticks are round, layouts fit a screen."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_experiments import run


@pytest.fixture
def captured(monkeypatch):
    """Figures handed to ``save`` in the plotting modules, by file name (nothing written)."""
    figures = {}

    def keep(fig, path):
        figures[path.name] = fig
        return path

    import dlx.experiments.conditioning  # noqa: F401 - save is imported inside its functions
    import dlx.experiments.logreg
    import dlx.plots.run
    import dlx.plots.style

    for module in (dlx.plots.run, dlx.experiments.logreg, dlx.plots.style):
        monkeypatch.setattr(module, "save", keep)
    return figures


@pytest.mark.needs("mnist")
def test_the_test_split_is_a_visible_point(tmp_path, captured):
    """Measured once, at the end: drawn as a marker, not as a line through one point."""
    from dlx.plots.run import metric_figures

    r = run(tmp_path, "dataset=mnist", "dataset.subset=300", "dataset.val_size=100", "epochs=1")
    metric_figures(r, tmp_path, "png")
    [test_line] = [ln for ln in captured["loss.png"].axes[0].lines if ln.get_label() == "test"]
    assert len(test_line.get_xdata()) == 1 and test_line.get_marker() not in (None, "None", "")


def test_weight_norm_keeps_step_0_and_boundaries_fit_a_grid(tmp_path, captured):
    from dlx.experiments.logreg import plot_sweep

    r = run(tmp_path, "experiment=logreg", "epochs=3")
    plot_sweep(tmp_path, [r] * 6, [f"copy {i}" for i in range(6)], "png", tmp_path)
    [line] = captured["weight_norm_log_steps.png"].axes[0].lines[:1]
    assert line.get_xdata()[0] == 0  # the initial weights are on the (symlog) axis
    width, height = captured["decision_boundaries.png"].get_size_inches()
    assert width <= 3 * 5.2 + 1e-9 and height > 4.8  # 6 panels: two rows of three


def test_a_diverged_runs_boundary_is_labelled_with_the_accuracy_of_the_weights_drawn(
        tmp_path, captured):
    from dlx.assemble import trained_model
    from dlx.nn import predictions
    from dlx.plots.run import decision_boundary

    r = run(tmp_path, "model=mlp", "optimizer=sgd", "optimizer.lr=30", "epochs=5",
            "divergence_factor=3")
    assert r.summary["status"] == "diverged"
    model, data = trained_model(r)
    assert all(np.isfinite(p.data).all() for p in model.parameters())
    drawn = float((predictions(model.forward(data.X_val)) == data.y_val).mean())
    decision_boundary(r, tmp_path, "png")
    [text] = captured["decision_boundary.png"].axes[0].texts
    assert text.get_text() == f"validation accuracy {drawn:.3f} (diverged)"


def test_log_colour_bars_have_decade_ticks(tmp_path, monkeypatch):
    import dlx.plots.style
    from dlx.experiments.loss_surface import plot_run

    figures = {}
    monkeypatch.setattr(dlx.plots.style, "save", lambda fig, path: figures.setdefault(path.name, fig))
    r = run(tmp_path, "experiment=loss_surface", "loss_surface.problem=rosenbrock",
            "loss_surface.grid=21", "loss_surface.steps=50")
    plot_run(r, tmp_path, "png")
    bar = figures["contour.png"].axes[1]  # the colour bar's axes
    ticks = bar.get_yticks()
    assert len(ticks) >= 3 and np.allclose(np.log10(ticks), np.round(np.log10(ticks)))


def test_the_stability_limit_is_drawn(tmp_path, monkeypatch):
    import pandas as pd

    import dlx.plots.style
    from dlx.experiments.conditioning import plot_run

    figures = {}
    monkeypatch.setattr(dlx.plots.style, "save", lambda fig, path: figures.setdefault(path.name, fig))
    r = run(tmp_path, "experiment=conditioning", "conditioning.kappas=[10,100]")
    plot_run(r, tmp_path, "png")
    curves = pd.read_csv(r.path / "stability.csv").groupby("step_over_2_over_L")["relative_error"]
    last = curves.last()
    assert last[last.index > 1].item() > 1e5 and last[last.index < 1].item() <= 1e-6
    labels = [ln.get_label() for ln in figures["stability_limit.png"].axes[0].lines]
    assert "step = 1.01 × 2/L: diverges" in labels and "step = 0.99 × 2/L: converges" in labels


def test_a_sweeps_mini_batch_losses_are_smoothed(tmp_path, monkeypatch):
    """Several per-step loss curves overlaid: each drawn as an EMA (raw faint), the axis
    following the smoothed curves."""
    import dlx.plots.sweep
    from dlx.plots.sweep import overlays

    figures = {}
    monkeypatch.setattr(dlx.plots.sweep, "save", lambda fig, path: figures.setdefault(path.name, fig))
    runs = [run(tmp_path, "epochs=6", f"optimizer.lr={lr}") for lr in (0.05, 0.2)]
    overlays(tmp_path, runs, ["lr 0.05", "lr 0.2"], "s", "png")
    ax = figures["batch_loss.png"].axes[0]
    assert "EMA over" in ax.get_title()
    thick = [ln for ln in ax.lines if ln.get_linewidth() >= 1]  # not the faint raw lines
    raw = runs[0].series("batch", "loss")["value"].to_numpy()
    smoothed = thick[0].get_ydata()
    assert len(smoothed) == len(raw) and np.std(np.diff(smoothed)) < 0.3 * np.std(np.diff(raw))
    assert ax.get_ylim()[0] >= 0.7 * min(min(ln.get_ydata()) for ln in thick)


def test_grad_flow_averages_seeds_geometrically(tmp_path):
    """grad_flow's sweep figures: per (layer, step) the geometric mean over seeds, and the
    first/last-layer ratio as a geometric mean ×/÷ its geometric sd."""
    from types import SimpleNamespace

    import pandas as pd

    from dlx.experiments.grad_flow import geometric_mean_stats, ratio_spread

    runs = []
    for seed, scale in enumerate((1.0, 100.0)):
        path = tmp_path / str(seed)
        path.mkdir()
        rows = [{"step": 0, "epoch": 0, "layer": layer, "stat": "grad_z_norm",
                 "value": scale * 10.0 ** -layer} for layer in (1, 2, 3)]
        pd.DataFrame(rows).to_csv(path / "layer_stats.csv", index=False)
        runs.append(SimpleNamespace(path=path))
    mean = geometric_mean_stats(runs).sort_values("layer")["value"].to_numpy()
    np.testing.assert_allclose(mean, [10 * 10.0 ** -1, 10 * 10.0 ** -2, 10 * 10.0 ** -3])
    ratio, spread = ratio_spread(runs)  # layer 1 / layer 2 (the last hidden one) = 10 on both
    assert ratio == pytest.approx(10.0) and spread == pytest.approx(1.0)
