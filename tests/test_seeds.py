"""Seeds by default (issue #13, items 5 and 6): every comparison experiment sweeps >= 3 seeds per
setting, its figures and tables draw the mean ± sd over them (checked here against a pandas
groupby of the members' own records, and against what the figure actually plots), and each
effect it shows holds on every seed, not on one.

Each test runs a small version of the sweep (a few settings, 3 seeds, short budgets) in-process
through tests.test_experiments.run."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from dlx.errors import UsageError
from dlx.plots.sweep import member_labels
from tests.test_experiments import run

SEEDS = (0, 1, 2)
EXPERIMENTS = ("optimizers", "learning_rate", "lr_schedules", "gd_variants", "init", "dropout",
               "depth_width")
CONF = Path(__file__).resolve().parents[1] / "conf" / "experiment"


def sweep_params(name: str) -> dict[str, list[str]]:
    """The values of each key of the experiment's hydra.sweeper.params."""
    params = OmegaConf.load(CONF / f"{name}.yaml").hydra.sweeper.params
    return {k: [v.strip() for v in str(values).split(",")] for k, values in params.items()}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_setting_of_the_sweep_runs_three_seeds(name):
    params = sweep_params(name)
    seeds = params.pop("seed")
    assert len(set(seeds)) >= 3 and len(seeds) == len(set(seeds))
    assert params, "the seed is not the only thing the sweep varies"  # the settings compared


def mini_sweep(tmp_path, name: str, settings: list[tuple[str, ...]], *common: str):
    """Every setting with every seed, as the sweep orders its members."""
    return [run(tmp_path, f"experiment={name}", *setting, f"seed={seed}", *common)
            for setting, seed in itertools.product(settings, SEEDS)]


def reference(runs, by, value) -> pd.DataFrame:
    """mean, std (n - 1) and count of ``value(run)`` per ``by(run)``: pandas on the records."""
    frame = pd.DataFrame({"setting": [by(r) for r in runs],
                          "value": [value(r) for r in runs]}).astype({"value": float})
    return frame.groupby("setting", sort=False)["value"].agg(["mean", "std", "count"])


def assert_aggregates(stats: pd.DataFrame, key: str, name: str, ref: pd.DataFrame) -> None:
    """``stats`` (one row per setting in column ``key``) holds ``ref``'s numbers for ``name``."""
    got = stats.set_index(key).loc[list(ref.index)]
    np.testing.assert_allclose(got[f"{name}_mean"], ref["mean"], rtol=1e-12)
    np.testing.assert_allclose(got[f"{name}_sd"], ref["std"], rtol=1e-12)
    np.testing.assert_array_equal(got[f"{name}_n"], ref["count"])


def draw(module, runs, tmp_path, monkeypatch):
    """Run the experiment's plot_sweep; return the figures it saved (and check the files)."""
    figures = []
    save = module.save

    def keep(fig, path):
        figures.append(fig)
        return save(fig, path)

    monkeypatch.setattr(module, "save", keep)
    written = module.plot_sweep(tmp_path, runs, member_labels(runs), "png", tmp_path / "plots")
    assert written and all(p.is_file() for p in written)
    return figures


def plotted(fig) -> list[np.ndarray]:
    """The y data of every line drawn in a figure (error-bar lines included)."""
    return [np.asarray(line.get_ydata(), dtype=float) for ax in fig.axes for line in ax.lines]


def drawn(fig, values) -> bool:
    values = np.asarray(values, dtype=float)
    return any(len(y) == len(values) and np.allclose(y, values, rtol=1e-9) for y in plotted(fig))


def final(key):
    return lambda r: r.summary["final"].get(key)


@pytest.mark.science
def test_optimizers_table_and_figures_aggregate_seeds_sgd_slowest_on_every_seed(
        tmp_path, monkeypatch):
    from dlx.experiments import optimizers

    names = ("sgd", "momentum", "adam")
    runs = mini_sweep(tmp_path, "optimizers", [(f"optimizer={n}",) for n in names])
    stats = optimizers.table(runs)
    assert list(stats["optimizer"]) == list(names) and (stats["n"] == 3).all()
    by = lambda r: r.config["optimizer"]["name"]  # noqa: E731
    steps = lambda r: optimizers.steps_to(r, 0.15)  # noqa: E731
    assert_aggregates(stats, "optimizer", "steps_to_target", reference(runs, by, steps))
    assert_aggregates(stats, "optimizer", "final_val_loss", reference(runs, by, final("val/loss")))
    figures = draw(optimizers, runs, tmp_path, monkeypatch)
    table = pd.read_csv(tmp_path / "plots" / "optimizers_table.csv")
    np.testing.assert_allclose(table["steps_to_target_mean"], stats["steps_to_target_mean"])
    bars = [p.get_width() for p in figures[1].axes[0].patches]
    np.testing.assert_allclose(bars, stats["steps_to_target_mean"])
    # the robust claim: plain SGD is the slowest — its fastest seed behind every other's slowest
    per_seed = {n: [steps(r) for r in runs if by(r) == n] for n in names}
    assert None not in per_seed["momentum"] + per_seed["adam"]
    slowest_sgd = min(s if s is not None else np.inf for s in per_seed["sgd"])
    assert max(per_seed["momentum"]) < slowest_sgd and max(per_seed["adam"]) < slowest_sgd


