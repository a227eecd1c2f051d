"""`dlx check layer=mine.dropout.Dropout`: the learner's inverted dropout, built as
``Dropout(keep_prob, rng)``. Its mask is random, so it is checked by what every correct dropout
does, not entry by entry against dlx's:

0. interface: forward keeps x's shape and leaves x alone; backward returns dx shaped as x;
1. fixed inputs (x from ``linspace``, all nonzero; keep_prob 0.8; 20,000 entries):
   - every output entry is 0 or x / keep_prob (the inverted scaling: E[out] = x);
   - the fraction kept is keep_prob, within 5 binomial standard deviations;
   - backward's dx is dout through the forward's mask: dout / keep_prob where kept, 0 elsewhere;
   - two forwards draw two masks; two layers given the same seeded rng draw the same one (the
     masks come from the ``rng`` dlx passes: runs are reproducible);
   - in eval mode (``.eval()``) out = x and dx = dout; at keep_prob 1, out = x.

Each failure names the mistake: no 1/keep_prob scaling (or keep_prob multiplied in), keep and
drop probabilities swapped, a mask re-drawn in backward or none applied there, one mask reused
for every batch, dropping in eval mode, numpy's global generator instead of the layer's.

`layer=mine.dropout.Dropout2d` (spatial dropout, Tompson et al. 2015) is checked alike on
(N, C, H, W) maps, a draw per (example, channel) the unit: it names single entries dropped, a
mask shared by the batch and whole examples dropped.
"""

from __future__ import annotations

import numpy as np

from dlx.checks.result import Result, Row

KEEP = 0.8
SHAPE = (200, 100)
MAPS = (40, 50, 2, 5)  # spatial dropout's (N, C, H, W): 2,000 maps of 10 entries


def _x(shape=SHAPE) -> np.ndarray:
    x = np.linspace(0.5, 2.0, int(np.prod(shape))).reshape(shape)
    return x * np.where(np.arange(x.size).reshape(shape) % 3 == 0, -1.0, 1.0)  # signs mixed


def _dout(shape=SHAPE) -> np.ndarray:
    return np.cos(np.linspace(0.0, 40.0, int(np.prod(shape)))).reshape(shape) + 1.5


def _make(cls, keep: float = KEEP, seed: int = 0):
    return cls(keep, np.random.default_rng(seed))


def _prop(name: str, ok: bool) -> Row:
    """A property that holds or not: 0 or 1 in both columns, nothing tolerated."""
    return Row(0, name, float(not ok), float(not ok), ok, 0.0)


def _fail(result: Result, title: str, revisit: str, rows: list[Row]) -> Result:
    result.rows = rows
    return result.fail("1 fixed inputs", title, revisit)


