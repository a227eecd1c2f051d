"""`dlx exercise`: every exercise's stub, written by `start`, fails its check cleanly untouched
("not implemented yet") and passes with a correct solution pasted into its bodies; the status
`dlx exercise list` shows follows the file and its last check."""

from __future__ import annotations

import os
import re

import pytest

from dlx.checks import exercises, store
from dlx.errors import UsageError
from tests.conftest import CLI, assert_one_error_line

# Each exercise's bodies, in the stub's order, as a learner who derived them would write them
SOLUTIONS = {
    "sgd": ["p -= self.lr * g"],
    "momentum": ["""\
if "b" not in state:
    state["b"] = g.copy()
else:
    state["b"][...] = self.momentum * state["b"] + g
p -= self.lr * state["b"]"""],
    "nesterov": ["""\
if "b" not in state:
    state["b"] = g.copy()
else:
    state["b"][...] = self.momentum * state["b"] + g
p -= self.lr * (g + self.momentum * state["b"])"""],
    "adagrad": ["""\
s = state.setdefault("s", np.zeros_like(p))
s += g * g
p -= self.lr * g / (np.sqrt(s) + self.eps)"""],
    "rmsprop": ["""\
v = state.setdefault("v", np.zeros_like(p))
v[...] = self.alpha * v + (1 - self.alpha) * g * g
p -= self.lr * g / (np.sqrt(v) + self.eps)"""],
    "adam": ["""\
m = state.setdefault("m", np.zeros_like(p))
v = state.setdefault("v", np.zeros_like(p))
m[...] = self.beta1 * m + (1 - self.beta1) * g
v[...] = self.beta2 * v + (1 - self.beta2) * g * g
m_hat = m / (1 - self.beta1 ** self.t)
v_hat = v / (1 - self.beta2 ** self.t)
p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)"""],
    "adamw": None,  # Adam's body after the decoupled decay: set below
    "adamax": ["""\
m = state.setdefault("m", np.zeros_like(p))
u = state.setdefault("u", np.zeros_like(p))
m[...] = self.beta1 * m + (1 - self.beta1) * g
u[...] = np.maximum(self.beta2 * u, np.abs(g) + self.eps)
p -= self.lr / (1 - self.beta1 ** self.t) * m / u"""],
    "nadam": ["""\
t = self.t
mu = self.beta1 * (1 - 0.5 * 0.96 ** (t * self.momentum_decay))
mu_next = self.beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * self.momentum_decay))
state["P"] = state.get("P", 1.0) * mu
m = state.setdefault("m", np.zeros_like(p))
v = state.setdefault("v", np.zeros_like(p))
m[...] = self.beta1 * m + (1 - self.beta1) * g
v[...] = self.beta2 * v + (1 - self.beta2) * g * g
d = np.sqrt(v / (1 - self.beta2 ** t)) + self.eps
p -= self.lr * (1 - mu) / (1 - state["P"]) * g / d
p -= self.lr * mu_next / (1 - state["P"] * mu_next) * m / d"""],
    "bce": ["""\
z, y = scores[:, 0], y.astype(float)
self.z, self.y = z, y
return float(np.mean(y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)))""",
            """\
p = 1 / (1 + np.exp(-self.z))
return ((p - self.y) / len(self.y))[:, None]"""],
    "cross_entropy": ["""\
z = scores - scores.max(axis=1, keepdims=True)
logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
self.p, self.y = np.exp(logp), y
return float(-logp[np.arange(len(y)), y].mean())""",
                      """\
d = self.p.copy()
d[np.arange(len(self.y)), self.y] -= 1
return d / len(self.y)"""],
    "he_normal": ["""\
fan_in = shape[0] if len(shape) == 2 else shape[1] * math.prod(shape[2:])
return rng.normal(0.0, math.sqrt(2 / fan_in), shape)"""],
    "he_uniform": ["""\
fan_in = shape[0] if len(shape) == 2 else shape[1] * math.prod(shape[2:])
return rng.uniform(-1, 1, shape) * math.sqrt(6 / fan_in)"""],
    "lecun_normal": ["""\
fan_in = shape[0] if len(shape) == 2 else shape[1] * math.prod(shape[2:])
return rng.normal(0.0, math.sqrt(1 / fan_in), shape)"""],
    "xavier_normal": ["""\
k = 1 if len(shape) == 2 else math.prod(shape[2:])
fan_in, fan_out = (shape[0], shape[1]) if len(shape) == 2 else (shape[1] * k, shape[0] * k)
return rng.normal(0.0, gain * math.sqrt(2 / (fan_in + fan_out)), shape)"""],
    "xavier_uniform": ["""\
k = 1 if len(shape) == 2 else math.prod(shape[2:])
fan_in, fan_out = (shape[0], shape[1]) if len(shape) == 2 else (shape[1] * k, shape[0] * k)
return rng.uniform(-1, 1, shape) * gain * math.sqrt(6 / (fan_in + fan_out))"""],
    "entropy": ["""\
z = scores - scores.max(axis=1, keepdims=True)
self.logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
self.p = np.exp(self.logp)
self.h = -(self.p * self.logp).sum(axis=1)
return float(self.h.mean())""", "return -self.p * (self.logp + self.h[:, None]) / len(self.p)"],
    "mse": ["""\
self.diff = scores - y
return float(np.mean(self.diff ** 2))""",
            "return 2 * self.diff / self.diff.size"],
    "relu": ["self.x = x\nreturn np.maximum(x, 0)", "return dout * (self.x > 0)"],
    "sigmoid": ["self.y = 1 / (1 + np.exp(-x))\nreturn self.y",
                "return dout * self.y * (1 - self.y)"],
    "tanh": ["self.y = np.tanh(x)\nreturn self.y", "return dout * (1 - self.y ** 2)"],
    "linear": ["self.x = x\nreturn x @ self.W.data + self.b.data", """\
self.W.grad += self.x.T @ dout
self.b.grad += dout.sum(axis=0)
return dout @ self.W.data.T"""],
    "step": ["return lr * gamma ** (step // step_size)"],
    "exponential": ["return lr * gamma ** step"],
    "time_based": ["return lr / (1 + decay * step)"],
    "cosine": ["""\
T = total_steps if T_max is None else T_max
return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * step / T)) / 2"""],
    "l2": ["return self.lam / 2 * float((w * w).sum())", "return self.lam * w"],
    "l1": ["return self.lam * float(np.abs(w).sum())", "return self.lam * np.sign(w)"],
    "elastic_net": ["""\
return self.lam * (self.l1_ratio * float(np.abs(w).sum())
                   + (1 - self.l1_ratio) / 2 * float((w * w).sum()))""",
                    "return self.lam * (self.l1_ratio * np.sign(w) + (1 - self.l1_ratio) * w)"],
    "logreg": ["self.x = x\nreturn x @ self.W.data + self.b.data", """\
self.W.grad += self.x.T @ dout
self.b.grad += dout.sum(axis=0)
return dout @ self.W.data.T"""],
    "linreg": ["self.x = x\nreturn x @ self.W.data + self.b.data", """\
self.W.grad += self.x.T @ dout
self.b.grad += dout.sum(axis=0)
return dout @ self.W.data.T"""],
    "two_layer_net": ["""\
self.shape = x.shape
self.x = x.reshape(len(x), -1)
self.z1 = self.x @ self.W1.data + self.b1.data
self.h1 = np.maximum(self.z1, 0)
return self.h1 @ self.W2.data + self.b2.data""", """\
self.W2.grad += self.h1.T @ dout
self.b2.grad += dout.sum(axis=0)
self.dh1 = dout @ self.W2.data.T
self.dz1 = self.dh1 * (self.z1 > 0)
self.W1.grad += self.x.T @ self.dz1
self.b1.grad += self.dz1.sum(axis=0)
return (self.dz1 @ self.W1.data.T).reshape(self.shape)"""],
    "attention": ["""\
B, T, C = x.shape
H = self.n_heads
D = C // H
self.x = x
qkv = x @ self.W_qkv.data + self.b_qkv.data
heads = [qkv[..., i * C:(i + 1) * C].reshape(B, T, H, D).transpose(0, 2, 1, 3)
         for i in range(3)]
self.q, self.k, self.v = heads
s = self.q @ self.k.transpose(0, 1, 3, 2) / np.sqrt(D)
s = np.where(np.triu(np.ones((T, T), bool), 1), -np.inf, s)
e = np.exp(s - s.max(axis=-1, keepdims=True))
self.att = e / e.sum(axis=-1, keepdims=True)
self.y = (self.att @ self.v).transpose(0, 2, 1, 3).reshape(B, T, C)
return self.y @ self.W_o.data + self.b_o.data""", """\
B, T, C = self.x.shape
H = self.n_heads
D = C // H
self.W_o.grad += self.y.reshape(-1, C).T @ dout.reshape(-1, C)
self.b_o.grad += dout.reshape(-1, C).sum(axis=0)
dy = (dout @ self.W_o.data.T).reshape(B, T, H, D).transpose(0, 2, 1, 3)
datt = dy @ self.v.transpose(0, 1, 3, 2)
dv = self.att.transpose(0, 1, 3, 2) @ dy
ds = self.att * (datt - (datt * self.att).sum(axis=-1, keepdims=True)) / np.sqrt(D)
dq, dk = ds @ self.k, ds.transpose(0, 1, 3, 2) @ self.q
dqkv = np.concatenate([g.transpose(0, 2, 1, 3).reshape(B, T, C) for g in (dq, dk, dv)], -1)
self.W_qkv.grad += self.x.reshape(-1, C).T @ dqkv.reshape(-1, 3 * C)
self.b_qkv.grad += dqkv.reshape(-1, 3 * C).sum(axis=0)
return dqkv @ self.W_qkv.data.T"""],
    "lstm": ["""\
h, c = state
H = h.shape[1]
z = x @ self.weight_ih.data.T + self.bias_ih.data + h @ self.weight_hh.data.T + self.bias_hh.data
sig = 1 / (1 + np.exp(-z))
self.i, self.f, self.o = sig[:, :H], sig[:, H:2 * H], sig[:, 3 * H:]
self.g = np.tanh(z[:, 2 * H:3 * H])
self.c_new = self.f * c + self.i * self.g
self.tc = np.tanh(self.c_new)
self.x, self.h, self.c = x, h, c
return self.o * self.tc, self.c_new""", """\
dh, dc = dstate
dc = dc + dh * self.o * (1 - self.tc ** 2)
da = np.concatenate([dc * self.g * self.i * (1 - self.i), dc * self.c * self.f * (1 - self.f),
                     dc * self.i * (1 - self.g ** 2), dh * self.tc * self.o * (1 - self.o)], 1)
self.weight_ih.grad += da.T @ self.x
self.weight_hh.grad += da.T @ self.h
self.bias_ih.grad += da.sum(axis=0)
self.bias_hh.grad += da.sum(axis=0)
self.dstate0 = (da @ self.weight_hh.data, dc * self.f)
return da @ self.weight_ih.data"""],
    "conv": ["""\
s, p = self.stride, self.padding
F, C, k, _ = self.W.data.shape
self.xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
N, _, Hp, Wp = self.xp.shape
Ho, Wo = (Hp - k) // s + 1, (Wp - k) // s + 1
out = np.empty((N, F, Ho, Wo))
for i in range(Ho):
    for j in range(Wo):
        window = self.xp[:, :, i * s:i * s + k, j * s:j * s + k]
        out[:, :, i, j] = np.tensordot(window, self.W.data, axes=([1, 2, 3], [1, 2, 3]))
return out + self.b.data[None, :, None, None]""", """\
s, p = self.stride, self.padding
F, C, k, _ = self.W.data.shape
dxp = np.zeros_like(self.xp)
for i in range(dout.shape[2]):
    for j in range(dout.shape[3]):
        window = self.xp[:, :, i * s:i * s + k, j * s:j * s + k]
        d = dout[:, :, i, j]
        self.W.grad += np.tensordot(d, window, axes=([0], [0]))
        dxp[:, :, i * s:i * s + k, j * s:j * s + k] += np.tensordot(d, self.W.data, axes=([1], [0]))
self.b.grad += dout.sum(axis=(0, 2, 3))
H, W = dxp.shape[2] - 2 * p, dxp.shape[3] - 2 * p
return dxp[:, :, p:p + H, p:p + W]""", """\
k, s = self.k, self.stride
N, C, H, W = x.shape
self.x = x
Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
out = np.empty((N, C, Ho, Wo))
for i in range(Ho):
    for j in range(Wo):
        out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=(2, 3))
return out""", """\
k, s = self.k, self.stride
dx = np.zeros_like(self.x)
for i in range(dout.shape[2]):
    for j in range(dout.shape[3]):
        window = self.x[:, :, i * s:i * s + k, j * s:j * s + k]
        hit = window == window.max(axis=(2, 3), keepdims=True)
        dx[:, :, i * s:i * s + k, j * s:j * s + k] += hit * dout[:, :, i:i + 1, j:j + 1]
return dx"""],
    "rnn": ["""\
self.x, self.h = x, h
self.h_new = np.tanh(x @ self.weight_ih.data.T + self.bias_ih.data
                     + h @ self.weight_hh.data.T + self.bias_hh.data)
return self.h_new""", """\
da = dh * (1 - self.h_new ** 2)
self.weight_ih.grad += da.T @ self.x
self.weight_hh.grad += da.T @ self.h
self.bias_ih.grad += da.sum(axis=0)
self.bias_hh.grad += da.sum(axis=0)
self.dstate0 = da @ self.weight_hh.data
return da @ self.weight_ih.data""", """\
H = h.shape[1]
a = x @ self.weight_ih.data.T + self.bias_ih.data
b = h @ self.weight_hh.data.T + self.bias_hh.data
self.r = 1 / (1 + np.exp(-(a[:, :H] + b[:, :H])))
self.z = 1 / (1 + np.exp(-(a[:, H:2 * H] + b[:, H:2 * H])))
self.bn = b[:, 2 * H:]
self.n = np.tanh(a[:, 2 * H:] + self.r * self.bn)
self.x, self.h = x, h
return (1 - self.z) * self.n + self.z * self.h""", """\
r, z, n, bn, h = self.r, self.z, self.n, self.bn, self.h
dan = dh * (1 - z) * (1 - n ** 2)
dar = dan * bn * r * (1 - r)
daz = dh * (h - n) * z * (1 - z)
da = np.concatenate([dar, daz, dan], axis=1)
db = np.concatenate([dar, daz, dan * r], axis=1)
self.weight_ih.grad += da.T @ self.x
self.weight_hh.grad += db.T @ h
self.bias_ih.grad += da.sum(axis=0)
self.bias_hh.grad += db.sum(axis=0)
self.dstate0 = dh * z + db @ self.weight_hh.data
return da @ self.weight_ih.data"""],
    "bptt": ["""\
B, T, _ = x.shape
self.x, self.hs = x, [np.zeros((B, self.weight_hh.data.shape[0]))]
for t in range(T):
    self.hs.append(np.tanh(x[:, t] @ self.weight_ih.data.T + self.bias_ih.data
                           + self.hs[-1] @ self.weight_hh.data.T + self.bias_hh.data))
return np.stack(self.hs[1:], axis=1)""", """\
dx, dh_next = np.zeros_like(self.x), np.zeros_like(self.hs[0])
for t in reversed(range(dout.shape[1])):
    da = (dout[:, t] + dh_next) * (1 - self.hs[t + 1] ** 2)
    self.weight_ih.grad += da.T @ self.x[:, t]
    self.weight_hh.grad += da.T @ self.hs[t]
    self.bias_ih.grad += da.sum(axis=0)
    self.bias_hh.grad += da.sum(axis=0)
    dx[:, t] = da @ self.weight_ih.data
    dh_next = da @ self.weight_hh.data
return dx"""],
    "lr_range": ["""\
span = max(total_steps - 1, 1)
return lr * (final_lr / lr) ** (min(step, span) / span)"""],
    "mlp": ["""\
self.shape, h = x.shape, x.reshape(len(x), -1)
self.hs = [h]
for i in range(1, self.L + 1):
    h = h @ getattr(self, f"W{i}").data + getattr(self, f"b{i}").data
    if i < self.L:
        h = np.tanh(h) if self.activation == "tanh" else np.maximum(h, 0)
    self.hs.append(h)
return h""", """\
g = dout
for i in range(self.L, 0, -1):
    getattr(self, f"W{i}").grad += self.hs[i - 1].T @ g
    getattr(self, f"b{i}").grad += g.sum(axis=0)
    g = g @ getattr(self, f"W{i}").data.T
    if i > 1:
        h = self.hs[i - 1]
        g = g * (1 - h ** 2) if self.activation == "tanh" else g * (h > 0)
return g.reshape(self.shape)"""],
    "lenet": ["""\
for conv, relu, pool in zip(self.convs, self.relus, self.pools):
    x = pool.forward(relu.forward(conv.forward(x)))
self.maps = x.shape
x = x.reshape(len(x), -1)
for i, fc in enumerate(self.fcs):
    x = fc.forward(x)
    if i < len(self.fc_relus):
        x = self.fc_relus[i].forward(x)
return x""", """\
g = dout
for i in reversed(range(len(self.fcs))):
    if i < len(self.fc_relus):
        g = self.fc_relus[i].backward(g)
    g = self.fcs[i].backward(g)
g = g.reshape(self.maps)
for conv, relu, pool in reversed(list(zip(self.convs, self.relus, self.pools))):
    g = conv.backward(relu.backward(pool.backward(g)))
return g"""],
    "dropconnect": ["""\
self.x, self.M = x, np.ones_like(self.W.data)
if self.training:
    self.M = (self.rng.random(self.W.data.shape) < self.keep_prob) / self.keep_prob
self.W_eff = self.W.data * self.M
return x @ self.W_eff + self.b.data""", """\
self.W.grad += (self.x.T @ dout) * self.M
self.b.grad += dout.sum(axis=0)
return dout @ self.W_eff.T"""],
    "dropout2d": ["""\
if not self.training:
    self.mask = None
    return x
self.mask = (self.rng.random((*x.shape[:2], 1, 1)) < self.keep_prob) / self.keep_prob
return x * self.mask""", "return dout if self.mask is None else dout * self.mask"],
    "residual": ["return x + self.fc2.forward(self.relu.forward(self.fc1.forward(x)))",
                 "return dout + self.fc1.backward(self.relu.backward(self.fc2.backward(dout)))"],
    "block": ["""\
h = x + self.attn.forward(self.ln1.forward(x))
return h + self.mlp.forward(self.ln2.forward(h))""", """\
dh = dout + self.ln2.backward(self.mlp.backward(dout))
return dh + self.ln1.backward(self.attn.backward(dh))"""],
    "softmax": ["""\
e = np.exp(x - x.max(axis=-1, keepdims=True))
self.y = e / e.sum(axis=-1, keepdims=True)
return self.y""", "return self.y * (dout - (dout * self.y).sum(axis=-1, keepdims=True))"],
    "warmup_cosine": ["""\
if step < warmup:
    return lr * (start_factor + (1 - start_factor) * step / warmup)
T, t = max(total_steps - warmup, 1), step - warmup
return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * t / T)) / 2"""],
    "batchnorm": ["""\
if self.training:
    n = len(x)
    mu, var = x.mean(axis=0), x.var(axis=0)
    self.running_mean[...] = (1 - self.momentum) * self.running_mean + self.momentum * mu
    self.running_var[...] = ((1 - self.momentum) * self.running_var
                             + self.momentum * var * n / (n - 1))
else:
    mu, var = self.running_mean, self.running_var
self.std = np.sqrt(var + self.eps)
self.xhat = (x - mu) / self.std
self.batch = self.training
return self.gamma.data * self.xhat + self.beta.data""", """\
self.gamma.grad += (dout * self.xhat).sum(axis=0)
self.beta.grad += dout.sum(axis=0)
g = dout * self.gamma.data
if not self.batch:
    return g / self.std
return (g - g.mean(axis=0) - self.xhat * (g * self.xhat).mean(axis=0)) / self.std"""],
    "dropout": ["""\
if not self.training:
    self.mask = None
    return x
self.mask = (self.rng.random(x.shape) < self.keep_prob) / self.keep_prob
return x * self.mask""", "return dout if self.mask is None else dout * self.mask"],
}


