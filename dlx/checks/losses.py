"""`dlx check` for a loss: the learner's class against dlx's (torch's) loss of the same name, in
stages, stopping at the first that fails, then naming the failure mode.

0. interface: forward returns one finite number, backward an array shaped as the scores; the
   scores are left as they were; the same input gives the same value and gradient, and a
   backward answers the latest forward (nothing kept from an earlier call);
1. fixed inputs (float64): scores from ``linspace`` and fixed targets; the value and dL/dscores
   against the reference's; then scores 1000 times larger (up to 3000), where the reference stays finite;
2. gradients: backward against centred finite differences of the learner's own forward at every
   entry (float64, h = 1e-6): whether backward is forward's derivative, whatever forward is.

A failure is matched against relations to the reference: the batch size (summed instead of
averaged, or the 1/N left out of backward), 2 and 1/2 (the 1/2 (z - y)^2 convention), the sign,
a log base 2 (bits for nats), overflow where the reference stays finite (exp of a large logit
without the max taken out); an entropy's gradient taken with respect to p, not the scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from dlx.checks.result import GRAD_RTOL, RTOL, Result, Row, rel_error
from dlx.nn.losses import MSE, BCEWithLogits, Entropy, SoftmaxCrossEntropy

N = 6              # examples in the fixed batch


@dataclass(frozen=True)
class Reference:
    make: Callable
    scores: tuple[int, ...]          # the fixed scores' shape
    targets: Callable[[], np.ndarray]
    what: str


REFERENCES = {
    "bce": Reference(BCEWithLogits, (N, 1), lambda: np.array([1, 0, 0, 1, 1, 0]),
                     "binary cross-entropy of sigmoid(z), averaged over the batch"),
    "cross_entropy": Reference(SoftmaxCrossEntropy, (N, 4), lambda: np.array([0, 3, 1, 2, 1, 0]),
                               "cross-entropy of softmax(z), averaged over the batch"),
    "entropy": Reference(Entropy, (N, 4), lambda: np.array([0, 3, 1, 2, 1, 0]),
                         "the entropy of softmax(z) in nats, averaged over the batch; the "
                         "labels unused"),
    "mse": Reference(MSE, (N, 2), lambda: np.linspace(-1.0, 1.5, 2 * N).reshape(N, 2),
                     "mean of the squared errors over every entry"),
}


def fixed_scores(shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return scale * np.linspace(-3.0, 2.5, int(np.prod(shape))).reshape(shape)


def _value_and_grad(loss, z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    value = loss.forward(z, y)
    return value, loss.backward()


def interface(make: Callable, ref: Reference) -> str | None:
    z, y = fixed_scores(ref.scores), ref.targets()
    loss = make()
    kept = z.copy()
    value, grad = _value_and_grad(loss, z, y)
    if np.ndim(value) != 0:
        return (f"forward returned an array of shape {np.shape(value)}: it returns one number, "
                f"the mean over the batch")
    if grad is None or np.shape(grad) != z.shape:
        return (f"backward returned {'None' if grad is None else f'shape {np.shape(grad)}'}; the "
                f"scores have shape {z.shape}: dL/dscores has one entry per score")
    if not np.array_equal(z, kept):
        return "forward or backward changed the scores in place: they are the model's output, " \
               "which its own backward still needs"
    other = _value_and_grad(make(), fixed_scores(ref.scores, 0.5), y)
    again = _value_and_grad(loss, fixed_scores(ref.scores, 0.5), y)
    if float(again[0]) != float(other[0]) or not np.array_equal(again[1], other[1]):
        return ("a second forward and backward on the same loss object gave a result different "
                "from a fresh one's: something is kept from the earlier call (a sum that grows, "
                "a cache not replaced)")
    return None


def relation(mine: float, theirs: float, what: str, n: int) -> str | None:
    """A constant relation of the learner's ``what`` to the reference's."""
    if theirs == 0 or not np.isfinite(mine):
        return None
    c = mine / theirs
    for value, say in ((n, f"{n} times the reference's: summed over the batch where the mean is "
                          f"taken (N = {n})"),
                       (1 / n, f"the reference's divided by the batch size {n} once more"),
                       (0.5, "half the reference's (the 1/2 (z - y)^2 convention, or a 1/2 "
                             "too many)"),
                       (2.0, "twice the reference's"),
                       (1 / np.log(2), "the reference's in bits: a log base 2 where dlx's "
                                       "losses take the natural log (nats)"),
                       (-1.0, "the reference's with the sign flipped")):
        if np.isclose(c, value, rtol=1e-6):
            return f"your {what} is {say}"
    return None


def grad_relation(mine: np.ndarray, theirs: np.ndarray, n: int) -> str | None:
    keep = np.abs(theirs) > 1e-12 * np.abs(theirs).max()
    if not keep.any() or not np.isfinite(mine).all():
        return None
    ratio = mine[keep] / theirs[keep]
    if not np.allclose(ratio, ratio[0], rtol=1e-6):
        return None
    said = relation(float(ratio[0]), 1.0, "backward", n)
    if said and "summed over the batch" in said:
        return (f"your backward is {n} times the reference's: the 1/N of the mean is missing "
                f"from dL/dscores (N = {n})")
    return said


def _misses_the_target(grad: np.ndarray, theirs: np.ndarray, y: np.ndarray) -> bool:
    """grad - theirs = onehot(y) / N: the probabilities without the true class's -1."""
    onehot = np.zeros_like(theirs)
    if theirs.shape[1] == 1:
        onehot[:, 0] = y
    else:
        onehot[np.arange(len(y)), y] = 1.0
    return grad.shape == theirs.shape and np.allclose(grad - theirs, onehot / len(y),
                                                      rtol=1e-6, atol=1e-12)


