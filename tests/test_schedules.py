"""Learning-rate schedules against torch.optim.lr_scheduler, and their defining values."""

from __future__ import annotations

import pytest

from dlx.assemble import build_schedule
from dlx.errors import UsageError

LR = 0.1


def torch_values(torch, make, n):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    sched = make(opt)
    values = []
    for _ in range(n):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return values


T = 40
CASES = [
    ("step", {"name": "step", "step_size": T, "gamma": 0.5},
     lambda t, o: t.optim.lr_scheduler.StepLR(o, step_size=T, gamma=0.5), 3 * T),
    ("exponential", {"name": "exponential", "gamma": 0.97},
     lambda t, o: t.optim.lr_scheduler.ExponentialLR(o, gamma=0.97), 3 * T),
    ("cosine", {"name": "cosine", "T_max": T, "eta_min": 0.001},
     lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T, eta_min=0.001), 3 * T),
    ("warmup_cosine", {"name": "cosine", "T_max": T, "warmup_steps": 10, "warmup_start_factor": 0.1},
     lambda t, o: t.optim.lr_scheduler.SequentialLR(o, [
         t.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=10),
         t.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T)], milestones=[10]), 3 * T),
    ("warmup_step", {"name": "step", "step_size": T, "gamma": 0.5, "warmup_steps": 5},
     lambda t, o: t.optim.lr_scheduler.SequentialLR(o, [
         t.optim.lr_scheduler.LinearLR(o, start_factor=0.01, total_iters=5),
         t.optim.lr_scheduler.StepLR(o, step_size=T, gamma=0.5)], milestones=[5]), 3 * T),
    ("onecycle", {"name": "onecycle", "pct_start": 0.25},
     lambda t, o: t.optim.lr_scheduler.OneCycleLR(o, max_lr=LR, total_steps=3 * T,
                                                  pct_start=0.25), 3 * T),
    ("log_range", {"name": "log_range", "final_lr": 10.0},
     lambda t, o: t.optim.lr_scheduler.ExponentialLR(o, gamma=(10.0 / LR) ** (1 / (3 * T - 1))),
     3 * T),
    ("constant", {"name": "constant"},
     lambda t, o: t.optim.lr_scheduler.ConstantLR(o, factor=1.0), 3 * T),
]


@pytest.mark.torch
@pytest.mark.parametrize("name,node,make,n", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(torch, name, node, make, n):
    ours = build_schedule(node, LR, total_steps=n)
    theirs = torch_values(torch, lambda o: make(torch, o), n)
    for t, expected in enumerate(theirs):
        assert ours(t) == pytest.approx(expected, rel=1e-12, abs=1e-15), t


def test_time_based_is_one_over_t():
    f = build_schedule({"name": "time_based", "decay": 0.5}, LR, 100)
    assert [f(t) for t in (0, 2, 18)] == pytest.approx([LR, LR / 2, LR / 10])


def test_cosine_defaults_to_the_whole_run_after_warmup():
    f = build_schedule({"name": "cosine", "warmup_steps": 10}, LR, total_steps=110)
    assert f(0) == pytest.approx(LR * 0.01)
    assert f(10) == pytest.approx(LR) and f(60) == pytest.approx(LR / 2) and f(110) == pytest.approx(0)


def test_onecycle_peaks_at_lr_and_ends_far_below():
    f = build_schedule({"name": "onecycle"}, LR, total_steps=100)
    values = [f(t) for t in range(100)]
    assert max(values) == pytest.approx(LR) and values.index(max(values)) == 29
    assert values[0] == pytest.approx(LR / 25) and values[-1] == pytest.approx(LR / 25 / 1e4)


@pytest.mark.parametrize("node,needle", [
    ({"name": "step", "step_size": 0}, "step_size must be >= 1"),
    ({"name": "exponential", "gamma": -1.0}, "gamma must be > 0"),
    ({"name": "cosine", "warmup_steps": -3}, "warmup_steps must be an integer >= 0"),
    ({"name": "cosine", "period": 3}, "unknown key schedule.period"),
    ({"name": "linearly"}, "unknown schedule 'linearly'"),
])
def test_bad_schedules(node, needle):
    with pytest.raises(UsageError, match=needle):
        build_schedule(node, LR, 100)