SOLUTIONS["adamw"] = ["p *= 1 - self.lr * self.wd\n" + SOLUTIONS["adam"][0]]


def solve(code: str, bodies: list[str]) -> str:
    """The stub with each ``raise NotImplementedError(...)`` replaced by a body, in order."""
    lines = code.splitlines(keepends=True)
    raises = [i for i, line in enumerate(lines) if line.strip().startswith("raise NotImplementedError")]
    assert len(raises) == len(bodies), "a solution for every body of the stub"
    for i, body in reversed(list(zip(raises, bodies))):
        indent = re.match(r"\s*", lines[i]).group(0)
        lines[i] = "".join(f"{indent}{b}\n" for b in body.splitlines())
    return "".join(lines)


def test_every_exercise_has_a_solution_and_names_what_exists():
    assert set(SOLUTIONS) == set(exercises.EXERCISES)
    from dlx import checks
    from dlx.checks import inits, losses
    from dlx.nn.activations import ACTIVATIONS
    from dlx.nn.models import MODELS
    from dlx.optim.optimizers import OPTIMIZERS
    from dlx.optim.regularizers import REGULARIZERS
    from dlx.optim.schedules import SCHEDULES

    known = {"model": MODELS, "regularizer": REGULARIZERS,
             "schedule": {**SCHEDULES, "warmup_cosine": None},  # dlx's option: warm cosine
             "optimizer": OPTIMIZERS, "loss": losses.REFERENCES, "init": inits.SPECS,
             "activation": ACTIVATIONS,
             "layer": checks.LAYERS}  # a kind of layer dlx check knows by its class's name
    for ex in exercises.EXERCISES.values():
        assert ex.reference in known[ex.group], ex.name
        assert ex.days  # its experiment is one of the plan's
        compile(ex.code, ex.module, "exec")


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """An activated workspace, as every dlx command run inside it has it."""
    import sys

    from dlx import workspace

    assert CLI(tmp_path)("init", "ws").returncode == 0
    folder = tmp_path / "ws"
    monkeypatch.setenv("DLX_WORKSPACE", str(folder))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("DLX_RUNS_DIR", str(folder / "runs"))
    workspace.activate(folder)
    yield folder
    for name in [m for m in sys.modules if m == "mine" or m.startswith("mine.")]:
        del sys.modules[name]


