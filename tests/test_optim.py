"""Optimizers against torch.optim in float64, and their known one-step behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from dlx import registry
from dlx.errors import UsageError
from dlx.nn import Parameter
from dlx.optim import OPTIMIZERS, SGD, Adagrad, Adam, Adamax, AdamW, NAdam, RMSprop

CASES = [
    (SGD, "SGD", dict(lr=0.1)),
    (SGD, "SGD", dict(lr=0.05, momentum=0.9)),
    (SGD, "SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    (SGD, "SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    (Adagrad, "Adagrad", dict(lr=0.05)),
    (Adagrad, "Adagrad", dict(lr=0.05, lr_decay=0.01, weight_decay=0.1,
                              initial_accumulator_value=0.1, eps=1e-8)),
    (RMSprop, "RMSprop", dict(lr=0.01)),
    (RMSprop, "RMSprop", dict(lr=0.01, alpha=0.9, centered=True)),
    (RMSprop, "RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.01)),
    (RMSprop, "RMSprop", dict(lr=0.005, momentum=0.5, centered=True, eps=1e-6, weight_decay=0.1)),
    (Adam, "Adam", dict(lr=0.01)),
    (Adam, "Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    (Adam, "Adam", dict(lr=0.01, amsgrad=True)),
    (AdamW, "AdamW", dict(lr=0.01)),
    (AdamW, "AdamW", dict(lr=0.01, weight_decay=0.5, amsgrad=True)),
    (Adamax, "Adamax", dict(lr=0.01)),
    (Adamax, "Adamax", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
    (NAdam, "NAdam", dict(lr=0.01)),
    (NAdam, "NAdam", dict(lr=0.01, momentum_decay=0.01, weight_decay=0.1)),
    (NAdam, "NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
]


@pytest.mark.torch
@pytest.mark.parametrize("ours,theirs,kwargs", CASES, ids=lambda c: str(c))
def test_matches_torch_over_100_steps(torch, ours, theirs, kwargs):
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (3,)]
    start = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(100)]
    params = [Parameter(x.copy()) for x in start]
    opt = ours(params, **kwargs)
    tparams = [torch.tensor(x.copy(), requires_grad=True) for x in start]
    topt = getattr(torch.optim, theirs)(tparams, **kwargs)
    for step_grads in grads:
        for p, tp, g in zip(params, tparams, step_grads):
            p.grad[...] = g
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_adam_first_step_is_lr_times_sign():
    """Bias correction makes Adam's first step lr * g / (|g| + eps) ~ lr * sign(g)."""
    p = Parameter(np.zeros(3))
    p.grad[...] = [2.0, -0.5, 1e-3]
    Adam([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [-0.1, 0.1, -0.1], rtol=1e-4)


def test_momentum_buffer_starts_at_first_gradient():
    """torch's rule: no dampening on step 1, so the first step equals plain SGD's."""
    p = Parameter(np.zeros(2))
    opt = SGD([p], lr=1.0, momentum=0.9, dampening=0.5)
    p.grad[...] = [1.0, 2.0]
    opt.step()
    np.testing.assert_allclose(p.data, [-1.0, -2.0])
    opt.step()  # b = 0.9 * g + 0.5 * g
    np.testing.assert_allclose(p.data, [-2.4, -4.8])


def test_state_bytes():
    """sgd keeps nothing, momentum one buffer, adam two (three with amsgrad)."""
    def after_one_step(cls, **kw):
        p = Parameter(np.zeros((10, 10)))
        opt = cls([p], **kw)
        opt.step()
        return opt.state_bytes() / p.data.nbytes

    assert after_one_step(SGD, lr=0.1) == 0
    assert after_one_step(SGD, lr=0.1, momentum=0.9) == 1
    assert after_one_step(Adam) == 2
    assert after_one_step(Adam, amsgrad=True) == 3
    assert after_one_step(AdamW) == 2 and after_one_step(NAdam) == 2
    assert after_one_step(Adamax) == 2 and after_one_step(Adagrad) == 1
    assert after_one_step(RMSprop) == 1 and after_one_step(RMSprop, centered=True) == 2
    assert after_one_step(RMSprop, centered=True, momentum=0.9) == 3


@pytest.mark.parametrize("node,message", [
    ({"name": "sgd", "lr": -1.0}, "lr must be a finite number > 0"),
    ({"name": "sgd", "lr": 0.0}, "lr must be a finite number > 0"),
    ({"name": "sgd", "lr": 0.1, "momentum": 1.5}, "momentum must be >= 0.0, < 1.0"),
    ({"name": "sgd", "lr": 0.1, "weight_decay": -1.0}, "weight_decay must be >= 0.0"),
    ({"name": "sgd", "lr": 0.1, "nesterov": True}, "nesterov needs momentum > 0"),
    ({"name": "adam", "betas": [0.9, 1.0]}, "betas[1] must be >= 0.0, < 1.0"),
    ({"name": "adam", "lr": "fast"}, "optimizer.lr: expected a number"),
    ({"name": "adam", "beta": 0.9}, "unknown key optimizer.beta (valid keys: lr, betas"),
    ({"name": "adamm"}, "unknown optimizer 'adamm' (valid: adadelta, adagrad, adam, adamax, adamw,"),
    ({"name": "rmsprop", "alpha": 1.5}, "alpha must be >= 0.0, <= 1.0"),
])
def test_bad_options_are_usage_errors(node, message):
    with pytest.raises(UsageError) as e:
        registry.build(OPTIMIZERS, "optimizer", node, [])
    assert message in str(e.value)


@pytest.mark.parametrize("ours,kwargs", [(c[0], c[2]) for c in CASES],
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_state_dict_continues_exactly(ours, kwargs):
    """Stopped after 7 steps and restored into a fresh optimizer, the next 7 steps are the
    uninterrupted run's, bit for bit (NAdam's running mu product included)."""
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal((4, 3)) for _ in range(14)]

    def steps(opt, p, gs):
        for g in gs:
            p.grad[...] = g + 0.1 * p.data  # depends on the weights: state errors show up
            opt.step()

    p = Parameter(rng.standard_normal((4, 3)))
    start = p.data.copy()
    reference = ours([p], **kwargs)
    steps(reference, p, grads)

    q = Parameter(start.copy())
    first = ours([q], **kwargs)
    steps(first, q, grads[:7])
    arrays, meta = first.state_dict()
    import json

    meta = json.loads(json.dumps(meta))  # as a checkpoint stores it
    resumed = ours([q], **kwargs)
    resumed.load_state_dict(arrays, meta)
    steps(resumed, q, grads[7:])
    assert np.array_equal(q.data, p.data)
