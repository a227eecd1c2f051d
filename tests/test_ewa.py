"""Momentum as an exponentially weighted average (optimizer.ema) is torch's momentum with the
learning rate scaled by (1 - beta); Adam without bias correction is torch's Adam with per-step
lr and eps (derived in dlx.optim.Adam's docstring); experiment=ewa shows the EWA's bias and
the size of Adam's early steps with and without the correction."""

from __future__ import annotations

import numpy as np
import pytest

from dlx.nn.core import Parameter
from dlx.optim import SGD, Adam

A = np.diag([1.0, 0.3, 3.0]) + 0.1  # a quadratic 1/2 p'Ap - c'p: a fixed, honest gradient
C = np.array([1.0, -2.0, 0.5])


def _trajectory(opt, p, steps=40):
    out = []
    for _ in range(steps):
        p.grad = A @ p.data - C
        opt.step()
        out.append(p.data.copy())
    return np.array(out)


def test_ema_momentum_is_torch_momentum_with_lr_times_one_minus_beta(torch):
    beta, lr = 0.9, 0.3
    ours = Parameter(np.array([2.0, 1.0, -1.0]))
    ema = _trajectory(SGD([ours], lr=lr, momentum=beta, ema=True), ours)
    pt = torch.tensor([2.0, 1.0, -1.0], requires_grad=True)
    opt = torch.optim.SGD([pt], lr=lr * (1 - beta), momentum=beta)
    theirs = []
    for _ in range(40):
        pt.grad = torch.tensor(A) @ pt.detach() - torch.tensor(C)
        opt.step()
        theirs.append(pt.detach().numpy().copy())
    np.testing.assert_allclose(ema, np.array(theirs), rtol=1e-12, atol=1e-13)
    # ...and not torch's form at the same lr (the first step alone differs by 1 - beta)
    plain = Parameter(np.array([2.0, 1.0, -1.0]))
    assert np.abs(_trajectory(SGD([plain], lr=lr, momentum=beta), plain) - ema).max() > 0.1


def test_ema_first_step_is_one_minus_beta_of_the_gradient():
    p = Parameter(np.array([2.0, 1.0, -1.0]))
    g = A @ p.data - C
    _trajectory(SGD([p], lr=1.0, momentum=0.8, ema=True), p, steps=1)
    np.testing.assert_allclose(p.data, np.array([2.0, 1.0, -1.0]) - 0.2 * g, rtol=1e-15)
    with pytest.raises(ValueError, match="ema"):
        SGD([p], lr=0.1, momentum=0.9, nesterov=True, ema=True)


def test_adam_without_bias_correction_is_torch_adam_with_per_step_lr_and_eps(torch):
    """p <- p - lr m/(sqrt(v) + eps) = torch's p - lr_t/(1-b1^t) m/(sqrt(v)/sqrt(1-b2^t) + eps_t)
    with lr_t = lr (1 - b1^t)/sqrt(1 - b2^t), eps_t = eps/sqrt(1 - b2^t)."""
    lr, (b1, b2), eps = 0.05, (0.9, 0.999), 1e-3  # an eps large enough to matter
    ours = Parameter(np.array([2.0, 1.0, -1.0]))
    got = _trajectory(Adam([ours], lr=lr, betas=(b1, b2), eps=eps, bias_correction=False), ours)
    pt = torch.tensor([2.0, 1.0, -1.0], requires_grad=True)
    opt = torch.optim.Adam([pt], lr=lr, betas=(b1, b2), eps=eps)
    theirs = []
    for t in range(1, 41):
        c2 = np.sqrt(1 - b2**t)
        opt.param_groups[0]["lr"] = lr * (1 - b1**t) / c2
        opt.param_groups[0]["eps"] = eps / c2
        pt.grad = torch.tensor(A) @ pt.detach() - torch.tensor(C)
        opt.step()
        theirs.append(pt.detach().numpy().copy())
    np.testing.assert_allclose(got, np.array(theirs), rtol=1e-12, atol=1e-13)
    corrected = Parameter(np.array([2.0, 1.0, -1.0]))
    assert np.abs(_trajectory(Adam([corrected], lr=lr, betas=(b1, b2), eps=eps), corrected)
                  - got).max() > 0.05


def test_adam_first_step_without_correction_is_3_2_lr():
    p = Parameter(np.array([2.0, 1.0, -1.0]))
    g = A @ p.data - C
    _trajectory(Adam([p], lr=0.01, bias_correction=False), p, steps=1)
    np.testing.assert_allclose(np.array([2.0, 1.0, -1.0]) - p.data,
                               0.01 * 0.1 / np.sqrt(0.001) * np.sign(g), rtol=1e-6)


def test_ewa_of_a_constant_is_biased_and_the_correction_removes_it():
    from dlx.experiments.ewa import ewa

    v, corrected = ewa(np.full(30, 5.0), 0.9)
    np.testing.assert_allclose(v, 5.0 * (1 - 0.9 ** np.arange(1, 31)), rtol=1e-14)
    np.testing.assert_allclose(corrected, 5.0, rtol=1e-14)


def test_experiment_early_adam_steps_with_and_without_correction(tmp_path):
    """On each of 3 seeds (CI size: 60 steps): bias-corrected Adam's first step is ~lr per
    coordinate (less where a gradient is ~0), the uncorrected one ~(1 - b1)/sqrt(1 - b2) = 3.2
    lr, and the uncorrected steps stay > 2.5x the corrected ones through the first 50."""
    from dlx.experiments.ewa import plot_run, report_numbers
    from tests.test_experiments import run

    r = run(tmp_path, "experiment=ewa", "ewa.steps=60")
    info = r.summary["ewa"]
    for on, off, peak_on, peak_off in zip(info["corrected"]["step1"], info["uncorrected"]["step1"],
                                          info["corrected"]["max_first_50"],
                                          info["uncorrected"]["max_first_50"]):
        assert 0.8 < on <= 1.0 + 1e-9 and 2.5 < off < 3.17
        assert off > 3 * on and peak_off > 2.5 * peak_on
    assert len(report_numbers(r)) == 4
    names = {p.name for p in plot_run(r, tmp_path / "plots", "png")}
    assert names == {"ewa.png", "bias_correction.png"}


@pytest.mark.both_ways("torch")
@pytest.mark.slow
def test_cli_refuses_ema_with_nesterov_ewa_without_adam_and_torch_without_correction(cli):
    from tests.conftest import assert_one_error_line

    assert_one_error_line(cli("run", "optimizer=momentum", "optimizer.ema=true",
                              "optimizer.nesterov=true"), "ema needs")
    assert_one_error_line(cli("run", "experiment=ewa", "optimizer=sgd"), "needs optimizer=adam")
    assert_one_error_line(cli("run", "optimizer=adam", "optimizer.bias_correction=false",
                              "backend=torch"), "torch.optim has no")