@pytest.mark.science
def test_learning_rate_too_low_good_too_high_on_every_seed(tmp_path, monkeypatch):
    from dlx.experiments import learning_rate

    lrs = (0.002, 0.2, 20.0)
    runs = mini_sweep(tmp_path, "learning_rate", [(f"optimizer.lr={lr}",) for lr in lrs],
                      "epochs=10")
    stats = learning_rate.final_losses(runs)
    assert list(stats["lr"]) == list(lrs) and list(stats["diverged"]) == [0, 0, 3]
    completed = [r for r in runs if r.summary["status"] == "completed"]
    assert_aggregates(stats, "lr", "final_train_loss", reference(
        completed, lambda r: r.config["optimizer"]["lr"], final("train/loss")))
    assert stats["final_train_loss_n"].tolist() == [3, 3, 0]
    (fig,) = draw(learning_rate, runs, tmp_path, monkeypatch)
    assert "3 seeds" in fig.axes[0].get_title()
    low, good, high = ([r for r in runs if r.config["optimizer"]["lr"] == lr] for lr in lrs)
    assert all(r.summary["diverged_at_step"] < 50 for r in high)
    # every seed's good rate ends below every seed's low one (the factor 2 of seed 0 is not
    # robust: 0.195 against 0.328 on seed 2 at 10 epochs)
    assert max(final("train/loss")(r) for r in good) < min(final("train/loss")(r) for r in low)


def test_lr_schedules_draw_one_lr_curve_and_the_mean_loss(tmp_path, monkeypatch):
    from dlx.experiments import lr_schedules

    runs = mini_sweep(tmp_path, "lr_schedules", [("schedule=constant",), ("schedule=cosine",)],
                      "epochs=10")
    stats = lr_schedules.final_losses(runs)
    assert_aggregates(stats, "schedule", "final_train_loss",
                      reference(runs, lr_schedules.schedule_of, final("train/loss")))
    for name in ("constant", "cosine"):  # the schedule does not depend on the seed
        lrs = [r.series("batch", "lr")["value"].to_numpy() for r in runs
               if lr_schedules.schedule_of(r) == name]
        assert all(np.array_equal(lrs[0], x) for x in lrs[1:])
    (fig,) = draw(lr_schedules, runs, tmp_path, monkeypatch)
    from dlx.plots.sweep import curve_stats

    cosine = [r for r in runs if lr_schedules.schedule_of(r) == "cosine"]
    mean = curve_stats([r.series("train", "loss") for r in cosine])["mean"]
    assert drawn(fig, mean)
    assert np.allclose(mean, pd.concat([r.series("train", "loss").set_index("step")["value"]
                                        for r in cosine], axis=1).mean(axis=1))


@pytest.mark.science
def test_gd_variants_order_holds_on_every_seed(tmp_path, monkeypatch):
    from dlx.experiments import gd_variants

    runs = mini_sweep(tmp_path, "gd_variants", [("batch_size=null",), ("batch_size=1",),
                                                ("batch_size=32",)], "epochs=5")
    stats = gd_variants.final_losses(runs)
    assert_aggregates(stats, "variant", "final_train_loss",
                      reference(runs, gd_variants.variant, final("train/loss")))
    (fig,) = draw(gd_variants, runs, tmp_path, monkeypatch)
    from dlx.plots.sweep import curve_stats

    for variant in stats["variant"]:
        members = [r for r in runs if gd_variants.variant(r) == variant]
        assert drawn(fig, curve_stats([r.series("train", "loss") for r in members], "epoch")
                     ["mean"])
    loss = {b: [final("train/loss")(r) for r in runs if r.config["batch_size"] == b]
            for b in (None, 1, 32)}
    # equal epochs: more (noisier) updates go further, on every seed
    assert max(loss[1]) < min(loss[32]) and max(loss[32]) < min(loss[None])
    noise = stats.set_index("variant")["step_noise_mean"].to_numpy()  # full, sgd, mini
    assert noise[1] > 3 * noise[2] > 3 * noise[0]


@pytest.mark.needs("mnist")
@pytest.mark.slow  # 20-40 s: MNIST / transformer members
def test_init_statistics_at_init_are_means_over_seeds(tmp_path, monkeypatch):
    from dlx.experiments import init
    from dlx.experiments.layers import read

    runs = mini_sweep(tmp_path, "init", [("init=normal", "model.activation=tanh"),
                                         ("init=he_normal", "model.activation=relu")],
                      "epochs=1", "dataset.subset=500")
    table = init.at_init(runs, "act_std")
    records = pd.concat([read(r).assign(init=init.init_label(r.config)) for r in runs])
    ref = records[(records["step"] == 0) & (records["stat"] == "act_std")].groupby(
        ["init", "layer"])["value"].agg(["mean", "std", "count"])
    got = table.set_index(["init", "layer"]).loc[ref.index]
    np.testing.assert_allclose(got["mean"], ref["mean"], rtol=1e-12)
    np.testing.assert_allclose(got["sd"], ref["std"], rtol=1e-12)
    assert (got["n"] == 3).all()
    figures = draw(init, runs, tmp_path, monkeypatch)
    he = table[table["init"] == "He (normal)"]["mean"]
    assert drawn(figures[0], he)
    # the effects, seed by seed: N(0, 0.01^2) vanishes with depth, He keeps ReLU's scale
    for r in runs:
        layers = read(r)
        std = layers[(layers["step"] == 0) & (layers["stat"] == "act_std")].sort_values(
            "layer")["value"].to_numpy()
        if r.config["init"]["name"] == "normal":
            assert std[-1] < 1e-6 * std[0]
        else:
            assert 0.5 < std[-1] / std[0] < 2


