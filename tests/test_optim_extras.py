"""Issue 13, item 8: what a torch.optim user reaches for on day 7 — RAdam, Adadelta, parameter
groups, CosineAnnealingWarmRestarts, CyclicLR, LinearLR/SequentialLR and ReduceLROnPlateau —
each against torch in float64, in a run, across backends and across a checkpoint."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dlx import registry
from dlx.assemble import build_optimizer, build_schedule
from dlx.errors import UsageError
from dlx.nn import Parameter
from dlx.optim import OPTIMIZERS, Adadelta, RAdam
from dlx.optim.groups import GroupedOptimizer, partition
from dlx.optim.schedules import ReduceLROnPlateau
from dlx.records import checkpoint
from dlx.records.files import METRICS
from dlx.records.metrics import MetricsWriter
from dlx.training import train
from tests.conftest import assert_one_error_line
from tests.test_schedules import LR, torch_values
from tests.test_train import config

STEPS = 60
SHAPES = [(4, 3), (3,), (3, 2), (2,)]
NAMES = ["fc1.W", "fc1.b", "fc2.W", "fc2.b"]
DECAY = [True, False, True, False]


def problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal(s) for s in SHAPES]
    noise = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    lrs = 0.02 * (1.0 + 0.5 * np.sin(np.arange(STEPS) / 5.0))  # a schedule pushed each step
    return start, noise, lrs


def run_ours(opt_params, opt, noise, lrs):
    """60 steps with gradients that depend on the weights (so state errors compound)."""
    for g, lr in zip(noise, lrs):
        opt.lr = lr
        for p, n in zip(opt_params, g):
            p.grad[...] = n + 0.3 * p.data
        opt.step()


def run_torch(torch, tparams, topt, noise, lrs, mult=None):
    mult = mult or [1.0] * len(topt.param_groups)
    for g, lr in zip(noise, lrs):
        for group, m in zip(topt.param_groups, mult):
            group["lr"] = lr * m
        for tp, n in zip(tparams, g):
            tp.grad = torch.tensor(n) + 0.3 * tp.detach()
        topt.step()


def max_error(params, tparams) -> float:
    return max(float(np.max(np.abs(p.data - tp.detach().numpy()))) for p, tp in zip(params, tparams))


# --- RAdam and Adadelta -----------------------------------------------------------------------

OPT_CASES = [
    (RAdam, "RAdam", {}),
    (RAdam, "RAdam", dict(betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    (RAdam, "RAdam", dict(betas=(0.5, 0.9), weight_decay=0.1, decoupled_weight_decay=True)),
    (RAdam, "RAdam", dict(betas=(0.9, 0.9999))),  # rho_t <= 5 for longer: the SGD branch
    (Adadelta, "Adadelta", {}),
    (Adadelta, "Adadelta", dict(rho=0.5, eps=1e-4, weight_decay=0.1)),
    (Adadelta, "Adadelta", dict(rho=0.99, eps=1e-8)),
]
OPT_IDS = [f"{c[1]}-{i}" for i, c in enumerate(OPT_CASES)]


@pytest.mark.torch
@pytest.mark.parametrize("ours,theirs,kwargs", OPT_CASES, ids=OPT_IDS)
def test_new_optimizers_match_torch_over_60_steps(torch, ours, theirs, kwargs):
    start, noise, lrs = problem()
    if theirs == "Adadelta":
        lrs = lrs * 50  # Adadelta's lr is a factor around 1
    params = [Parameter(x.copy()) for x in start]
    tparams = [torch.tensor(x.copy(), requires_grad=True) for x in start]
    run_ours(params, ours(params, lr=lrs[0], **kwargs), noise, lrs)
    run_torch(torch, tparams, getattr(torch.optim, theirs)(tparams, lr=lrs[0], **kwargs), noise, lrs)
    moved = max(float(np.max(np.abs(p.data - x))) for p, x in zip(params, start))
    assert moved > 1e-2  # they did move
    assert max_error(params, tparams) <= 1e-12


def test_radam_is_sgd_with_momentum_until_the_variance_is_tractable():
    """rho_t = rho_inf - 2 t b2^t / (1 - b2^t) is 1, 2, 3, 4, 5 - O(1-b2) for t <= 5 (b2 near 1):
    no adaptive step, p moves by lr * m / (1 - b1^t) — for a constant g, exactly lr * g."""
    p = Parameter(np.zeros(2))
    opt = RAdam([p], lr=0.1)
    for t in range(1, 6):
        p.grad[...] = [1.0, -3.0]
        opt.step()
        np.testing.assert_allclose(p.data, [-0.1 * t, 0.3 * t], rtol=1e-12)
    p.grad[...] = [1.0, -3.0]
    opt.step()  # rho_6 > 5: rectified Adam, a step of lr * r_6 * sign(g) (|g| / sqrt(v) = 1)
    b2, t = 0.999, 6
    rho_inf = 2 / (1 - b2) - 1
    rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
    r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    np.testing.assert_allclose(p.data - [-0.5, 1.5], [-0.1 * r, 0.1 * r], rtol=1e-6)


def test_adadelta_first_step_is_set_by_eps():
    """u = 0 at first: the step is lr sqrt(eps) / sqrt((1 - rho) g^2 + eps) g ~ sqrt(eps / (1 - rho))."""
    p = Parameter(np.zeros(1))
    p.grad[...] = 2.0
    Adadelta([p], lr=1.0, rho=0.9, eps=1e-6).step()
    assert p.data[0] == pytest.approx(-math.sqrt(1e-6) / math.sqrt(0.1 * 4 + 1e-6) * 2, rel=1e-12)


@pytest.mark.parametrize("cls,kwargs", [(RAdam, {}), (RAdam, {"weight_decay": 0.1}),
                                        (Adadelta, {}), (Adadelta, {"weight_decay": 0.1})])
def test_state_dict_continues_exactly(cls, kwargs):
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal((4, 3)) for _ in range(14)]

    def steps(opt, p, gs):
        for g in gs:
            p.grad[...] = g + 0.1 * p.data
            opt.step()

    start = rng.standard_normal((4, 3))
    p, q = Parameter(start.copy()), Parameter(start.copy())
    steps(cls([p], **kwargs), p, grads)
    first = cls([q], **kwargs)
    steps(first, q, grads[:7])
    arrays, meta = first.state_dict()
    resumed = cls([q], **kwargs)
    resumed.load_state_dict(arrays, json.loads(json.dumps(meta)))
    steps(resumed, q, grads[7:])
    assert np.array_equal(q.data, p.data)
    assert first.state_bytes() == 2 * q.data.nbytes


@pytest.mark.parametrize("node,message", [
    ({"name": "radam", "betas": [0.9, 1.0]}, "betas[1] must be >= 0.0, < 1.0"),
    ({"name": "radam", "eps": -1.0}, "eps must be >= 0.0"),
    ({"name": "adadelta", "rho": 1.5}, "rho must be >= 0.0, <= 1.0"),
    ({"name": "adadelta", "lr": 0.0}, "lr must be a finite number > 0"),
    ({"name": "adadelta", "momentum": 0.9}, "unknown key optimizer.momentum (valid keys: lr, rho"),
])
def test_bad_options_are_usage_errors(node, message):
    with pytest.raises(UsageError) as e:
        registry.build(OPTIMIZERS, "optimizer", node, [])
    assert message in str(e.value)


# --- parameter groups ------------------------------------------------------------------------

def test_partition_keeps_order_and_first_matching_pattern_wins():
    groups = partition(NAMES, DECAY, True, {"fc1.*": 0.1, "*.W": 2.0})
    assert groups == [([0], True, 0.1), ([1], False, 0.1), ([2], True, 2.0), ([3], False, 1.0)]
    assert partition(NAMES, DECAY, False, {}) == [([0, 1, 2, 3], True, 1.0)]
    assert partition(NAMES, DECAY, True, {}) == [([0, 2], True, 1.0), ([1, 3], False, 1.0)]


def test_no_decay_bias_leaves_biases_alone_and_lr_mult_scales_steps():
    """With zero gradients, SGD's weight decay shrinks the weights by (1 - lr_g wd) and leaves
    the biases; a layer's lr_mult scales its step."""
    start, _, _ = problem()
    params = [Parameter(x.copy(), n, d) for x, n, d in zip(start, NAMES, DECAY)]
    opt = build_optimizer({"name": "sgd", "lr": 0.1, "weight_decay": 0.5, "no_decay_bias": True,
                           "lr_mult": {"fc2.*": 0.2}}, params)
    opt.step()
    for p, x, factor in zip(params, start, [1.0, 1.0, 0.2, 0.2]):
        expected = x * (1 - 0.1 * factor * 0.5) if p.decay else x
        np.testing.assert_allclose(p.data, expected, rtol=1e-15)
    opt.lr = 0.05  # a schedule's push reaches every group, times its factor
    assert [o.lr for o, _ in opt.groups] == [0.05, 0.05, 0.05 * 0.2, 0.05 * 0.2]


