"""The generic gradient-norm figure (``batch/grad_norm``, the norm before clipping) draws each
run's ``clip_grad_norm`` as a labelled horizontal line: in one run's figure and in a sweep's
overlay (one line per distinct threshold), and none without norm clipping."""

from __future__ import annotations

import pytest

from tests.test_experiments import run


def _drawn(monkeypatch, module) -> list:
    """Figures that ``module.save`` is asked to write, kept instead of written."""
    figures = []

    def keep(fig, path):
        figures.append((path.name, fig))
        return path

    monkeypatch.setattr(module, "save", keep)
    return figures


def _thresholds(fig) -> dict[float, str]:
    """The horizontal lines labelled as clipping thresholds: {y: label}."""
    ax = fig.axes[0]
    return {line.get_ydata()[0]: line.get_label() for line in ax.get_lines()
            if line.get_label().startswith("clip_grad_norm") and len(set(line.get_ydata())) == 1}


COMMON = ("model=mlp", "dataset=moons", "epochs=2", "dataset.n_samples=100", "batch_size=20")


@pytest.mark.parametrize("clip, expected", [("clip_grad_norm=0.25", [0.25]),
                                            ("clip_grad_value=0.1", [])])
def test_a_runs_grad_norm_figure_marks_the_threshold(tmp_path, monkeypatch, clip, expected):
    from dlx.plots import run as run_plots

    r = run(tmp_path, *COMMON, clip)
    figures = _drawn(monkeypatch, run_plots)
    run_plots.metric_figures(r, tmp_path / "plots", "png")
    fig = dict(figures)["grad_norm.png"]
    lines = _thresholds(fig)
    assert sorted(lines) == expected
    if expected:
        assert lines[0.25] == "clip_grad_norm = 0.25 (norms above it are scaled down to it)"
        assert lines[0.25] in [t.get_text() for t in fig.axes[0].get_legend().texts]
        assert "before clipping" in fig.axes[0].get_ylabel()
    assert not any(_thresholds(f) for name, f in figures if name != "grad_norm.png")


def test_a_sweeps_overlay_marks_each_threshold_once(tmp_path, monkeypatch):
    from dlx.plots import sweep

    runs = [run(tmp_path, *COMMON, f"clip_grad_norm={c}") for c in (0.25, 0.5, 0.5)]
    figures = _drawn(monkeypatch, sweep)
    sweep.overlays(tmp_path / "plots", runs, ["a", "b", "c"], "moons", "png")
    fig = dict(figures)["batch_grad_norm.png"]
    assert sorted(_thresholds(fig)) == [0.25, 0.5]
    low, high = fig.axes[0].get_ylim()
    assert low < 0.25 and high > 0.5  # the lines are inside the axis