@pytest.mark.science
@pytest.mark.needs("mnist")
@pytest.mark.slow  # 20-40 s: MNIST / transformer members
def test_dropout_gap_and_gain_are_means_over_seeds(tmp_path, monkeypatch):
    from dlx.experiments import dropout

    runs = mini_sweep(tmp_path, "dropout", [("model.keep_prob=1.0",), ("model.keep_prob=0.5",)],
                      "epochs=10")
    stats = dropout.gaps(runs)
    assert list(stats["keep_prob"]) == [1.0, 0.5] and (stats["n"] == 3).all()
    keep = lambda r: r.config["model"]["keep_prob"]  # noqa: E731
    key = list(zip(stats["kind"], stats["keep_prob"]))
    stats.index = key
    ref = reference(runs, lambda r: (dropout.kind(r), keep(r)), lambda r: dropout.gap(r)[1])
    np.testing.assert_allclose(stats.loc[list(ref.index), "loss_gap_mean"], ref["mean"])
    np.testing.assert_allclose(stats.loc[list(ref.index), "loss_gap_sd"], ref["std"])
    # the gain is paired by seed: val acc at 0.5 minus val acc at 1.0 of the same seed
    acc = {(keep(r), r.config["seed"]): r.summary["final"]["val/acc"] for r in runs}
    gains = [acc[0.5, s] - acc[1.0, s] for s in SEEDS]
    half = stats.iloc[1]
    assert half["gain_mean"] == pytest.approx(np.mean(gains), abs=1e-12)
    assert half["gain_sd"] == pytest.approx(np.std(gains, ddof=1), abs=1e-12)
    assert stats.iloc[0]["gain_mean"] == 0 and stats.iloc[0]["gain_sd"] == 0
    (fig,) = draw(dropout, runs, tmp_path, monkeypatch)
    assert drawn(fig, stats["loss_gap_mean"])
    # the robust effect: dropout narrows the loss gap on every seed
    gap = {(keep(r), r.config["seed"]): dropout.gap(r)[1] for r in runs}
    assert all(gap[0.5, s] < gap[1.0, s] for s in SEEDS)


@pytest.mark.slow  # 20-40 s: MNIST / transformer members
def test_depth_width_aggregates_seeds_and_draws_no_compute_axis(tmp_path, monkeypatch):
    """Item 6: at a fixed parameter budget and equal tokens, compute differs by a few percent
    between depths, so the figure has no compute axis (it showed none)."""
    import dlx.app  # noqa: F401 - registers the dlx_width resolver the experiment's config uses
    from dlx.experiments import depth_width
    from dlx.records.compare import table

    runs = mini_sweep(tmp_path, "depth_width", [("model.n_layers=1",), ("model.n_layers=4",)],
                      "max_steps=12", "schedule.warmup_steps=4")
    stats = depth_width.rows(runs)
    assert list(stats["depth"]) == [1, 4] and (stats["n"] == 3).all()
    assert_aggregates(stats, "depth", "final_val_loss",
                      reference(runs, depth_width.depth, final("val/loss")))
    flops = stats["train_flops_mean"]
    assert flops.max() < 1.1 * flops.min()  # no compute variation to plot
    (fig,) = draw(depth_width, runs, tmp_path, monkeypatch)
    labels = " ".join(ax.get_xlabel() + ax.get_ylabel() for ax in fig.axes).lower()
    assert "compute" not in labels and "flop" not in labels
    assert drawn(fig, stats["final_val_loss_mean"])
    csv = pd.read_csv(tmp_path / "plots" / "depth_width.csv")
    np.testing.assert_allclose(csv["final_val_loss_sd"], stats["final_val_loss_sd"])
    # `dlx compare --group-by setting`: one row per depth, mean ± sd over the seeds
    head, rows = table([r.path for r in runs], group_by="setting")
    assert head[:3] == ["model.n_layers", "model.d_model", "n"]
    column = head.index("final.val/loss")
    for row, (_, s) in zip(rows, stats.iterrows()):
        assert row[2] == "3"
        assert row[column] == f"{s['final_val_loss_mean']:.4g} ± {s['final_val_loss_sd']:.2g}"
    assert table([r.path for r in runs], group_by="model.n_layers, model.d_model") == (head, rows)
    with pytest.raises(UsageError, match="nothing but the seed differs"):
        table([r.path for r in runs if depth_width.depth(r) == 1], group_by="setting")
