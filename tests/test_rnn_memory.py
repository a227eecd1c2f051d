"""Copy memory and experiment=rnn_memory: the task's layout and scoring, the rnn model on it,
and the result the experiment exists to show, at CI size: a gated cell (GRU) recalls far above
chance at a delay where the vanilla RNN, trained the same way, stays near chance."""

from __future__ import annotations

import numpy as np
import pytest

from dlx.data import DataSpec
from dlx.data.memory import copy_memory, recall_accuracy
from dlx.errors import UsageError
from dlx.nn.gradcheck import check_model
from dlx.nn.losses import IGNORE, SequenceCrossEntropy
from dlx.nn.models import rnn
from tests.conftest import assert_one_error_line
from tests.test_experiments import run
from tests.test_train import config


def test_copy_memory_layout():
    X, Y, vocab = copy_memory(np.random.default_rng(0), n_samples=50, length=3, delay=4,
                              n_symbols=5)
    assert vocab == 7 and X.shape == Y.shape == (50, 2 * 3 + 4)
    blank, marker = 5, 6
    assert (X[:, :3] < 5).all()                             # the symbols to remember
    assert (X[:, 3:7] == blank).all() and (X[:, 7] == marker).all() and (X[:, 8:] == blank).all()
    assert (Y[:, :7] == IGNORE).all()                       # nothing scored before the marker
    assert np.array_equal(Y[:, 7:], X[:, :3])               # then s_1, s_2, s_3 in order
    # every symbol is drawn (uniform alphabet), and the rng decides them
    assert set(np.unique(X[:, :3])) == set(range(5))
    again, _, _ = copy_memory(np.random.default_rng(0), n_samples=50, length=3, delay=4,
                              n_symbols=5)
    assert np.array_equal(X, again)


def test_recall_scores_only_the_recalled_symbols():
    X, Y, vocab = copy_memory(np.random.default_rng(1), n_samples=400, length=4, delay=2,
                              n_symbols=4)
    perfect = np.eye(vocab)[np.where(Y == IGNORE, 0, Y)] * 5.0  # right where it counts
    perfect[Y == IGNORE] = 0.0                                  # and nonsense elsewhere
    assert recall_accuracy(perfect, Y) == 1.0
    guess = np.zeros((*Y.shape, vocab))
    guess[..., 0] = 1.0                                         # always symbol 0: chance
    assert abs(recall_accuracy(guess, Y) - 0.25) < 0.04


@pytest.mark.parametrize("bad", ["dataset.delay=-1", "dataset.length=0", "dataset.n_symbols=1",
                                 "model.cell=elman", "model.hidden=0"])
def test_bad_options_are_refused(bad):
    with pytest.raises(UsageError, match=bad.split("=")[0].split(".")[1]):
        config("model=rnn", "dataset=copy_memory", bad)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("embedding", [None, 3])
def test_rnn_model_gradients_with_the_recall_loss(cell, embedding):
    rng = np.random.default_rng(2)
    X, Y, vocab = copy_memory(rng, n_samples=10, length=2, delay=2, n_symbols=3)
    model = rnn(DataSpec.tokens(vocab, X.shape[1]), cell=cell, hidden=4, layers=2,
                embedding=embedding, dtype=np.float64)
    for p in model.parameters():
        p.data[...] = rng.uniform(-0.6, 0.6, p.data.shape)
    errors = check_model(model, SequenceCrossEntropy(), X[:3], Y[:3])
    assert len(errors) == 2 + 8 + (embedding is not None) and max(errors.values()) < 1e-7, errors


def test_lstm_forget_bias_starts_the_forget_block_only():
    model = rnn(DataSpec.tokens(6, 8), cell="lstm", hidden=5, layers=2, forget_bias=1.0,
                dtype=np.float64)
    for cell in model.rnn.cells:
        b = cell.bias_ih.data
        assert (b[5:10] == 1.0).all() and not b[:5].any() and not b[10:].any()
        assert not cell.bias_hh.data.any()


def test_chrono_initialisation_spreads_the_forget_gates_time_scales():
    """Tallec & Ollivier 2018: b_f ~ log U[1, T_max - 1] per unit, b_i = -b_f (T_max: the
    sequence length, here 60), so unit j keeps its memory for ~e^{b_f} steps."""
    model = rnn(DataSpec.tokens(6, 60), cell="lstm", hidden=400, forget_bias="chrono",
                dtype=np.float64, rng=np.random.default_rng(0))
    b = model.rnn.cells[0].bias_ih.data
    forget, inputs = b[400:800], b[:400]
    assert (forget >= 0).all() and (forget <= np.log(59)).all()
    np.testing.assert_array_equal(inputs, -forget)
    assert not b[800:].any() and not model.rnn.cells[0].bias_hh.data.any()
    # e^{b_f} ~ U[1, 59]: its mean is 30, its quartiles 15.5 and 44.5
    np.testing.assert_allclose(np.exp(forget).mean(), 30, rtol=0.1)
    with pytest.raises(ValueError, match="a number or chrono"):
        rnn(DataSpec.tokens(6, 8), cell="lstm", forget_bias="chronos")


