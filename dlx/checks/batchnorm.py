"""`dlx check layer=mine.batchnorm.BatchNorm`: the learner's batch normalization of (N, D)
features against dlx's BatchNorm (torch's conventions), in float64, in stages:

0. interface: built as ``BatchNorm(D)`` (``eps``, ``momentum`` at their defaults), with gamma
   and beta among its Parameters (D,) each; forward keeps x's shape; backward returns dx shaped
   as x and adds dgamma, dbeta into the Parameters' .grad;
1. fixed inputs: x, gamma, beta and dout from ``linspace``; in training mode out, dx, dgamma,
   dbeta and the running mean and variance after two batches; then in eval mode (``.eval()``)
   out and dx for a third batch, which use the running estimates;
2. gradients: dx, dgamma and dbeta against centred finite differences of sum(out * dout).

A failure is matched against a catalogue of known mistakes, each a switch on the reference:
the batch variance with N - 1 (Bessel's correction belongs to the running estimate only), a
backward that treats the batch statistics as constants (or keeps only the mean's term), the
running average's momentum read the Keras way, batch statistics in eval mode, eps outside the
square root; a running variance without Bessel's correction (an accepted variant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlx.checks.linear import PRE, build, overwritten
from dlx.checks.result import GRAD_RTOL, RTOL, Result, Row, rel_error
from dlx.nn.norm import BatchNorm

N, D = 8, 5


@dataclass(frozen=True)
class Mistake:
    key: str
    severity: str          # "bug" or "variant"
    title: str
    revisit: str
    options: dict          # the switches on _Switched


class _Switched(BatchNorm):
    """dlx's BatchNorm with one switch thrown (the catalogue's entries)."""

    def __init__(self, n, unbiased=False, constant_stats=False, mean_term_only=False,
                 keras_momentum=False, eval_batch_stats=False, eps_outside=False,
                 running_biased=False, corrected_twice=False):
        super().__init__(n, dtype=np.float64)
        self.s = dict(unbiased=unbiased, constant_stats=constant_stats,
                      mean_term_only=mean_term_only, keras_momentum=keras_momentum,
                      eval_batch_stats=eval_batch_stats, eps_outside=eps_outside,
                      running_biased=running_biased, corrected_twice=corrected_twice)

    def forward(self, x):
        s = self.s
        batch = self.training or s["eval_batch_stats"]
        if batch:
            mean, var = x.mean(axis=0), x.var(axis=0, ddof=1 if s["unbiased"] else 0)
            if self.training:
                r = 1 - self.momentum if s["keras_momentum"] else self.momentum
                running = x.var(axis=0, ddof=1 if s["corrected_twice"] else 0) * (
                    1 if s["running_biased"] else N / (N - 1))
                self.running_mean.data[...] = (1 - r) * self.running_mean.data + r * mean
                self.running_var.data[...] = (1 - r) * self.running_var.data + r * running
        else:
            mean, var = self.running_mean.data, self.running_var.data
        self._std = np.sqrt(var) + self.eps if s["eps_outside"] else np.sqrt(var + self.eps)
        self._xhat = (x - mean) / self._std
        self._batch = batch
        return self.gamma.data * self._xhat + self.beta.data

    def backward(self, dout):
        g = self._affine_backward(dout, self._xhat)
        if not self._batch or self.s["constant_stats"]:
            return g / self._std
        if self.s["mean_term_only"]:
            return (g - g.mean(axis=0)) / self._std
        return (g - g.mean(axis=0) - self._xhat * (g * self._xhat).mean(axis=0)) / self._std


CATALOGUE = (
    Mistake("bn_unbiased", "bug", "your batch variance divides by N - 1: normalization uses the "
            "biased variance of the batch (divide by N)",
            "Bessel's N - 1 corrects an estimate of the population's variance: it belongs to the "
            "running estimate (torch), not to the normalization of this batch",
            {"unbiased": True}),
    Mistake("bn_corrected_twice", "bug", "your batch variance divides by N - 1, and your "
            "running estimate multiplies it by N / (N - 1) again: the normalization uses the "
            "biased variance (divide by N), and the running estimate corrects it once",
            "var = mean((x - mu)^2) for xhat; the running variance takes var * N / (N - 1)",
            {"unbiased": True, "corrected_twice": True}),
    Mistake("bn_constant_stats", "bug", "your backward treats the batch mean and variance as "
            "constants (dx = dout * gamma / std): they depend on every x of the batch",
            "differentiate through mu = mean(x) and var = mean((x - mu)^2): x reaches xhat "
            "directly, through mu and through var, three terms", {"constant_stats": True}),
    Mistake("bn_mean_term_only", "bug", "your backward has the mean's term but not the "
            "variance's: dx = (g - mean(g)) / std",
            "the variance depends on x too: its path through var adds a third term",
            {"mean_term_only": True}),
    Mistake("bn_keras_momentum", "bug", "your running average keeps `momentum` of the new batch "
            "the other way round: running = momentum * running + (1 - momentum) * batch (Keras's "
            "convention, momentum = 0.99)",
            "in torch's convention (dlx's) momentum = 0.1 is the weight of the newest batch: "
            "running = (1 - momentum) * running + momentum * batch", {"keras_momentum": True}),
    Mistake("bn_eval_batch_stats", "bug", "in eval mode your layer still normalizes with the "
            "batch's statistics: an example's output then depends on the others in its batch",
            "after .eval(), use the running mean and variance (self.training is False)",
            {"eval_batch_stats": True}),
    Mistake("bn_eps_outside", "bug", "eps added outside the square root, sqrt(var) + eps: "
            "the backward you wrote, (g - mean(g) - xhat mean(g xhat)) / std, is the derivative "
            "of sqrt(var + eps), where torch (and the paper) put it",
            "write std = sqrt(var + eps): the formula's derivation assumes it", {"eps_outside": True}),
    Mistake("bn_running_biased", "variant", "a running variance from the biased batch variance "
            "(torch multiplies by N / (N - 1))", "", {"running_biased": True}),
)


def _x(k: int) -> np.ndarray:
    """Batch k: features of different means and scales, not symmetric about their means."""
    base = np.linspace(-1.0, 1.5, N * D).reshape(N, D)
    return (base ** 2 + 0.3 * base) * np.linspace(0.5, 2.0, D) + np.linspace(-1, 1, D) + 0.2 * k


def _dout() -> np.ndarray:
    return np.cos(np.linspace(0.0, 5.0, N * D)).reshape(N, D)


def _affine(layer) -> tuple | str:
    """(gamma, beta) Parameters of the layer, by name where it says, else in order."""
    params = [p for p in layer.parameters() if p.data.shape == (D,)]
    if len(params) < 2:
        return (f"among its Parameters {[tuple(p.data.shape) for p in layer.parameters()]} "
                f"there are no gamma and beta of shape ({D},)")
    named = {k: next((p for p in params if any(w in p.name.lower() for w in words)), None)
             for k, words in (("gamma", ("gamma", "weight", "scale")),
                              ("beta", ("beta", "bias", "shift")))}
    if named["gamma"] is not None and named["beta"] is not None:
        return named["gamma"], named["beta"]
    return params[0], params[1]


def _running(layer) -> dict[str, np.ndarray]:
    """The layer's running mean and variance, found by name (Buffer or plain array)."""
    out = {}
    for name, value in vars(layer).items():
        data = value if isinstance(value, np.ndarray) else getattr(value, "data", None)
        if isinstance(data, np.ndarray) and data.shape == (D,) and "running" in name:
            out["running_var" if "var" in name else "running_mean"] = data.copy()
    return out


