"""eval.train_batches / eval.val_batches: a split estimated on K random batches at each
evaluation, as nanoGPT's estimate_loss, instead of scored whole. Training must not notice."""

from __future__ import annotations

import numpy as np
import pytest

from dlx.assemble import build_data
from dlx.records import checkpoint
from dlx.records.files import METRICS
from dlx.records.metrics import MetricsWriter
from dlx.training import loop as loop_module
from dlx.training import train
from dlx.training.backend import make_backend
from tests.conftest import assert_one_error_line
from tests.test_train import config

RUN = ("dataset=moons", "model=mlp", "epochs=4", "seed=3")  # 800 training, 200 validation rows
SAMPLED = ("eval.train_batches=8", "eval.val_batches=4")


def rows(path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()[1:]]


def trained(tmp_path, name: str, *overrides: str, hooks=None, resume=None) -> list[list[str]]:
    """One run of RUN + overrides into tmp_path/name; its metrics.csv rows."""
    run_dir = tmp_path / name
    run_dir.mkdir(exist_ok=True)
    cfg = config(*RUN, *overrides)
    meta = resume and resume[1]
    rec = MetricsWriter(run_dir / METRICS, meta and (meta["files"][METRICS], meta["final"],
                                                     meta["best"]))
    try:
        train(cfg, rec, "none", run_dir=run_dir, hooks=hooks, resume=resume, checkpoint=True)
    finally:
        rec.close()
    return rows(run_dir / METRICS)


def test_a_sampled_evaluation_trains_the_same_run_and_estimates_the_whole_split(tmp_path):
    """The batches drawn for evaluation come from a stream of their own: every batch row and the
    weights trained are the whole-split run's, byte for byte; each estimate lies within 4
    standard errors of the whole split's value at the same step, and the standard error is
    logged beside it at every evaluation."""
    whole = trained(tmp_path, "whole")
    sampled = trained(tmp_path, "sampled", *SAMPLED)
    assert [r for r in sampled if r[2] == "batch"] == [r for r in whole if r[2] == "batch"]
    value = {(r[0], r[2], r[3]): float(r[4]) for r in whole}
    estimate = {(r[0], r[2], r[3]): float(r[4]) for r in sampled}
    steps = sorted({int(r[0]) for r in whole if r[2] == "train"})
    assert steps == [0, 25, 50, 75, 100]  # step 0 and every epoch's end (800 rows / 32)
    for step in map(str, steps):
        for split in ("train", "val"):
            se = estimate[step, split, "loss_se"]
            assert 0 < se < 1, (step, split, se)
            assert abs(estimate[step, split, "loss"] - value[step, split, "loss"]) < 4 * se, step
            assert estimate[step, split, "loss"] != value[step, split, "loss"]  # not the whole
    assert estimate[str(steps[-1]), "model", "weight_norm"] == value[str(steps[-1]), "model",
                                                                     "weight_norm"]


def test_k_batches_covering_the_split_score_it_whole(tmp_path):
    """K x batch_size >= the split's size is the whole split: the default run's bytes, no
    standard error (there is no sampling)."""
    whole = trained(tmp_path, "whole")
    covering = trained(tmp_path, "covering", "eval.train_batches=25", "eval.val_batches=7")
    assert covering == whole


def test_the_standard_error_is_the_spread_of_the_batch_losses(tmp_path):
    """backend.evaluate(X, y, chunk=B, losses=L): L holds each B-row batch's mean loss, the
    mean loss is their mean; the loop logs sd(L, ddof=1) / sqrt(K)."""
    cfg = config(*RUN)
    backend = make_backend(cfg, build_data(cfg))
    X, y = backend.data.X_train[:96], backend.data.y_train[:96]
    losses: list[float] = []
    loss, acc = backend.evaluate(X, y, chunk=32, losses=losses)
    each = [backend.evaluate(X[i:i + 32], y[i:i + 32])[0] for i in range(0, 96, 32)]
    np.testing.assert_allclose(losses, each, rtol=1e-12)
    assert loss == pytest.approx(np.mean(each), rel=1e-12)
    assert len(set(losses)) == 3


def test_a_resumed_run_draws_the_same_evaluation_batches(tmp_path, monkeypatch):
    """Interrupted mid-run and resumed from its checkpoint, a run with sampled evaluation
    writes the uninterrupted run's metrics.csv byte for byte: the evaluation stream's state is
    in the checkpoint (without it the estimates after the resume differ)."""
    whole = trained(tmp_path, "whole", *SAMPLED)

    def interrupt(step, backend):
        if step == 60:  # mid-epoch, after three evaluations
            raise KeyboardInterrupt

    def resumed(name: str) -> list[list[str]]:
        with pytest.raises(KeyboardInterrupt):
            trained(tmp_path, name, *SAMPLED, hooks=[interrupt])
        cfg = config(*RUN, *SAMPLED)
        return trained(tmp_path, name, *SAMPLED, resume=checkpoint.load(tmp_path / name, cfg))

    assert resumed("resumed") == whole
    restore = loop_module.Loop.restore
    monkeypatch.setattr(loop_module.Loop, "restore",
                        lambda self, meta: restore(self, {k: v for k, v in meta.items()
                                                          if k != "rng_eval"}))
    assert resumed("forgetful") != whole


@pytest.mark.slow
def test_bad_eval_options_are_one_error_line(cli):
    for args, needle in ((("eval.train_batches=0",), "eval.train_batches must be an integer >= 1"),
                         (("+eval.every=5",), "eval takes train_batches and val_batches"),
                         (("experiment=char_lm", "eval.val_batches=4"), "scored in order")):
        assert_one_error_line(cli("run", *args), needle)
    assert not (cli.cwd / "runs").exists()


@pytest.mark.slow
def test_a_sampled_run_says_so_in_its_summary_and_draws_the_spread_on_its_loss(cli):
    """summary.json says how each split was estimated; the loss figure carries the standard
    error as a band, and no figure of the standard error on its own is drawn."""
    import json

    result = cli("run", *RUN, "eval.train_batches=4", "eval.val_batches=4")
    assert result.returncode == 0, result.stderr
    run = cli.run_dir(result)
    evaluation = json.loads((run / "summary.json").read_text())["evaluation"]
    assert evaluation["train"].startswith("4 batches of 32 of its 800 examples")
    assert evaluation["val"].startswith("4 batches of 32 of its 200 examples")
    plots = {p.name for p in (run / "plots").iterdir()}
    assert "loss.png" in plots and not any("_se" in name for name in plots), plots


def test_the_experiments_that_wrap_evaluate_pass_a_sampled_evaluation_on():
    """char_lm times every evaluation and scaling reads a sample of the training windows, each
    by wrapping backend.evaluate: a sampled evaluation's chunk and losses reach the backend."""
    from dlx.experiments.char_lm import Clock
    from dlx.experiments.scaling import SampledTrainLoss

    cfg = config(*RUN)
    X, y = np.zeros((64, 2)), np.zeros(64, int)
    for wrap in (lambda b: (Clock(b), b)[1],
                 lambda b: SampledTrainLoss(b, 8)):
        backend = make_backend(cfg, build_data(cfg))
        backend = wrap(backend)
        losses: list[float] = []
        backend.evaluate(X, y, chunk=16, losses=losses)
        assert len(losses) == 4