def test_without_group_options_the_optimizer_is_the_plain_class():
    """The default config builds exactly what it built before groups existed (same class, same
    checkpoint layout)."""
    params = [Parameter(np.zeros(2))]
    assert type(build_optimizer({"name": "adam", "no_decay_bias": False, "lr_mult": None},
                                params)).__name__ == "Adam"


GROUP_CASES = [
    ("sgd", "SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.1)),
    ("adam", "Adam", dict(lr=0.01, weight_decay=0.1)),
    ("adamw", "AdamW", dict(lr=0.01, weight_decay=0.5)),
    ("radam", "RAdam", dict(lr=0.01, weight_decay=0.1)),
    ("nadam", "NAdam", dict(lr=0.01, weight_decay=0.1)),
]


@pytest.mark.torch
@pytest.mark.parametrize("name,theirs,kwargs", GROUP_CASES, ids=[c[0] for c in GROUP_CASES])
def test_groups_match_torch_param_groups(torch, name, theirs, kwargs):
    """no_decay_bias + lr_mult equal torch.optim with the two-group (here four-group) recipe:
    [{"params": weights}, {"params": biases, "weight_decay": 0}] and per-group lr, over 60 steps
    of a pushed schedule."""
    start, noise, lrs = problem(1)
    lr_mult = {"fc1.*": 0.1}
    params = [Parameter(x.copy(), n, d) for x, n, d in zip(start, NAMES, DECAY)]
    opt = build_optimizer({"name": name, **kwargs, "no_decay_bias": True, "lr_mult": lr_mult},
                          params)
    assert isinstance(opt, GroupedOptimizer) and len(opt.groups) == 4
    run_ours(params, opt, noise, lrs)
    tparams = [torch.tensor(x.copy(), requires_grad=True) for x in start]
    spec = partition(NAMES, DECAY, True, lr_mult)
    topt = getattr(torch.optim, theirs)(
        [{"params": [tparams[i] for i in idx], **({} if decay else {"weight_decay": 0.0})}
         for idx, decay, _ in spec], **kwargs)
    run_torch(torch, tparams, topt, noise, lrs, [f for _, _, f in spec])
    assert max_error(params, tparams) <= 1e-12
    # and the groups mattered: without them the result is far from torch's
    plain = [Parameter(x.copy(), n, d) for x, n, d in zip(start, NAMES, DECAY)]
    run_ours(plain, build_optimizer({"name": name, **kwargs}, plain), noise, lrs)
    assert max_error(plain, tparams) > 1e-3


def test_grouped_state_dict_continues_exactly():
    start, noise, lrs = problem(2)
    node = {"name": "nadam", "lr": 0.01, "weight_decay": 0.1, "no_decay_bias": True,
            "lr_mult": {"fc2.W": 3.0}}

    def fresh():
        params = [Parameter(x.copy(), n, d) for x, n, d in zip(start, NAMES, DECAY)]
        return params, build_optimizer(node, params)

    ref_params, ref = fresh()
    run_ours(ref_params, ref, noise, lrs)
    params, first = fresh()
    run_ours(params, first, noise[:30], lrs[:30])
    arrays, meta = first.state_dict()
    resumed = build_optimizer(node, params)
    resumed.load_state_dict(arrays, json.loads(json.dumps(meta)))
    run_ours(params, resumed, noise[30:], lrs[30:])
    assert all(np.array_equal(p.data, q.data) for p, q in zip(params, ref_params))


@pytest.mark.parametrize("node,message", [
    ({"name": "sgd", "no_decay_bias": "yes"}, "no_decay_bias must be true or false"),
    ({"name": "sgd", "lr_mult": {"fc1.*": -1}}, "lr_mult['fc1.*'] must be a number > 0"),
    ({"name": "sgd", "lr_mult": [0.1]}, "lr_mult must be a mapping"),
])
def test_bad_group_options_are_usage_errors(node, message):
    with pytest.raises(UsageError, match="invalid optimizer 'sgd'") as e:
        build_optimizer(node, [])
    assert message in str(e.value)


# --- step schedules ---------------------------------------------------------------------------




def _ls(t):
    return t.optim.lr_scheduler


SCHEDULE_CASES = [
    ("restarts", {"name": "cosine_restarts", "T_0": 10},
     lambda t, o: _ls(t).CosineAnnealingWarmRestarts(o, T_0=10)),
    ("restarts_mult", {"name": "cosine_restarts", "T_0": 7, "T_mult": 2, "eta_min": 0.001},
     lambda t, o: _ls(t).CosineAnnealingWarmRestarts(o, T_0=7, T_mult=2, eta_min=0.001)),
    ("restarts_mult3_warmup", {"name": "cosine_restarts", "T_0": 5, "T_mult": 3, "warmup_steps": 8},
     lambda t, o: _ls(t).SequentialLR(o, [_ls(t).LinearLR(o, start_factor=0.01, total_iters=8),
                                          _ls(t).CosineAnnealingWarmRestarts(o, T_0=5, T_mult=3)],
                                      milestones=[8])),
    ("cyclic", {"name": "cyclic", "max_lr": 0.5, "step_size_up": 10},
     lambda t, o: _ls(t).CyclicLR(o, base_lr=LR, max_lr=0.5, step_size_up=10,
                                  cycle_momentum=False)),
    ("cyclic2", {"name": "cyclic", "base_lr": 0.01, "max_lr": 0.3, "step_size_up": 7,
                 "step_size_down": 13, "mode": "triangular2"},
     lambda t, o: _ls(t).CyclicLR(o, base_lr=0.01, max_lr=0.3, step_size_up=7, step_size_down=13,
                                  mode="triangular2", cycle_momentum=False)),
    ("cyclic_exp", {"name": "cyclic", "step_size_up": 9, "step_size_down": 4, "mode": "exp_range",
                    "gamma": 0.99},
     lambda t, o: _ls(t).CyclicLR(o, base_lr=LR, max_lr=4 * LR, step_size_up=9, step_size_down=4,
                                  mode="exp_range", gamma=0.99, cycle_momentum=False)),
    ("linear", {"name": "linear", "start_factor": 0.25, "end_factor": 0.75, "total_iters": 30},
     lambda t, o: _ls(t).LinearLR(o, start_factor=0.25, end_factor=0.75, total_iters=30)),
    ("linear_decay", {"name": "linear", "start_factor": 1.0, "end_factor": 0.0,
                      "total_iters": None},
     lambda t, o: _ls(t).LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=120)),
    ("sequential", {"name": "sequential", "milestones": [10, 40], "schedules": [
        {"name": "linear", "start_factor": 0.1, "total_iters": 10},
        {"name": "exponential", "gamma": 0.95},
        {"name": "cosine", "T_max": 30, "eta_min": 0.0}]},
     lambda t, o: _ls(t).SequentialLR(o, [_ls(t).LinearLR(o, start_factor=0.1, total_iters=10),
                                          _ls(t).ExponentialLR(o, gamma=0.95),
                                          _ls(t).CosineAnnealingLR(o, T_max=30)],
                                      milestones=[10, 40])),
    ("sequential_restarts", {"name": "sequential", "milestones": [20], "schedules": [
        {"name": "cosine_restarts", "T_0": 6},
        {"name": "step", "step_size": 15, "gamma": 0.5}]},
     lambda t, o: _ls(t).SequentialLR(o, [_ls(t).CosineAnnealingWarmRestarts(o, T_0=6),
                                          _ls(t).StepLR(o, step_size=15, gamma=0.5)],
                                      milestones=[20])),
]