def trace(layer, parts) -> dict[str, np.ndarray]:
    """The named tensors of two training batches and one eval batch, in forward order."""
    gamma, beta = parts
    gamma.data[...] = np.linspace(0.5, 1.5, D)
    beta.data[...] = np.linspace(-0.2, 0.3, D)
    out = {}
    for k in (1, 2):
        for p in layer.parameters():  # not zero: a backward must add into .grad
            p.grad[...] = PRE
        y = layer.forward(_x(k).copy())
        dx = layer.backward(_dout())
        if k == 1:
            out.update({"train out": np.asarray(y), "train dx": np.asarray(dx),
                        "dgamma": gamma.grad - PRE, "dbeta": beta.grad - PRE})
    out.update({f"{k} (2 batches)": v for k, v in _running(layer).items()})
    layer.eval()
    out["eval out"] = np.asarray(layer.forward(_x(3).copy()))
    out["eval dx"] = np.asarray(layer.backward(_dout()))
    layer.train()
    return out


def numerical(layer, parts, x, dout, h=1e-6) -> dict[str, np.ndarray]:
    """Centred differences of sum(forward(x) * dout) in x, gamma and beta (training mode)."""
    def f():
        return float((layer.forward(x) * dout).sum())
    grads = {}
    for name, arr in (("dx", x), ("dgamma", parts[0].data), ("dbeta", parts[1].data)):
        g = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + h
            up = f()
            arr[i] = old - h
            g[i] = (up - f()) / (2 * h)
            arr[i] = old
        grads[name] = g
    return grads


