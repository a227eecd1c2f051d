"""experiment=bptt_gradients: the per-step hidden-state gradients kept by BPTT equal torch's, the
vanishing / exploding signature at init on every seed, and clipping keeping an exploding RNN
trainable on every seed."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from dlx.errors import UsageError
from dlx.experiments.bptt_gradients import hidden_grad_norms, report_numbers, slope, spikes
from dlx.nn.recurrent import LSTM, RNN
from tests.conftest import assert_one_error_line
from tests.test_experiments import run
from tests.test_train import config


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_hidden_grads_equal_torch_step_by_step(torch, kind):
    """dL/dh_t of every layer at every step, h_0 included, against torch.nn.RNNCell / LSTMCell
    run step by step with retain_grad on each h_t (2 layers, a loss on every step's output and
    on the final state), float64, to 1e-10."""
    rng = np.random.default_rng(0)
    B, T, n_in, H, L = 3, 7, 4, 5, 2
    layer = (RNN if kind == "rnn" else LSTM)(n_in, H, L, dtype=np.float64, rng=rng)
    x, dout = rng.standard_normal((B, T, n_in)), rng.standard_normal((B, T, H))
    h0 = rng.standard_normal((L, B, H))
    dh_final = rng.standard_normal((L, B, H))
    state = h0 if kind == "rnn" else (h0, np.zeros_like(h0))
    layer.keep_hidden_grads = True
    layer.forward(x, state)
    layer.backward(dout, dh_final if kind == "rnn" else (dh_final, np.zeros_like(dh_final)))

    Cell = torch.nn.RNNCell if kind == "rnn" else torch.nn.LSTMCell
    cells = [Cell(n_in if k == 0 else H, H) for k in range(L)]
    for ours, theirs in zip(layer.cells, cells):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(theirs, name).data = torch.tensor(getattr(ours, name).data)
    hs = [[torch.tensor(h0[k], requires_grad=True)] for k in range(L)]
    cs = [torch.zeros(B, H) for _ in range(L)]
    for t in range(T):
        inp = torch.tensor(x[:, t])
        for k in range(L):
            if kind == "rnn":
                h = cells[k](inp, hs[k][-1])
            else:
                h, cs[k] = cells[k](inp, (hs[k][-1], cs[k]))
            h.retain_grad()
            hs[k].append(h)
            inp = h
    loss = (torch.stack(hs[-1][1:], 1) * torch.tensor(dout)).sum() + \
        sum((hs[k][-1] * torch.tensor(dh_final[k])).sum() for k in range(L))
    loss.backward()
    for k in range(L):
        want = torch.stack([h.grad for h in hs[k]], 1).numpy()  # (B, T+1, H)
        assert layer.hidden_grads[k].shape == (B, T + 1, H)
        np.testing.assert_allclose(layer.hidden_grads[k], want, rtol=1e-10, atol=1e-12)
    d0 = layer.dstate0 if kind == "rnn" else layer.dstate0[0]
    np.testing.assert_array_equal(np.stack([g[:, 0] for g in layer.hidden_grads]), d0)


def _norms(cell, rho, seed, steps=40):
    return hidden_grad_norms(cell, rho, hidden=32, vocab=6, steps=steps, batch=8,
                             forget_bias=1.0, rng=np.random.default_rng(seed))


@pytest.mark.science
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vanishing_and_exploding_signature_at_init(seed):
    """At the experiment's hidden size (32), T = 40, on every seed: the RNN's
    ||dL/dh_t|| <= rho^(T-t) (||W_hh|| = rho, tanh' <= 1), so at rho = 0.5 it decays at least
    log 0.5 = -0.69 per step back (measured -0.72 .. -0.73); it decays at rho = 0.9 (-0.15 ..
    -0.19) and grows at 1.5 (+0.05 .. +0.07, saturation holding it far below log 1.5 = 0.41) and
    3 (+0.28 .. +0.29); the LSTM (forget bias 1) decays more slowly than the RNN at rho = 0.9
    (-0.09 .. -0.12; by 0.03 .. 0.10 per step on seeds 0-2)."""
    s = {}
    for rho in (0.5, 0.9, 1.5, 3.0):
        g = _norms("rnn", rho, seed)
        lag = np.arange(len(g))[::-1]
        assert (g <= rho ** lag * (1 + 1e-9)).all(), rho  # the linearised bound, every step
        s[rho] = slope(g)
    assert s[0.5] < math.log(0.5) + 1e-9
    assert s[0.5] < s[0.9] < -0.05 < 0.02 < s[1.5] < s[3.0]
    assert s[3.0] > 0.2
    assert slope(_norms("lstm", 0.9, seed)) > s[0.9] + 0.01


def test_spikes_count_rises_above_the_running_minimum():
    # 1.1 > 2 x 0.5, 0.9 > 2 x 0.4, and a non-finite loss counts; 0.7 < 2 x 0.4 does not
    assert spikes([1.0, 0.5, 1.1, 0.4, 0.9, 0.7, float("nan")], 2.0) == 3
    assert spikes([3.0, 2.0, 1.0], 2.0) == 0


@pytest.mark.science
def test_clipping_keeps_the_exploding_rnn_trainable(tmp_path):
    """At one shared rate (what the experiment ran before each arm was tuned, #26): W_hh at
    radius 1.5, SGD at lr 0.1, 150 steps on copy memory, and the pre-clip norm logged every
    step in both runs. The unclipped run is chaotic:
    its final loss moves with the last bits of every sum, so with the BLAS kernel too. Measured
    over seeds 0-9 under five OpenBLAS kernels (SkylakeX, Haswell, Prescott, Sandybridge,
    Nehalem; 50 pairs): clipped 0.31-0.59 against unclipped 0.71-1.59, a ratio of 0.24-0.53 per
    seed and 0.29-0.41 for the means of seeds 0-2. Asserted well inside that: below 0.75 on
    every seed, below 0.5 for the means (without clipping both ratios are 1)."""
    loss = {"null": [], "1.0": []}
    for seed in (0, 1, 2):
        for clip in loss:
            r = run(tmp_path, "experiment=bptt_gradients", f"seed={seed}", f"clip_grad_norm={clip}",
                    "max_steps=150", "bptt_gradients.rhos=[1.5]", "bptt_gradients.steps=5")
            norms = r.series("batch", "grad_norm")
            assert list(norms["step"]) == list(range(1, 151)) and (norms["value"] > 0).all()
            loss[clip].append(r.summary["final"]["val/loss"])
    clipped, unclipped = np.array(loss["1.0"]), np.array(loss["null"])
    assert (clipped < 0.75 * unclipped).all(), loss
    assert clipped.mean() < 0.5 * unclipped.mean(), loss


@pytest.mark.science
@pytest.mark.slow
def test_at_each_arms_own_rate_the_gap_was_mostly_the_step_size(cli):
    """Clipped, every step has length lr x 1: at one shared rate clipping is confounded with the
    step size. Each arm tuned on its own (the experiment's sweep, at 150 steps, rates 0.04, 0.1,
    0.2), the unclipped RNN chooses the smaller rate (0.04, against 0.1 clipped under SkylakeX's
    kernel, 0.2 under Haswell's; 0.04 against 0.2 at the full 300 steps) and the clipped run's
    lead shrinks: the ratio of the means of seeds 0-2, clipped / unclipped final validation
    loss, is 0.82 (SkylakeX) and 0.58 (Haswell), where at the shared 0.1 it is 0.29-0.41 under
    five kernels (above). Per seed the unclipped run stays chaotic (Haswell, seed 2: 0.98).
    Asserted: the unclipped arm's rate is the smaller, and the means' ratio above 0.5."""
    result = cli("run", "-m", "experiment=bptt_gradients", "seed=0,1,2", "max_steps=150",
                 "bptt_gradients.rhos=[1.5]", "bptt_gradients.steps=5",
                 "hydra.sweeper.tune.grid={optimizer.lr:[0.04,0.1,0.2]}", "progress=none")
    assert result.returncode == 0, result.stderr
    sweep = cli.run_dir(result)
    rows = list(csv.DictReader((sweep / "tuning.csv").open()))
    rate = {r["arm"]: float(r["setting"].partition("=")[2]) for r in rows if r["chosen"] == "1"}
    assert rate["clip_grad_norm=null"] < rate["clip_grad_norm=1.0"], rate
    final = [json.loads((sweep / m / "summary.json").read_text())["final"]["val/loss"]
             for m in "012345"]  # members: unclipped seeds 0-2, then clipped seeds 0-2
    assert np.mean(final[3:]) / np.mean(final[:3]) > 0.5, (final, rate)


def test_members_are_reproducible(tmp_path):
    args = ("experiment=bptt_gradients", "max_steps=5", "model.hidden=6", "bptt_gradients.steps=8",
            "dataset.n_samples=64")
    a, b = run(tmp_path, *args), run(tmp_path, *args)
    for name in ("metrics.csv", "bptt_grads.csv"):
        assert (a.path / name).read_bytes() == (b.path / name).read_bytes()
    info = a.summary["bptt_gradients"]
    assert set(info["slopes"]) == {"rnn", "lstm"} and set(info["slopes"]["rnn"]) == \
        {"0.5", "0.9", "1.1", "1.5", "3"}
    numbers = report_numbers(a)
    assert numbers["loss spikes in training"] == info["spikes"]
    assert numbers["slope of log ||dL/dh_t|| per step back, LSTM, rho 0.9"] == \
        info["slopes"]["lstm"]["0.9"]


@pytest.mark.parametrize("bad", ["bptt_gradients.rhos=[]", "bptt_gradients.rhos=[0.5,-1]",
                                 "bptt_gradients.steps=1", "bptt_gradients.batch=0",
                                 "bptt_gradients.train_rho=0", "bptt_gradients.spike_factor=1"])
def test_bad_options_are_refused(bad):
    with pytest.raises(UsageError, match=bad.split("=")[0].split(".")[1]):
        config("experiment=bptt_gradients", bad)


@pytest.mark.both_ways("torch")
@pytest.mark.slow
def test_sweep_draws_its_figures(cli):
    """The command end to end at a tiny size: 2 clipping settings x 2 seeds, then its figures."""
    result = cli("run", "-m", "experiment=bptt_gradients", "seed=0,1", "max_steps=4",
                 "model.hidden=4", "bptt_gradients.steps=6", "dataset.n_samples=64",
                 "hydra.sweeper.tune.grid={optimizer.lr:[0.1]}", "progress=none")
    assert result.returncode == 0, result.stderr
    sweep = cli.run_dir(result)
    plotted = cli("plot", str(sweep))
    assert plotted.returncode == 0, plotted.stderr
    names = {p.name for p in (sweep / "plots").iterdir()}
    assert {"bptt_gradients_probe.png", "bptt_gradients_training.png",
            "bptt_gradients.csv"} <= names
    assert (sweep / "0" / "plots" / "bptt_gradients.png").is_file()  # each member's own
    table = (sweep / "plots" / "bptt_gradients.csv").read_text()
    assert "no clipping, lr 0.1" in table and "clip_grad_norm = 1, lr 0.1" in table
    assert_one_error_line(cli("run", "experiment=bptt_gradients", "backend=torch"),
                          "backend=numpy")