@pytest.mark.torch
@pytest.mark.parametrize("name,node,make", SCHEDULE_CASES, ids=[c[0] for c in SCHEDULE_CASES])
def test_schedules_match_torch(torch, name, node, make):
    n = 120
    ours = build_schedule(node, LR, total_steps=n)
    theirs = torch_values(torch, lambda o: make(torch, o), n)
    errors = [abs(ours(t) - v) / v if v else abs(ours(t)) for t, v in enumerate(theirs)]
    assert max(errors) <= 2e-13, (int(np.argmax(errors)), max(errors))
    assert len({round(v, 12) for v in theirs}) > 5  # the schedule does change the lr


def test_the_shipped_sequential_is_warmup_then_cosine_over_the_rest():
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module(config_module="dlx.conf", version_base="1.3"):
        node = OmegaConf.to_container(compose("config", ["schedule=sequential"]).schedule)
    f = build_schedule(node, LR, total_steps=250)
    assert f(0) == pytest.approx(LR * 0.01) and f(50) == pytest.approx(LR)
    assert f(150) == pytest.approx(LR / 2) and f(249) < 1e-4 * LR


@pytest.mark.parametrize("node,needle", [
    ({"name": "cosine_restarts", "T_0": 0}, "T_0 must be an integer >= 1"),
    ({"name": "cosine_restarts", "T_mult": 1.5}, "T_mult: expected an integer"),
    ({"name": "cyclic", "mode": "sine"}, "mode must be one of triangular, triangular2, exp_range"),
    ({"name": "cyclic", "step_size_up": 0}, "step_size_up and step_size_down must be >= 1"),
    ({"name": "linear", "start_factor": 0.0}, "start_factor must be in (0, 1]"),
    ({"name": "sequential", "schedules": [{"name": "constant"}], "milestones": [5]},
     "needs one milestone fewer than schedules"),
    ({"name": "sequential", "schedules": [{"name": "constant"}, {"name": "constant"}],
      "milestones": [0]}, "milestones must be > 0 and increasing"),
    ({"name": "sequential", "schedules": [{"name": "constant"}, {"name": "cosine", "T": 3}],
      "milestones": [5]}, "unknown key schedule.schedules[1].T"),
    ({"name": "sequential", "schedules": [{"name": "constant"}, {"name": "reduce_on_plateau"}],
      "milestones": [5]}, "schedules[1] must be a step schedule's node"),
    ({"name": "reduce_on_plateau", "factor": 1.0}, "factor must be in (0, 1)"),
    ({"name": "reduce_on_plateau", "mode": "down"}, "mode must be min or max"),
    ({"name": "reduce_on_plateau", "monitor": "val/f1"}, "monitor must be one of val/loss"),
    ({"name": "reduce_on_plateau", "warmup_steps": 5}, "reduce_on_plateau follows the validation"),
])
def test_bad_schedules(node, needle):
    with pytest.raises(UsageError) as e:
        build_schedule(node, LR, 100)
    assert needle in str(e.value)


