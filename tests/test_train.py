"""The training loop in-process: what the default run must show, divergence, reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from dlx.assemble import build_dataset
from dlx.config import validate
from dlx.errors import Unavailable, UsageError
from dlx.records.metrics import MetricsWriter
from dlx.training import train


def config(*overrides: str, files: bool = True) -> dict:
    """The composed, validated config; ``files=False`` accepts that its data files are missing
    (everything else is still validated: the environment is checked last)."""
    with initialize_config_module(config_module="dlx.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["progress=none", *overrides])
    try:
        validate(cfg)
    except Unavailable:
        if files:
            raise
    return OmegaConf.to_container(cfg, resolve=True)


def run(tmp_path, *overrides: str):
    rec = MetricsWriter(tmp_path / "metrics.csv")
    result = train(config(*overrides), rec, "none")
    rec.close()
    return rec, result


@pytest.mark.science
def test_default_run_learns_blobs(tmp_path):
    rec, result = run(tmp_path)
    assert result.diverged_at_step is None
    assert result.steps == 20 * 25  # 800 training points, batch 32
    assert rec.final["val/acc"] >= 0.95
    # the first evaluation is at zero weights: chance level, ln 2
    first = (tmp_path / "metrics.csv").read_text().splitlines()[1]
    assert first.startswith("0,0,train,loss,") and float(first.split(",")[-1]) == pytest.approx(math.log(2))


@pytest.mark.science
def test_l2_penalty_is_logged_and_shrinks_weights(tmp_path):
    rec_none, _ = run(tmp_path)
    rec_l2, _ = run(tmp_path, "regularizer=l2", "regularizer.lam=0.1")
    assert rec_l2.final["batch/penalty"] > 0
    assert "batch/penalty" not in rec_none.final
    assert rec_l2.final["model/weight_norm"] < 0.8 * rec_none.final["model/weight_norm"]


@pytest.mark.science
def test_huge_learning_rate_diverges(tmp_path):
    rec, result = run(tmp_path, "optimizer.lr=1e6")
    assert result.diverged_at_step is not None and result.diverged_at_step <= 5
    assert "initial loss" in result.diverged_reason or "not finite" in result.diverged_reason


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    paths = []
    for i, seed in enumerate([3, 3, 4]):
        d = tmp_path / str(i)
        d.mkdir()
        run(d, f"seed={seed}", "epochs=3", "optimizer=adam")
        paths.append((d / "metrics.csv").read_bytes())
    assert paths[0] == paths[1]
    assert paths[0] != paths[2]


@pytest.mark.parametrize("overrides", [("batch_size=null",), ("batch_size=1", "epochs=1")])
def test_batch_and_stochastic_gradient_descent(tmp_path, overrides):
    rec, result = run(tmp_path, *overrides)
    n_train = 800
    expected = 20 if overrides[0] == "batch_size=null" else n_train
    assert result.steps == expected
    assert rec.final["val/acc"] >= 0.9


def test_multiclass_blobs_use_softmax(tmp_path):
    rec, _ = run(tmp_path, "dataset.n_classes=3", "optimizer=adam", "optimizer.lr=0.05")
    assert rec.final["val/acc"] >= 0.9


def test_datasets_are_seeded_and_split():
    for name in ("blobs", "moons", "xor"):
        node = {"name": name, "n_samples": 200, "val_fraction": 0.25}
        a = build_dataset(node, np.random.default_rng(5))
        b = build_dataset(node, np.random.default_rng(5))
        assert a.X_train.shape == (150, 2) and a.X_val.shape == (50, 2)
        np.testing.assert_array_equal(a.X_train, b.X_train)
        assert set(np.unique(a.y_train)) == {0, 1}


def test_xor_defeats_a_linear_model(tmp_path):
    """No line separates XOR: logistic regression stays near chance."""
    rec, _ = run(tmp_path, "dataset=xor")
    assert rec.final["val/acc"] < 0.7


@pytest.mark.parametrize("override,message", [
    ("epochs=0", "epochs must be an integer >= 1"),
    ("batch_size=0", "batch_size must be an integer >= 1 or null"),
    ("dtype=float16", "dtype must be one of float32, float64"),
    ("dataset.n_samples=many", "dataset.n_samples: expected an integer"),
])
def test_validation(override, message):
    with pytest.raises(UsageError) as e:
        config(override)
    assert message in str(e.value)


def test_an_init_option_is_checked_by_its_value():
    assert config("init=normal", "init.std=0.5")["init"] == {"name": "normal", "std": 0.5}
    with pytest.raises(UsageError, match="invalid init 'normal': std must be >= 0"):
        config("init=normal", "init.std=-1")


def test_early_stopping_restores_the_best_weights(tmp_path):
    rec = MetricsWriter(tmp_path / "metrics.csv")
    result = train(config("model=mlp", "optimizer=adam", "optimizer.lr=0.05", "epochs=300",
                          "dataset=moons", "dataset.n_samples=200", "model.hidden=[64,64]",
                          "early_stopping.patience=3"), rec, "none")
    rec.close()
    es = result.early_stopping
    assert es["stopped_at_epoch"] is not None and es["stopped_at_epoch"] < 300
    assert es["stopped_at_epoch"] - es["best_epoch"] == 3
    val = [float(line.split(",")[4]) for line in (tmp_path / "metrics.csv").read_text().splitlines()
           if ",val,loss," in line]
    assert es["best_value"] == min(val[1:])
    assert result.steps == es["stopped_at_epoch"] * 5  # 160 points in batches of 32


def test_early_stopping_needs_a_loss_or_accuracy():
    with pytest.raises(UsageError, match="early_stopping.monitor"):
        config("early_stopping.monitor=loss")