def check(cls, spatial: bool = False) -> Result:
    """Inverted dropout; ``spatial``: Dropout2d's, whole (example, channel) maps of (N, C, H, W)
    kept or dropped together."""
    result = Result(passed=False)
    shape = MAPS if spatial else SHAPE
    layer, x, dout = _make(cls), _x(shape), _dout(shape)
    kept_x = x.copy()
    out = np.asarray(layer.forward(x))
    if out.shape != shape:
        return result.fail("0 interface", f"forward returned shape {out.shape} for x of shape "
                                          f"{shape}: dropout keeps the shape")
    if not np.array_equal(x, kept_x):
        return result.fail("0 interface", "forward changed its input in place (x *= mask): the "
                                          "layer before still needs it")
    dx = layer.backward(dout.copy())
    if dx is None or np.shape(dx) != shape:
        return result.fail("0 interface", f"backward returned "
                           f"{'None' if dx is None else np.shape(dx)}; dx has x's shape {shape}")
    result.stages.append(("0 interface", "passed"))

    ratio = out / x
    kept = ratio != 0
    units = kept.any(axis=(2, 3)) if spatial else kept  # what one draw keeps or drops
    if spatial:
        said = _maps(kept, units)
        if said:
            return _fail(result, *said, [_prop("one draw per (example, channel) map", False)])
    frac = float(units.mean())
    sd = (KEEP * (1 - KEEP) / units.size) ** 0.5
    rows = [Row(0, "fraction kept", abs(frac - KEEP), abs(frac - KEEP) / KEEP,
                abs(frac - KEEP) <= 5 * sd, 5 * sd / KEEP)]
    scale = np.unique(np.round(ratio[kept], 12)) if kept.any() else np.array([])
    if not (len(scale) == 1 and np.isclose(scale[0], 1 / KEEP, rtol=1e-12)):
        err = float(np.abs(ratio[kept] - 1 / KEEP).max()) if kept.any() else float("inf")
        rows.insert(0, Row(0, "kept out / x = 1/keep_prob", err, err * KEEP, False))
        if len(scale) == 1 and np.isclose(scale[0], 1.0):
            return _fail(result, "your kept entries are x itself: no 1/keep_prob scaling",
                         "inverted dropout divides the kept values by keep_prob in training so "
                         "that E[out] = x, and eval needs no rescaling", rows)
        if len(scale) == 1 and np.isclose(scale[0], KEEP):
            return _fail(result, "your kept entries are x * keep_prob: that is the scaling of "
                         "eval time in the original (non-inverted) dropout",
                         "inverted dropout divides by keep_prob in training: E[out] = "
                         "keep_prob * x / keep_prob = x", rows)
        return _fail(result, "your output entries are not 0 or x / keep_prob",
                     "out = x * m / keep_prob with m ~ Bernoulli(keep_prob) per entry", rows)
    rows.insert(0, Row(0, "kept out / x = 1/keep_prob", 0.0, 0.0, True))
    if not rows[-1].ok:
        if abs(frac - (1 - KEEP)) <= 5 * sd:
            return _fail(result, f"your layer keeps {frac:.3f} of the entries at keep_prob "
                         f"{KEEP}: keep and drop probabilities are swapped",
                         "keep_prob is the probability of keeping an entry: m = (u < keep_prob) "
                         "for u ~ U[0, 1)", rows)
        return _fail(result, f"your layer keeps {frac:.3f} of the entries at keep_prob {KEEP}",
                     "m ~ Bernoulli(keep_prob): each entry kept with probability keep_prob",
                     rows)
    expected = np.where(kept, dout / KEEP, 0.0)
    err = float(np.abs(dx - expected).max())
    rows.append(Row(0, "dx = dout * mask / keep_prob", err, err / float(np.abs(expected).max()),
                    err <= 1e-12 * float(np.abs(expected).max())))
    if not rows[-1].ok:
        same = np.array_equal(np.asarray(dx) != 0, kept)
        if np.allclose(dx, dout):
            title = "your backward passes dout through unmasked"
        elif not same and np.isclose(float((np.asarray(dx) != 0).mean()), KEEP, atol=5 * sd):
            title = "your backward draws a new mask: dx must go through the forward's mask"
        else:
            title = "your backward is not dout through the forward's mask and scaling"
        return _fail(result, title, "out = x * m / keep_prob, so dx = dout * m / keep_prob with "
                     "the same m: keep the mask on self in forward", rows)

    again = np.asarray(layer.forward(x))
    fresh = not np.array_equal(again != 0, kept)
    rows.append(_prop("a new mask per forward", fresh))
    if not fresh:
        return _fail(result, "your layer uses the same mask at every forward",
                     "draw a new mask at each forward: each batch drops its own units", rows)
    twin = np.asarray(_make(cls).forward(x))
    same_seed = np.array_equal(twin, out)
    rows.append(_prop("masks from the rng given", same_seed))
    if not same_seed:
        return _fail(result, "two layers given the same seeded rng drew different masks: yours "
                     "does not draw from the rng dlx passes (np.random.* uses a global state)",
                     "draw with self.rng (e.g. self.rng.random(x.shape) < keep_prob): then a run "
                     "is reproducible from its seed", rows)
    layer.eval()
    ev, edx = np.asarray(layer.forward(x)), layer.backward(dout.copy())
    ok = np.array_equal(ev, x) and np.array_equal(np.asarray(edx), dout)
    rows.append(Row(0, "eval: out = x, dx = dout", float(np.abs(ev - x).max()), 0.0, ok))
    if not ok:
        return _fail(result, "your layer changes its input in eval mode",
                     "after .eval() (self.training False) dropout is the identity: the 1/keep_prob "
                     "of training already keeps E[out] = x", rows)
    one = np.asarray(_make(cls, 1.0).forward(x))
    rows.append(Row(0, "keep_prob 1: out = x", float(np.abs(one - x).max()), 0.0,
                    np.array_equal(one, x)))
    if not rows[-1].ok:
        return _fail(result, "at keep_prob 1 your layer changes its input",
                     "keeping every entry is the identity", rows)
    result.rows = rows
    result.stages.append(("1 fixed inputs", "passed"))
    result.notes.append(f"not compared entry by entry with dlx's "
                        f"{'Dropout2d' if spatial else 'Dropout'} (the mask is random); stage 2 "
                        f"not run: dx is checked against the forward's own mask above")
    if spatial:
        result.notes.append(f"checked on x of shape {MAPS} (N, C, H, W): whole maps kept or "
                            f"dropped, one draw per example and channel")
    result.passed = True
    return result


def _maps(kept: np.ndarray, units: np.ndarray) -> tuple[str, str] | None:
    """Spatial dropout's own mistakes: single entries dropped, one mask shared by the batch,
    whole examples dropped."""
    revisit = ("spatial dropout draws m ~ Bernoulli(keep_prob) of shape (N, C, 1, 1): one per "
               "example and channel, broadcast over H and W")
    if not np.array_equal(units, kept.all(axis=(2, 3))):
        return ("your layer drops single entries of a map: spatial dropout keeps or drops a "
                "channel's whole map (its neighbouring pixels are too correlated for single "
                "drops to regularize)", revisit)
    if (units == units[:1]).all():
        return "your mask is shared by every example of the batch (drawn per channel only)", revisit
    if (units.all(axis=1) == units.any(axis=1)).all():
        return "your layer drops whole examples: every channel of an example shares one draw", \
            revisit
    return None