# --- ReduceLROnPlateau ------------------------------------------------------------------------

def recorded_metrics(seed: int, n: int = 80) -> list[float]:
    """A loss that falls, then wanders on a plateau with noise, a spike and a NaN epoch."""
    rng = np.random.default_rng(seed)
    values = 1.0 / (1.0 + 0.3 * np.arange(n)) + 0.3 + 0.01 * rng.standard_normal(n)
    values[n // 2] = 5.0
    values[n // 3] = np.nan
    return [float(v) for v in values]


PLATEAU_CASES = [
    {},
    {"patience": 2, "factor": 0.5},
    {"patience": 0, "factor": 0.7, "cooldown": 3, "threshold": 1e-2},
    {"patience": 3, "threshold": 0.005, "threshold_mode": "abs", "min_lr": 0.02},
    {"mode": "max", "patience": 1, "factor": 0.3, "threshold_mode": "abs", "threshold": 0.0},
    {"mode": "max", "patience": 2, "threshold": 0.05, "cooldown": 1, "eps": 0.05},
]


@pytest.mark.torch
@pytest.mark.parametrize("options", PLATEAU_CASES, ids=[str(i) for i in range(len(PLATEAU_CASES))])
def test_reduce_on_plateau_matches_torch_on_recorded_metrics(torch, options):
    ours = ReduceLROnPlateau(LR, 0, **options)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **options)
    lrs = []
    for seed in (0, 1, 2):  # three sequences, one after the other
        for m in recorded_metrics(seed):
            m = -m if options.get("mode") == "max" else m
            ours.step(m)
            theirs.step(m)
            lrs.append(ours(123))
            assert ours(0) == opt.param_groups[0]["lr"]
            assert (ours.best, ours.num_bad_epochs, ours.cooldown_counter) == \
                (theirs.best, theirs.num_bad_epochs, theirs.cooldown_counter)
    assert len(set(lrs)) >= 2  # it did reduce


def plateau_run(*extra):
    return ("model=mlp", "model.hidden=[16]", "dataset=moons", "dtype=float64", "seed=3",
            "epochs=14", "optimizer=momentum", "optimizer.lr=0.3", "schedule=reduce_on_plateau",
            "schedule.patience=1", "schedule.factor=0.5", "schedule.threshold=0.01", *extra)


def read_rows(path):
    return [ln.split(",") for ln in path.read_text().splitlines()[1:]]


@pytest.mark.torch
def test_a_plateau_run_follows_torch_on_its_own_val_loss(torch, tmp_path):
    """In a run, the lr of each epoch is torch's ReduceLROnPlateau fed the val/loss of the
    epochs before it (as `scheduler.step(val_loss)` at each epoch's end)."""
    rec = MetricsWriter(tmp_path / METRICS)
    train(config(*plateau_run()), rec, "none")
    rec.close()
    rows = read_rows(tmp_path / METRICS)
    val = [float(r[4]) for r in rows if r[2:4] == ["val", "loss"] and r[1] != "0"]
    lr_by_epoch = {}
    for r in rows:
        if r[2:4] == ["batch", "lr"]:
            lr_by_epoch.setdefault(int(r[1]), set()).add(float(r[4]))
    assert all(len(v) == 1 for v in lr_by_epoch.values())  # constant within an epoch
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5,
                                                       threshold=0.01)
    expected = []
    for v in val:
        expected.append(opt.param_groups[0]["lr"])
        sched.step(v)
    got = [lr_by_epoch[e].pop() for e in sorted(lr_by_epoch)]
    assert got == expected[:len(got)]
    assert len(set(got)) >= 3  # reduced at least twice in 14 epochs


