"""char_lm: truncated BPTT over a text stream (state carried across batches), per-character
scores of a language model, and the char_lm experiment at CI size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlx.data.text import stream_order
from dlx.nn import SequenceCrossEntropy
from dlx.nn.metrics import TokenScores
from dlx.nn.models import RecurrentNet


def lstm(seed=0, vocab=7, hidden=5, layers=2):
    net = RecurrentNet(vocab, cell="lstm", hidden=hidden, layers=layers, dtype=np.float64)
    rng = np.random.default_rng(seed)
    for p in net.parameters():
        p.data[...] = rng.uniform(-0.6, 0.6, p.data.shape)
    return net


def test_stream_order_cuts_the_text_into_contiguous_streams():
    # 11 windows, 3 streams of 3 (window 9, 10 dropped): batch i = window i of every stream
    order = stream_order(11, 3)
    assert order.reshape(3, 3).tolist() == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    with pytest.raises(ValueError):
        stream_order(2, 3)


def test_a_carried_state_continues_the_sequence_and_stops_the_gradient():
    """Batch 2 from batch 1's final state = the unbroken 2k sequence from zero (float64);
    its gradient is the truncated one: the carried state is a constant (finite differences of
    the batch-2 loss with the state held fixed), not the full 2k-step BPTT gradient."""
    rng = np.random.default_rng(0)
    k, V = 6, 7
    ids = rng.integers(0, V, (3, 2 * k + 1))
    x, y = ids[:, :-1], ids[:, 1:]
    full = lstm().forward(x)  # (3, 2k, V) from zero state
    net = lstm()
    net.carry = True
    first = net.forward(x[:, :k])
    second = net.forward(x[:, k:])
    np.testing.assert_allclose(first, full[:, :k], rtol=0, atol=1e-13)
    np.testing.assert_allclose(second, full[:, k:], rtol=0, atol=1e-13)

    # the gradient of batch 2's loss, from batch 1's carried state
    net2 = lstm()
    net2.carry = True
    net2.forward(x[:, :k])
    carried = net2.state
    loss = SequenceCrossEntropy()
    loss.forward(net2.forward(x[:, k:]), y[:, k:])
    for p in net2.parameters():
        p.grad[...] = 0
    net2.backward(loss.backward())
    W = net2.rnn.cells[0].weight_hh  # a recurrent weight: its full gradient reaches batch 1
    grad = W.grad.copy()

    def batch2_loss(state_fixed: bool) -> float:
        m = lstm()
        m.rnn.cells[0].weight_hh.data[...] = W.data
        m.carry = True
        if state_fixed:
            m.state = carried
        else:  # the state recomputed from batch 1 at the perturbed weight: full BPTT
            m.forward(x[:, :k])
        return SequenceCrossEntropy().forward(m.forward(x[:, k:]), y[:, k:])

    h, base = 1e-5, W.data.copy()
    truncated, through = np.zeros_like(grad), np.zeros_like(grad)
    for idx in np.ndindex(*grad.shape):
        for fixed, out in ((True, truncated), (False, through)):
            W.data[idx] = base[idx] + h
            up = batch2_loss(fixed)
            W.data[idx] = base[idx] - h
            down = batch2_loss(fixed)
            W.data[idx] = base[idx]
            out[idx] = (up - down) / (2 * h)
    rel = np.abs(grad - truncated).max() / np.abs(truncated).max()
    assert rel < 1e-7, rel
    # the full 2k-step gradient is measurably different: the truncation is real
    assert np.abs(grad - through).max() / np.abs(through).max() > 1e-3


def test_token_scores_are_per_character_accuracy_bits_and_perplexity():
    rng = np.random.default_rng(1)
    logits, y = rng.normal(size=(4, 5, 3)), rng.integers(0, 3, (4, 5))
    s = TokenScores()
    s.add(logits[:2], y[:2])
    s.add(logits[2:], y[2:])
    acc, bpc, ppl = s.result()
    nats = SequenceCrossEntropy().forward(logits, y)
    assert acc == pytest.approx(float((logits.argmax(-1) == y).mean()), abs=1e-15)
    assert bpc == pytest.approx(nats / math.log(2), rel=1e-12)
    assert ppl == pytest.approx(math.exp(nats), rel=1e-12)


STREAM = ("model=rnn", "dataset=tinyshakespeare", "dataset.stream=true", "dataset.block_size=16",
          "dataset.n_train_tokens=4000", "dataset.val_tokens=2000", "model.hidden=8",
          "batch_size=4", "init.a=0.3")


@pytest.mark.needs("tinyshakespeare")
def test_stream_runs_carry_the_state_and_agree_with_torch_per_step(torch, tmp_path):
    """The loop reads the text as B streams in order (no shuffling: batch i is window i of each
    stream), resets the state at each epoch, and backend=torch (nn.LSTM with the detached final
    state carried) takes the same steps: batch losses and per-epoch scores equal in float64."""
    from tests.test_backends import batch_series

    common = (*STREAM, "dtype=float64", "epochs=2", "optimizer=adam", "optimizer.lr=0.01")
    ours = batch_series(tmp_path, "np", *common, metrics=("loss",))["loss"]
    theirs = batch_series(tmp_path, "torch", *common, "backend=torch", metrics=("loss",))["loss"]
    assert len(ours) == 2 * (4000 // 16 // 4)  # every epoch: n // B batches of B streams
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0)
    text = {b: (tmp_path / f"{b}.csv").read_text().splitlines() for b in ("np", "torch")}
    for b in text:  # per-character scores, not whole windows
        assert any(",val,bpc," in line for line in text[b])
    val = {b: [float(line.rsplit(",", 1)[1]) for line in text[b] if ",val,loss," in line]
           for b in text}
    np.testing.assert_allclose(val["np"], val["torch"], rtol=1e-9)


# CI size: a 32-wide LSTM, 300 steps of 16 streams x 32 characters on the first 200k training
# characters. Measured val loss (first 20k validation characters): 2.560, 2.522, 2.584 on
# seeds 0, 1, 2 (3.5 s CPU each); the unigram entropy of these characters is 3.300 nats/char
# (3.309 for the whole training text).
CI = ("experiment=char_lm", "max_steps=300", "model.hidden=32", "init.a=0.177",
      "dataset.block_size=32", "batch_size=16", "dataset.n_train_tokens=200000",
      "dataset.val_tokens=20000", "optimizer.lr=0.01")


@pytest.mark.science
@pytest.mark.needs("tinyshakespeare")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_small_lstm_learns_well_below_the_unigram_entropy(tmp_path, seed):
    from dlx.assemble import build_data
    from dlx.experiments.char_lm import unigram_entropy
    from dlx.records.metrics import MetricsWriter
    from dlx.training import train
    from tests.test_train import config

    cfg = config(*CI, f"seed={seed}")
    entropy = unigram_entropy(build_data(cfg))
    assert entropy == pytest.approx(3.30, abs=0.01)  # what a model without context reaches
    rec = MetricsWriter(tmp_path / "metrics.csv")
    train(cfg, rec, "none")
    rec.close()
    assert rec.final["val/loss"] < entropy - 0.55  # 2.75: 0.55 nats/char below it
    assert rec.final["val/bpc"] == pytest.approx(rec.final["val/loss"] / math.log(2), rel=1e-5)
    assert rec.final["val/acc"] > 0.25  # per character (a whole 32-character window: ~0)


TINY = ("experiment=char_lm", "max_steps=30", "model.hidden=16", "char_lm.transformer_steps=20",
        "char_lm.eval_every=10", "dataset.n_train_tokens=20000", "dataset.val_tokens=5000",
        "char_lm.transformer.d_model=16", "char_lm.transformer.n_heads=2",
        "char_lm.throughput.seq_lens=[32,64]", "char_lm.throughput.steps=1",
        "char_lm.samples.length=40", "progress=none")


@pytest.mark.needs("tinyshakespeare")
@pytest.mark.slow
def test_the_experiment_writes_its_tables_and_is_reproducible(cli):
    import json

    import pandas as pd

    from dlx.experiments.char_lm import THROUGHPUT_COLUMNS

    dirs = []
    for _ in range(2):
        result = cli("run", *TINY)
        assert result.returncode == 0, result.stderr
        dirs.append(cli.run_dir(result))
    a, b = dirs
    for name in ("metrics.csv", "transformer_metrics.csv", "samples.txt"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name  # no timings in them
    table = pd.read_csv(a / "throughput.csv")
    assert tuple(table.columns) == THROUGHPUT_COLUMNS
    assert sorted(table["model"].unique()) == ["lstm", "transformer"]
    assert sorted(table["seq_len"].unique()) == [32, 64]
    assert (table["tokens_per_s"] > 0).all()
    timing = pd.read_csv(a / "char_lm_timing.csv")
    assert list(timing.columns) == ["model", "step", "tokens", "train_cpu_s", "train_wall_s"]
    assert timing.groupby("model")["step"].max().to_dict() == {"lstm": 30, "transformer": 20}
    text = (a / "samples.txt").read_text()
    assert text.count("=== ") == 6 and "temperature 1.5" in text
    info = json.loads((a / "summary.json").read_text())["char_lm"]
    assert info["lstm"]["params"] == 4 * 16 * (65 + 16 + 2) + 16 * 65 + 65
    assert (a / "plots" / "char_lm.png").is_file()


@pytest.mark.needs("tinyshakespeare")
def test_too_few_windows_for_the_streams_is_a_usage_error(cli):
    from tests.conftest import assert_one_error_line

    result = cli("run", "model=rnn", "dataset=tinyshakespeare", "dataset.stream=true",
                 "dataset.val_tokens=200", "batch_size=32")
    assert result.returncode == 2
    assert_one_error_line(result, "dataset.stream=true", "batch_size 32", "validation 3")
    assert not (cli.cwd / "runs").exists()
    # batch_size=null: one stream per training window, always more than validation has --
    # refused at validation too, not as a failed run after its folder was made
    result = cli("run", "model=rnn", "dataset=tinyshakespeare", "dataset.stream=true",
                 "dataset.n_train_tokens=4000", "dataset.val_tokens=2000", "batch_size=null")
    assert_one_error_line(result, "batch_size null (the whole training split) means 62 streams",
                          "validation 31",
                          "set batch_size <=")
    assert not (cli.cwd / "runs").exists()