def _without_softmax(grad: np.ndarray, z: np.ndarray) -> bool:
    """An entropy's gradient with respect to p, -(log p + 1) / N, given where dH/dz belongs."""
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    want = -(logp + 1) / len(z)
    return grad.shape == want.shape and rel_error(grad, want) <= RTOL


def numerical_grad(make: Callable, z: np.ndarray, y: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[i] += h
        zm[i] -= h
        grad[i] = (float(make().forward(zp, y)) - float(make().forward(zm, y))) / (2 * h)
    return grad


def check(make: Callable, name: str) -> Result:
    """Stages 0-2 of the learner's loss class ``make`` against the reference ``name``."""
    ref = REFERENCES[name]
    result = Result(passed=False)
    problem = interface(make, ref)
    if problem:
        return result.fail("0 interface", problem)
    result.stages.append(("0 interface", "passed"))

    z, y = fixed_scores(ref.scores), ref.targets()
    value, grad = _value_and_grad(make(), z, y)
    theirs, their_grad = _value_and_grad(ref.make(), z, y)
    big = fixed_scores(ref.scores, 1000.0)
    with np.errstate(all="ignore"):
        big_value, big_grad = _value_and_grad(make(), big, y)
    big_theirs, big_their_grad = _value_and_grad(ref.make(), big, y)
    v_err, g_err = rel_error(value, theirs), rel_error(grad, their_grad)
    numeric = numerical_grad(make, z, y)
    fd_err = rel_error(grad, numeric)
    result.rows = [Row(0, "value", abs(float(value) - theirs), v_err, v_err <= RTOL),
                   Row(0, "dL/dscores", float(np.abs(grad - their_grad).max()), g_err,
                       g_err <= RTOL),
                   Row(0, "value at scores x 1000", abs(float(big_value) - big_theirs),
                       rel_error(big_value, big_theirs),
                       rel_error(big_value, big_theirs) <= RTOL),
                   Row(0, "dL/dscores at scores x 1000",
                       float(np.abs(np.asarray(big_grad, float) - big_their_grad).max()),
                       rel_error(big_grad, big_their_grad),
                       rel_error(big_grad, big_their_grad) <= RTOL),
                   Row(0, "dL/dscores vs finite diff.", float(np.abs(grad - numeric).max()),
                       fd_err, fd_err <= GRAD_RTOL, GRAD_RTOL)]
    if v_err > RTOL or g_err > RTOL:
        result.stages.append(("1 fixed inputs", "failed"))
        result.failed = "1 fixed inputs"
        said = relation(float(value), theirs, "value", N) if v_err > RTOL else None
        grad_said = grad_relation(grad, their_grad, N) if g_err > RTOL else None
        consistent = fd_err <= GRAD_RTOL
        if said:
            result.diagnosis = said + (" (and your backward is its derivative)" if consistent
                                       else "")
        elif grad_said:
            result.diagnosis = grad_said + " (your value matches)" * (v_err <= RTOL)
        elif name == "entropy" and v_err <= RTOL and _without_softmax(grad, z):
            result.diagnosis = ("your backward is dH/dp = -(log p + 1) / N, the gradient with "
                                "respect to the probabilities: the softmax's Jacobian, from p "
                                "back to the scores, is missing")
            result.revisit = ("chain through p = softmax(z): dH/dz_j = sum_c dH/dp_c p_c "
                              "(delta_cj - p_j) = -p_j (log p_j + H)")
            return result
        elif name in ("bce", "cross_entropy") and _misses_the_target(grad, their_grad, y):
            result.diagnosis = ("your dL/dscores misses the target's term: it is p / N where "
                                "(p - onehot(y)) / N belongs (the -1 at each example's true "
                                "class)")
        elif v_err > RTOL:
            result.diagnosis = (f"your value {float(value):.6g} is not the reference's "
                                f"{theirs:.6g} ({ref.what})")
        else:
            result.diagnosis = "your value matches, your dL/dscores does not"
        if v_err <= RTOL and not consistent:
            result.revisit = ("backward is not forward's derivative (it differs from finite "
                              "differences of your own forward): derive dL/dz entry by entry")
        elif v_err > RTOL and consistent:
            result.revisit = ("backward is your forward's derivative: the forward is what to "
                              f"compare with the definition ({ref.what})")
        return result
    if not np.isfinite(big_value):
        return result.fail(
            "1 fixed inputs", f"at large scores (|z| up to {np.abs(big).max():g}) your loss is "
            f"not finite where the reference's is {big_theirs:.6g}: an exp of a large score "
            f"overflowed in your forward", "take the largest logit out before exponentiating "
            "(log-sum-exp: log sum exp(z) = m + log sum exp(z - m)), or for a sigmoid use "
            "max(z, 0) - z y + log1p(exp(-|z|))")
    if not np.isfinite(np.asarray(big_grad, float)).all():
        return result.fail(
            "1 fixed inputs", f"at large scores (|z| up to {np.abs(big).max():g}) your forward "
            f"is finite but your backward is not: an exp of a large score overflowed in your "
            f"backward (exp(z) / (1 + exp(z)) is inf / inf)", "compute the probabilities "
            "without exp of a large positive number: sigmoid(z) = 1 / (1 + exp(-z)) (or "
            "exp(z - m) / sum exp(z - m) for softmax, m the row's maximum)")
    if rel_error(big_value, big_theirs) > RTOL:
        result.notes.append(f"at scores x 1000 your value differs from the reference's by "
                            f"{rel_error(big_value, big_theirs):.1e} (relative): finite, but "
                            f"less accurate far from zero")
    result.stages.append(("1 fixed inputs", "passed"))
    if fd_err > GRAD_RTOL:
        return result.fail("2 gradients", "your backward is not your forward's derivative")
    result.stages.append(("2 gradients", "passed"))
    result.passed = True
    return result