def test_a_plateau_run_resumes_byte_identically(tmp_path, monkeypatch):
    """Interrupted mid-epoch after the lr has been reduced and resumed from its checkpoint, the
    run's metrics.csv is the uninterrupted run's, byte for byte; without the plateau's state
    in the checkpoint it would not be."""
    cfg = config(*plateau_run())
    whole = tmp_path / "whole"
    whole.mkdir()
    rec = MetricsWriter(whole / METRICS)
    train(cfg, rec, "none", run_dir=whole)
    rec.close()
    rows = read_rows(whole / METRICS)
    reduced_at = min(int(r[0]) for r in rows if r[2:4] == ["batch", "lr"] and float(r[4]) < 0.3)
    stop_at = reduced_at + 30  # the next epoch (25 steps each): a reduced lr and a state to keep

    def resumed_copy(name: str) -> bytes:
        run_dir = tmp_path / name
        run_dir.mkdir()
        rec = MetricsWriter(run_dir / METRICS)

        def interrupt(step, backend):
            if step == stop_at:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            train(cfg, rec, "none", run_dir=run_dir, hooks=[interrupt], checkpoint=True)
        rec.close()
        resume = checkpoint.load(run_dir, cfg)
        assert resume is not None and resume[1]["callbacks"]["plateau"]["lr"] < 0.3
        meta = resume[1]
        rec = MetricsWriter(run_dir / METRICS, (meta["files"][METRICS], meta["final"], meta["best"]))
        train(cfg, rec, "none", run_dir=run_dir, resume=resume, checkpoint=True)
        rec.close()
        return (run_dir / METRICS).read_bytes()

    assert resumed_copy("resumed") == (whole / METRICS).read_bytes()
    from dlx.training import monitors

    monkeypatch.setattr(monitors.Plateau, "restore", lambda self, arrays, meta: None)
    assert resumed_copy("forgetful") != (whole / METRICS).read_bytes()