def check(cls) -> Result:
    result = Result(passed=False)
    layer = build(cls, D)
    parts = _affine(layer)
    if isinstance(parts, str):
        return result.fail("0 interface", parts)
    x = _x(1)
    kept = x.copy()
    y = layer.forward(x)
    if np.shape(y) != x.shape:
        return result.fail("0 interface", f"forward returned shape {np.shape(y)} for x of shape "
                                          f"{x.shape}: normalization keeps the shape")
    if not np.array_equal(x, kept):
        return result.fail("0 interface", "forward changed its input in place (x -= mean ...): "
                                          "the layer before still needs it")
    dx = layer.backward(_dout())
    if dx is None or np.shape(dx) != x.shape:
        return result.fail("0 interface", f"backward returned "
                           f"{'None' if dx is None else np.shape(dx)}; dx has x's shape {x.shape}")
    if not _running(build(cls, D)):
        return result.fail("0 interface", "no running mean and variance found (attributes named "
                                          "running_mean and running_var): eval mode needs them")
    result.stages.append(("0 interface", "passed"))

    learner = build(cls, D)
    mine = trace(learner, _affine(learner))
    ref = _Switched(D)
    theirs = trace(ref, (ref.gamma, ref.beta))
    result.rows = [Row(0, k, float(np.abs(mine[k] - theirs[k]).max()) if k in mine else
                       float("inf"), rel_error(mine.get(k, np.zeros(0)), theirs[k]),
                       rel_error(mine.get(k, np.zeros(0)), theirs[k]) <= RTOL) for k in theirs]
    if all(r.ok for r in result.rows):
        result.stages.append(("1 fixed inputs", "passed"))
    else:
        for m in CATALOGUE:
            sw = _Switched(D, **m.options)
            twin = trace(sw, (sw.gamma, sw.beta))
            if all(rel_error(mine.get(k, np.zeros(0)), twin[k]) <= RTOL for k in twin):
                if m.severity == "variant":
                    result.variant = m.title
                    result.stages.append(("1 fixed inputs", "passed (a variant)"))
                    result.notes.append(f"accepted variant: {m.title}; your numbers are exactly "
                                        f"that variant's")
                    break
                return result.fail("1 fixed inputs", m.title, m.revisit)
        else:
            said = overwritten([(k[1:], mine[k], theirs[k]) for k in ("dgamma", "dbeta")])
            if said:
                return result.fail("1 fixed inputs", said, "self.gamma.grad += ... (and beta)")
            bad = next(r for r in result.rows if not r.ok)
            why = {"train out": "your training-mode forward is not gamma * (x - mean) / "
                                "sqrt(var + eps) + beta with the batch's mean and variance",
                   "train dx": "your forward matches; your dx does not",
                   "dgamma": "your dgamma is not the sum over the batch of dout * xhat",
                   "dbeta": "your dbeta is not the sum over the batch of dout",
                   "eval out": "your eval-mode forward does not use the running estimates as "
                               "dlx's does"}.get(bad.name, f"your {bad.name} differs from the "
                                                           f"reference's")
            return result.fail("1 fixed inputs", why, "the first row beyond tolerance is the "
                               "first quantity that differs, in forward order")
    x, dout = _x(1), _dout()
    learner = build(cls, D)
    parts = _affine(learner)
    parts[0].data[...] = np.linspace(0.5, 1.5, D)
    for p in learner.parameters():
        p.grad[...] = 0
    learner.forward(x.copy())
    dx = learner.backward(dout.copy())
    analytic = {"dx": dx, "dgamma": parts[0].grad.copy(), "dbeta": parts[1].grad.copy()}
    numeric = numerical(learner, parts, x.copy(), dout)
    rows = [Row(0, f"{k} vs finite differences", float(np.abs(analytic[k] - numeric[k]).max()),
                rel_error(analytic[k], numeric[k]), rel_error(analytic[k], numeric[k]) <= GRAD_RTOL,
                GRAD_RTOL) for k in analytic]
    result.rows += rows
    if not all(r.ok for r in rows):
        return result.fail("2 gradients", "your backward is not your forward's derivative")
    result.stages.append(("2 gradients", "passed"))
    result.notes.append("not checked: (N, C, H, W) inputs (per-channel statistics)")
    result.passed = True
    from dlx.checks import oracle  # torch's autograd of a training-mode batch norm
    from dlx.nn.norm import BatchNorm

    twin = BatchNorm(D, dtype=np.float64)
    twin.gamma.data[...], twin.beta.data[...] = parts[0].data, parts[1].data
    oracle.attach(result, oracle.module(learner, twin, [(parts[0], twin.gamma, False),
                                                        (parts[1], twin.beta, False)], x, dout))
    return result
