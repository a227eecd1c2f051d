"""The LR range test: fastai's four rules on known curves, and the suggestion against a sweep.

The sweep is the ground truth the range test exists to shortcut: the same task trained at a
constant LR for the same number of steps, on a log grid, over three seeds. The suggestion has
to land within 3x of the LR that trains best, for every one of six seeds of the range test (it
picked the bottom of the range, 1e-5, in four of them before the fix).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from dlx.errors import UsageError
from dlx.experiments.lr_range import minimum, slide, smooth, steep, suggest, valley
from dlx.records.metrics import MetricsWriter
from dlx.training import train
from tests.test_experiments import run
from tests.test_train import config

SEEDS = range(6)  # range-test seeds: 0 and the five of issue 13
GRID = np.logspace(-2, 0, 7)  # 0.01 ... 1 in thirds of a decade: the best lies inside


def curve(n: int = 200):
    """A textbook range-test curve: flat, a fall centred at lr = 1e-2, a floor, a blow-up."""
    lrs = np.logspace(-5, 1, n)
    x = np.log10(lrs)
    loss = 1.0 - 0.8 / (1 + np.exp(-3 * (x + 2))) + 0.5 * np.exp(4 * (x - 0.5))
    return lrs, loss


def test_smoothing_is_bias_corrected():
    np.testing.assert_allclose(smooth(np.full(50, 3.0), 0.98), 3.0)  # no warm-up from zero
    out = smooth(np.array([1.0, 0.0]), 0.5)
    assert out[1] == pytest.approx((0.5 * 0.5 * 1.0) / (1 - 0.5**2))  # = 1/3


def test_each_rule_on_a_known_curve():
    lrs, loss = curve()
    lowest = lrs[np.argmin(loss)]
    assert minimum(lrs, loss) == pytest.approx(lowest / 10)
    assert steep(lrs, loss) == pytest.approx(1e-2, rel=0.1)  # the logistic's inflection
    # valley: half-way along the fall from the flat start to the minimum, in log lr
    assert 10 ** ((-5 + np.log10(lowest)) / 2) / 3 < valley(lrs, loss) < lowest
    assert 1e-3 < slide(lrs, loss) < lowest
    # noise does not move the minimum rule off the floor of the curve
    noisy = loss * np.exp(np.random.default_rng(0).normal(0, 0.2, len(loss)))
    found = suggest(lrs, noisy, beta=0.9)
    assert found["rule"] == "minimum" and set(found["rules"]) == {"minimum", "steep", "valley",
                                                                  "slide"}
    assert lowest / 30 < found["suggested_lr"] < lowest / 3


def test_bad_rule_is_a_usage_error():
    with pytest.raises(UsageError, match="lr_range.rule must be one of minimum, steep"):
        config("experiment=lr_range", "lr_range.rule=steepest")
    with pytest.raises(UsageError, match="skip_start"):
        config("experiment=lr_range", "lr_range.skip_start=0.7")


def best_constant_lr() -> float:
    """The LR that trains best on the range test's own task and budget (same steps, constant
    LR), over three seeds: the vertex of a parabola through the mean log final train loss at
    the grid's best point and its neighbours (the optimum is flat; the argmin alone jumps
    between neighbours with the seeds)."""
    mean_log_loss = []
    for lr in GRID:
        losses = []
        for seed in range(3):
            rec = MetricsWriter(Path(tempfile.mkdtemp()) / "metrics.csv")
            train(config("experiment=lr_range", f"seed={seed}", "schedule=constant",
                         "~schedule.final_lr", f"optimizer.lr={lr}"), rec, "none")
            rec.close()
            losses.append(rec.final["train/loss"])
        mean_log_loss.append(np.mean(np.log(losses)))
    j = int(np.argmin(mean_log_loss))
    assert 0 < j < len(GRID) - 1, mean_log_loss  # an interior optimum, or the grid is wrong
    x = np.log10(GRID[j - 1: j + 2])
    a, b, _ = np.polyfit(x, mean_log_loss[j - 1: j + 2], 2)
    return float(10 ** (-b / (2 * a)))


@pytest.mark.science
@pytest.mark.slow
def test_suggestion_is_within_3x_of_the_best_lr_for_every_seed(tmp_path):
    best = best_constant_lr()
    assert 0.05 < best < 0.4  # measured: 0.11 (seeds 0-2)
    suggested = {}
    for seed in SEEDS:
        r = run(tmp_path, "experiment=lr_range", f"seed={seed}")
        info = r.summary["lr_range"]
        assert r.summary["status"] == "completed"  # running away is how the test ends
        assert info["stopped_at_step"] is not None
        assert info["suggested_lr"] == info["rules"][info["rule"]] < info["stopped_at_lr"]
        suggested[seed] = info["suggested_lr"]
    ratios = {seed: lr / best for seed, lr in suggested.items()}
    assert all(1 / 3 < q < 3 for q in ratios.values()), (best, ratios)
    lrs = r.series("batch", "lr")["value"].to_numpy()
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], lrs[1] / lrs[0])  # exponential growth
    assert lrs[0] == pytest.approx(1e-5)


def test_figure_is_loss_against_lr_with_every_rule(tmp_path):
    r = run(tmp_path, "experiment=lr_range", "seed=3", figures=True)
    plots = sorted(p.name for p in (r.path / "plots").iterdir())
    assert plots == ["lr_range.png"]  # no generic loss-by-step figure titled with the start lr
    from dlx.experiments.lr_range import plot_run

    seen = {}

    def capture(fig, path):
        ax = fig.axes[0]
        seen["xscale"], seen["title"] = ax.get_xscale(), ax.get_title()
        seen["labels"] = [h.get_label() for h in ax.get_lines()]
        return path

    import dlx.experiments.lr_range as module

    save, module.save = module.save, capture
    try:
        plot_run(r, tmp_path, "png")
    finally:
        module.save = save
    assert seen["xscale"] == "log" and "lr=" not in seen["title"]
    for rule in ("minimum", "steep", "valley", "slide"):
        assert any(label.startswith(rule + " (") for label in seen["labels"]), seen["labels"]
    assert any("the suggestion" in label for label in seen["labels"])
    assert any(label.startswith("smoothed (") for label in seen["labels"])