# --- in runs: both backends, and the CLI ------------------------------------------------------

def batch_values(tmp_path, name, *overrides) -> dict[str, np.ndarray]:
    """A run's per-step batch/loss and batch/lr."""
    path = tmp_path / f"{name}.csv"
    rec = MetricsWriter(path)
    train(config(*overrides), rec, "none")
    rec.close()
    rows = read_rows(path)
    return {m: np.array([float(r[4]) for r in rows if r[2:4] == ["batch", m]])
            for m in ("loss", "lr")}


BACKEND_CASES = {
    "radam": ("optimizer=radam", "optimizer.lr=0.01"),
    "radam_decoupled": ("optimizer=radam", "optimizer.lr=0.01", "optimizer.weight_decay=0.1",
                        "optimizer.decoupled_weight_decay=true"),
    "adadelta": ("optimizer=adadelta",),
    "groups_adamw": ("optimizer=adamw", "optimizer.lr=0.01", "optimizer.weight_decay=0.5",
                     "optimizer.no_decay_bias=true", "optimizer.lr_mult={fc1.*:0.2}"),
    "groups_momentum": ("optimizer=momentum", "optimizer.weight_decay=0.01",
                        "optimizer.no_decay_bias=true", "optimizer.lr_mult={fc2.W:3,fc1.b:0.5}"),
    "cosine_restarts": ("optimizer=momentum", "schedule=cosine_restarts", "schedule.T_0=10"),
    "cyclic": ("optimizer=momentum", "schedule=cyclic", "schedule.step_size_up=8",
               "schedule.mode=triangular2"),
    "sequential": ("optimizer=adam", "optimizer.lr=0.01", "schedule=sequential"),
    "plateau": ("optimizer=momentum", "optimizer.lr=0.3", "schedule=reduce_on_plateau",
                "schedule.patience=0", "schedule.factor=0.5", "schedule.threshold_mode=abs",
                "schedule.threshold=0.5"),  # an improvement must be 0.5: a reduction in 3 epochs
}