def _check(ws, ex):
    """Every check of the exercise; the first failing result, else the last."""
    import importlib
    import sys

    from dlx import checks

    for name in [m for m in sys.modules if m == "mine" or m.startswith("mine.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    results = [checks.run([command.removeprefix("dlx check ")])[0] for command in ex.checks]
    return next((r for r in results if not r.passed), results[-1])


@pytest.mark.parametrize("name", list(exercises.EXERCISES))
def test_stub_is_not_implemented_and_a_solution_passes(ws, name):
    ex = exercises.EXERCISES[name]
    written = exercises.start(ws, name)
    assert {p.relative_to(ws).as_posix() for p in written} == set(exercises.files(ex))
    assert exercises.status(ws, ex) == exercises.NOT_IMPLEMENTED

    result = _check(ws, ex)
    assert not result.passed and result.failed == exercises.NOT_IMPLEMENTED
    assert f"{ex.module}:" in result.diagnosis and "NotImplementedError" in result.diagnosis

    (ws / ex.module).write_text(solve(ex.code, SOLUTIONS[name]))
    assert exercises.status(ws, ex).startswith("not checked")  # changed since its last check
    result = _check(ws, ex)
    assert result.passed, (result.failed, result.diagnosis, result.rows)
    assert ("torch", "differs") not in result.stages, result  # torch, where it is, agrees
    assert exercises.status(ws, ex) == "passing"

    solved = (ws / ex.module).read_text()
    (ws / ex.module).write_text(solved + "\n# edited\n")
    assert exercises.status(ws, ex).startswith("not checked")  # held for the old bytes
    (ws / ex.module).write_text(solved)
    assert exercises.status(ws, ex) == "passing"  # the edit undone: its verdict found again


def test_a_wrong_solution_shows_the_stage_it_fails_at(ws):
    ex = exercises.EXERCISES["adam"]
    exercises.start(ws, "adam")
    wrong = SOLUTIONS["adam"][0].replace("m_hat = m / (1 - self.beta1 ** self.t)", "m_hat = m") \
        .replace("v_hat = v / (1 - self.beta2 ** self.t)", "v_hat = v")
    (ws / ex.module).write_text(solve(ex.code, [wrong]))
    result = _check(ws, ex)
    assert result.failed == "1 fixed inputs" and "bias correction" in result.diagnosis
    assert exercises.status(ws, ex) == "failing at stage 1 fixed inputs"
    entry = store.lookup(ws, ex.module, "Adam", store.digest((ws / ex.module).read_bytes()))
    assert entry["command"] == "dlx check optimizer=my_adam" and not entry["passed"]
    (ws / ex.module).write_text(solve(ex.code, [SOLUTIONS["adam"][0].replace("self.beta1 * m",
                                                                             "beta1 * m")]))
    result = _check(ws, ex)  # the learner's own exception: a verdict, with their frames
    assert result.failed == "your code raised" and "NameError" in result.diagnosis
    assert "mine/adam.py" in result.trace and exercises.status(ws, ex) == "raises an exception"


def test_start_writes_nothing_over_the_learners_files(ws):
    (ws / "conf" / "optimizer").mkdir(parents=True, exist_ok=True)
    (ws / "conf" / "optimizer" / "my_adam.yaml").write_text("mine: 1\n")
    with pytest.raises(UsageError, match="my_adam.yaml exists"):
        exercises.start(ws, "adam")
    assert not (ws / "mine" / "adam.py").exists()  # all or nothing
    assert (ws / "conf" / "optimizer" / "my_adam.yaml").read_text() == "mine: 1\n"
    with pytest.raises(UsageError, match="did you mean adam"):
        exercises.get("adma")


def test_a_broken_store_is_as_none(ws):
    exercises.start(ws, "sgd")
    ex = exercises.EXERCISES["sgd"]
    (ws / ex.module).write_text(solve(ex.code, SOLUTIONS["sgd"]))
    (ws / store.FILE).parent.mkdir(exist_ok=True)
    (ws / store.FILE).write_text("{not json")
    assert exercises.status(ws, ex) == "not checked"
    assert _check(ws, ex).passed
    assert exercises.status(ws, ex) == "passing"


def test_cli_list_start_and_check(tmp_path):
    assert CLI(tmp_path)("init", "ws").returncode == 0
    cli = CLI(tmp_path / "ws")
    r = cli("exercise", "start", "relu")
    assert r.returncode == 0, r.stderr
    assert "dlx check model.activation=my_relu" in r.stderr
    r = cli("check", "model.activation=my_relu")
    assert r.returncode == 1 and r.stderr == ""
    assert r.stdout.strip().count("\n") == 0  # one line
    assert "not implemented yet: mine/relu.py:" in r.stdout
    r = cli("exercise", "list")
    assert r.returncode == 0
    assert re.search(r"^relu +series +activation .* not implemented yet$", r.stdout, re.M)
    assert re.search(r"^adam +10-12 +optimizer .* not started$", r.stdout, re.M)
    assert_one_error_line(cli("exercise", "start", "nope"), "no exercise 'nope'")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert_one_error_line(CLI(outside)("exercise", "start", "adam"), "dlx init")
    assert list(outside.iterdir()) == []


def test_the_readmes_exercise_session_is_what_the_commands_print(tmp_path):
    """The README's console block, command by command (its /home/me/my-dlx is the workspace)."""
    from tests.conftest import REPO

    text = (REPO / "README.md").read_text()
    block = re.search(r"```console\n(\$ dlx exercise start adam\n.*?)```", text, re.S).group(1)
    assert CLI(tmp_path)("init", "my-dlx").returncode == 0
    cli = CLI(tmp_path / "my-dlx")
    for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
        command, *shown = chunk.splitlines()
        r = cli(*command.split()[1:])
        printed = (r.stdout + r.stderr).replace(str(tmp_path), "/home/me").splitlines()
        shown = [line for line in shown if line != "..."]
        missing = [line for line in shown if line not in printed]
        assert not missing, (command, missing, printed)


def test_every_run_command_composes_each_of_its_arms(ws):
    """What `start` prints after `dlx check`: each arm of the sweep (dlx's and yours) is a valid
    `dlx run` configuration in a workspace holding the exercise's files."""
    import itertools

    from dlx.errors import Unavailable
    from dlx.gradcheck import compose

    for ex in exercises.EXERCISES.values():
        exercises.start(ws, ex.name)
        if ex.run is None:
            continue
        (ws / ex.module).write_text(solve(ex.code, SOLUTIONS[ex.name]))  # as after its check
        words = ex.run.split()[2:]
        assert ex.run.startswith("dlx run") and (ex.option in ex.run)
        args = [w for w in words if w != "-m"]
        if "-m" not in words:
            assert not any("," in a for a in args), ex.run
        choices = [[f"{w.partition('=')[0]}={v}" for v in re.split(r",(?![^\[]*\])",
                                                                 w.partition("=")[2])]
                   for w in args]  # a comma inside [...] is a list's, not the sweep's
        for arm in itertools.product(*choices):
            try:
                compose(list(arm))
            except Unavailable as e:  # the real data set is not here (CI's first step)
                assert "DLX_DATA_DIR" in str(e)  # composed; only its data is missing


def test_an_activation_given_as_a_layer_is_pointed_to_its_check(ws):
    from dlx import checks

    exercises.start(ws, "relu")
    with pytest.raises(UsageError, match="dlx check model.activation=NAME"):
        checks.run(["layer=mine.relu.ReLU"])


NET = '''\
import numpy as np

from dlx.nn import Module, Parameter


class NoMask(Module):
    """A two-layer net whose backward forgot ReLU's mask."""

    def __init__(self, spec, hidden=(16,)):
        D, H, K = spec.shape[0], hidden[0], spec.n_out
        self.W1 = Parameter(np.zeros((D, H)), "fc1.W")
        self.b1 = Parameter(np.zeros(H), "fc1.b", decay=False)
        self.W2 = Parameter(np.zeros((H, K)), "fc2.W")
        self.b2 = Parameter(np.zeros(K), "fc2.b", decay=False)

    def forward(self, x):
        self.x = x
        self.z1 = x @ self.W1.data + self.b1.data
        self.h1 = np.maximum(self.z1, 0)
        return self.h1 @ self.W2.data + self.b2.data

    def backward(self, dout):
        self.W2.grad += self.h1.T @ dout
        self.b2.grad += dout.sum(axis=0)
        self.dh1 = dout @ self.W2.data.T
        self.dz1 = self.dh1
        self.W1.grad += self.x.T @ self.dz1
        self.b1.grad += self.dz1.sum(axis=0)
        return self.dz1 @ self.W1.data.T
'''


def test_the_readmes_model_check_is_what_the_command_prints(tmp_path):
    from tests.conftest import REPO

    assert CLI(tmp_path)("init", "ws").returncode == 0
    ws = tmp_path / "ws"
    (ws / "mine" / "net.py").write_text(NET)
    (ws / "conf" / "model" / "nomask.yaml").write_text(
        "_target_: mine.net.NoMask\nreference: mlp\nhidden: [16]\n")
    text = (REPO / "README.md").read_text()
    block = re.search(r"```console\n\$ dlx check model=nomask\n(.*?)```", text, re.S).group(1)
    printed = CLI(ws)("check", "model=nomask")
    assert printed.returncode == 1 and printed.stderr == ""
    lines = printed.stdout.splitlines()
    missing = [line for line in block.splitlines() if line != "..." and line not in lines]
    assert not missing, (missing, lines)


def test_a_two_layer_net_that_does_not_flatten_fails_on_images(ws):
    """It passes on the default data's feature vectors; MNIST's images would break it."""
    ex = exercises.EXERCISES["two_layer_net"]
    exercises.start(ws, ex.name)
    forward, backward = SOLUTIONS[ex.name]
    unflat = forward.replace("self.x = x.reshape(len(x), -1)", "self.x = x")
    (ws / ex.module).write_text(solve(ex.code, [unflat, backward]))
    result = _check(ws, ex)
    assert result.failed == "1 fixed inputs (images)" and "flatten x to (N, D)" in result.diagnosis


def test_a_deep_mlps_slip_is_named_in_every_layer_it_is_made(ws):
    """tanh's derivative fed its output again, or its input, in a loop that keeps its arrays in
    lists: the kept lists are compared (self.hs[i]), and the slip is named in every tanh layer
    (a loop makes it in each); a slip no catalogue names is placed between the layers whose
    gradients still match."""
    ex = exercises.EXERCISES["mlp"]
    exercises.start(ws, "mlp")
    solved = solve(ex.code, SOLUTIONS["mlp"])
    twice = solved.replace("g * (1 - h ** 2)", "g * (1 - np.tanh(h) ** 2)")
    (ws / ex.module).write_text(twice)
    result = _check(ws, ex)
    assert result.failed == "1 fixed inputs", result
    assert "your tanh's derivative applies tanh to its output again" in result.diagnosis
    assert "layer 2 (Tanh)'s backward, layer 4 (Tanh)'s backward" in result.diagnosis
    assert any(r.name.endswith("~ self.hs[1]") and r.ok for r in result.rows)
    forward, backward = SOLUTIONS["mlp"]
    forward = forward.replace("self.hs = [h]", "self.hs, self.zs = [h], [h]").replace(
        "    if i < self.L:", "    self.zs.append(h)  # the pre-activation\n    if i < self.L:")
    from_input = solve(ex.code, [forward, backward.replace("g * (1 - h ** 2)",
                                                           "g * (1 - self.zs[i - 1] ** 2)")])
    (ws / ex.module).write_text(from_input)
    result = _check(ws, ex)
    assert "your tanh's derivative is written with its input z (1 - z^2)" in result.diagnosis, \
        result
    cubed = solved.replace("g * (1 - h ** 2)", "g * (1 - h ** (2 if i < 3 else 3))")
    (ws / ex.module).write_text(cubed)  # the top tanh's backward only, named by nothing
    result = _check(ws, ex)
    assert "layer 5 (Linear fc3)'s gradients match and layer 3 (Linear fc2)'s do not" in \
        result.diagnosis and "layer 4 (Tanh)'s backward" in result.diagnosis, result


def test_every_exercises_failure_points_to_where_its_maths_is_written_out():
    from dlx import checks
    from dlx.checks.result import Result

    for ex in exercises.EXERCISES.values():
        key = "bptt" if ex.name == "bptt" else ex.reference
        assert checks.SEE.get(key, "").startswith("https://"), ex.name
    result = Result(passed=False).fail("1 fixed inputs", "your step is wrong")
    result.see = checks.SEE["adam"]
    assert "  see: https://pytorch.org/docs/stable/generated/torch.optim.Adam.html" in \
        checks.render(result, "my_adam", "dlx's adam").splitlines()


@pytest.mark.parametrize("name", ["mlp", "linreg"])
def test_a_regression_exercises_run_command_runs_both_arms(tmp_path, name):
    """`dlx run -m model=mlp,my_mlp dataset=function ...`: the sweep's base config (the default
    model on regression data) is none of its members; both arms run."""
    assert CLI(tmp_path)("init", "ws").returncode == 0
    cli = CLI(tmp_path / "ws")
    ex = exercises.EXERCISES[name]
    assert cli("exercise", "start", name).returncode == 0
    (tmp_path / "ws" / ex.module).write_text(solve(ex.code, SOLUTIONS[name]))
    r = cli(*ex.run.split()[1:], "max_steps=3")
    assert r.returncode == 0, r.stderr
    assert "sweep of 2 runs: 2 completed" in r.stderr