def test_members_are_reproducible_and_log_recall(tmp_path):
    args = ("experiment=rnn_memory", "model.cell=gru", "dataset.delay=3", "dataset.n_samples=100",
            "max_steps=12", "rnn_memory.eval_every=5", "model.hidden=8")
    a, b = run(tmp_path, *args), run(tmp_path, *args)
    assert (a.path / "metrics.csv").read_bytes() == (b.path / "metrics.csv").read_bytes()
    recall = a.series("val", "recall")
    assert list(recall["step"]) == [0, 5, 10, 12]          # every 5 steps and at the end
    info = a.summary["rnn_memory"]
    assert info["val_recall"] == recall["value"].iloc[-1] and info["chance"] == 0.25
    assert (a.series("batch", "grad_norm")["value"] > 0).all()  # clipping is on: norms logged


def test_plot_sweep_draws_recall_against_delay(tmp_path):
    from dlx.experiments.rnn_memory import plot_sweep, table

    runs = [run(tmp_path, "experiment=rnn_memory", f"model.cell={c}", f"dataset.delay={d}",
                f"seed={s}", "dataset.n_samples=40", "max_steps=2", "model.hidden=4")
            for c in ("rnn", "gru") for d in (2, 4) for s in (0, 1)]
    t = table(runs)
    assert list(zip(t["cell"], t["delay"], t["n"])) == [("rnn", 2, 2), ("rnn", 4, 2),
                                                        ("gru", 2, 2), ("gru", 4, 2)]
    written = plot_sweep(tmp_path, runs, [], "png", tmp_path / "plots")
    assert {p.name for p in written} == {"rnn_memory.png", "rnn_memory.csv"}


@pytest.mark.both_ways("torch")
@pytest.mark.slow
def test_backend_torch_is_one_error_line(cli):
    assert_one_error_line(cli("run", "experiment=rnn_memory", "backend=torch"), "backend=numpy")


@pytest.mark.torch
@pytest.mark.parametrize("model", ["model.cell=lstm model.layers=2 model.forget_bias=1.0",
                                   "model.cell=gru model.embedding=5",
                                   "model.cell=rnn model.nonlinearity=relu"])
def test_backend_torch_agrees_step_by_step(torch, tmp_path, model):
    """The same run through torch.nn.LSTM / GRU / RNN (weights copied as they are) and autograd:
    per-step losses and clipped-gradient norms equal to 1e-10 in float64."""
    common = ("model=rnn", "model.hidden=6", *model.split(), "dataset=copy_memory",
              "dataset.n_samples=60", "dataset.delay=4", "dtype=float64", "optimizer=adam",
              "optimizer.lr=0.01", "batch_size=16", "epochs=2", "clip_grad_norm=0.5",
              "init.a=0.4")
    backends_agree(tmp_path, common, steps=8)


def backends_agree(tmp_path, common, steps: int) -> None:
    """The NumPy and torch runs of ``common`` log the same loss and pre-clip gradient norm at
    every one of ``steps`` steps (float64)."""
    from tests.test_backends import batch_series  # torch-dependent: imported when needed

    ours = batch_series(tmp_path, "n", *common, metrics=("loss", "grad_norm"))
    theirs = batch_series(tmp_path, "t", *common, "backend=torch", metrics=("loss", "grad_norm"))
    assert len(ours["loss"]) == steps
    for key in ("loss", "grad_norm"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-10)


@pytest.mark.science
def test_gru_remembers_across_a_delay_where_the_vanilla_rnn_forgets(tmp_path):
    """The experiment's signature at CI size, on every seed: one symbol to keep for T = 50 blank
    steps (52-step sequences; the experiment's settings otherwise). After the same 200 Adam
    steps the GRU recalls it every time while the vanilla RNN is at chance (1/4; 200 validation
    symbols, so chance's sd is 0.03). Measured: GRU 1.0 on seeds 0-2, RNN 0.245-0.275 (at 100
    steps the GRU is still climbing: 0.75 on seed 0). The full sweep (3 symbols, all delays,
    LSTM, 1500 steps) is in the README."""
    short = ("experiment=rnn_memory", "dataset.delay=50", "dataset.length=1", "max_steps=200",
             "rnn_memory.eval_every=200")
    recall = {(c, seed): run(tmp_path, *short, f"model.cell={c}", f"seed={seed}")
              .summary["rnn_memory"]["val_recall"] for c in ("gru", "rnn") for seed in (0, 1, 2)}
    assert all(recall["gru", s] > 0.9 and recall["rnn", s] < 0.35 for s in (0, 1, 2)), recall


@pytest.mark.science
@pytest.mark.slow
def test_the_lstm_remembers_once_its_forget_gates_start_open(tmp_path):
    """The LSTM at chance at long delays in rnn_memory is its forget-gate bias of 1, not the
    cell (#26). At CI size (one symbol after T = 50 blank steps, 500 Adam steps, the experiment's
    settings otherwise) chrono initialisation (Tallec & Ollivier 2018) recalls it on every seed,
    where forget bias 1 stays at chance. Measured: chrono 1.0 on seeds 0-2; bias 3 at this size
    0.5, 0.245, 0.24 (the full experiment: 3 symbols, 1500 steps, bias 3 recalls 0.97 at T = 50,
    rnn_memory_forget in the README)."""
    short = ("experiment=rnn_memory", "model.cell=lstm", "dataset.delay=50", "dataset.length=1",
             "max_steps=500", "rnn_memory.eval_every=500")
    recall = {(fb, seed): run(tmp_path, *short, f"model.forget_bias={fb}", f"seed={seed}")
              .summary["rnn_memory"]["val_recall"] for fb in ("chrono", "1.0") for seed in (0, 1, 2)}
    assert all(recall["chrono", s] >= 0.9 and recall["1.0", s] < 0.35 for s in (0, 1, 2)), recall