@pytest.mark.torch
@pytest.mark.parametrize("case", list(BACKEND_CASES))
def test_numpy_and_torch_runs_agree_step_by_step(torch, tmp_path, case):
    common = ("model=mlp", "model.hidden=[16,16]", "dtype=float64", "seed=1", "epochs=3",
              "dataset=moons", *BACKEND_CASES[case])
    ours = batch_values(tmp_path, "numpy", *common)
    theirs = batch_values(tmp_path, "torch", *common, "backend=torch")
    assert len(ours["loss"]) == len(theirs["loss"]) == 75
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-9)
    assert ours["loss"][-1] < 0.8 * ours["loss"][0]  # and it trained
    assert np.array_equal(ours["lr"], theirs["lr"])
    if "schedule=constant" not in " ".join(common) and any("schedule=" in o for o in common):
        assert len(set(ours["lr"])) > 1  # the schedule did act within the 3 epochs


@pytest.mark.parametrize("args,needle", [
    (("schedule=cyclic", "schedule.mode=sine"), "mode must be one of triangular"),
    (("schedule=reduce_on_plateau", "+schedule.warmup_steps=5"), "takes no warmup"),
    (("optimizer.lr_mult={fc1.*:-1}",), "lr_mult['fc1.*'] must be a number > 0"),
])
def test_cli_mistakes_are_one_line(cli, args, needle):
    assert_one_error_line(cli("run", *args), needle)
