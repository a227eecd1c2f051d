"""`dlx check init=my_he_normal`: the learner's initializer ``(shape, rng, **options) -> array``
against dlx's of the same name. Its draws are random, so it is checked by the distribution it
draws from, not value by value:

0. interface: an array of the shape asked for, finite; its values come from the ``rng`` given
   (the same seed gives the same weights, another seed others: a run is reproducible from its
   seed and nothing else);
1. fixed inputs: a dense weight (fan_in, fan_out) = (400, 100), the same transposed, and a
   convolution kernel (C_out, C_in, k, k) = (64, 32, 3, 3), each against the reference's
   distribution: the mean (0 within 5 standard errors), the standard deviation (within 5
   standard errors of the formula's), and the family (normal or uniform, by the kurtosis: 3
   against 1.8).

A standard deviation that differs is matched against the formulas a learner writes by mistake:
fan_out (or the mean of the fans, or their sum) where the reference's fan belongs, torch's
(out, in) layout read for dlx's (in, out), a kernel's size left out of its fans, He's 2 for
LeCun's 1 (and back), the variance used as the standard deviation, a uniform's bound taken for
its standard deviation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dlx.checks.result import Result, Row

SHAPES = ((400, 100), (100, 400), (64, 32, 3, 3))
SEED = 0


@dataclass(frozen=True)
class Spec:
    """var = c / fan (times gain^2); fan "in", "out" or "avg" ((in + out) / 2); the family."""
    c: float
    fan: str
    uniform: bool
    title: str


SPECS = {"he_normal": Spec(2.0, "in", False, "N(0, 2 / fan_in)"),
         "he_uniform": Spec(2.0, "in", True, "U(-b, b), b = sqrt(6 / fan_in)"),
         "lecun_normal": Spec(1.0, "in", False, "N(0, 1 / fan_in)"),
         "xavier_normal": Spec(1.0, "avg", False, "N(0, 2 / (fan_in + fan_out))"),
         "xavier_uniform": Spec(1.0, "avg", True, "U(-b, b), b = sqrt(6 / (fan_in + fan_out))")}


def fans(shape, receptive: bool = True, torch_layout: bool = False) -> tuple[int, int]:
    """(fan_in, fan_out) as dlx reads a shape (:mod:`dlx.nn.init`); or with the kernel's size
    left out, or a dense weight read in torch's (out, in) layout."""
    if len(shape) == 2:
        return (shape[1], shape[0]) if torch_layout else (shape[0], shape[1])
    k = math.prod(shape[2:]) if receptive else 1
    return shape[1] * k, shape[0] * k


def _fan(shape, which: str, **how) -> float:
    fi, fo = fans(shape, **how)
    return {"in": fi, "out": fo, "avg": (fi + fo) / 2, "sum": fi + fo}[which]


def std(spec: Spec, shape, gain: float = 1.0) -> float:
    return gain * math.sqrt(spec.c / _fan(shape, spec.fan))


FAN_WORDS = {"in": "fan_in", "out": "fan_out", "avg": "(fan_in + fan_out) / 2",
             "sum": "fan_in + fan_out"}


def _mistakes(spec: Spec, gain: float) -> list[tuple[str, str, callable]]:
    """(diagnosis, revisit, std(shape)) for each known slip."""
    ref_fan = FAN_WORDS[spec.fan]
    out = [(f"your variance divides by {FAN_WORDS[f]} where dlx's uses {ref_fan}",
            f"{spec.title}: the fan is the number of a unit's inputs"
            + (" and outputs, averaged (Glorot and Bengio keep both the forward and the "
               "backward variance)" if spec.fan == "avg" else
               " (the forward pass keeps the activations' variance)"),
            lambda s, f=f: gain * math.sqrt(spec.c / _fan(s, f)))
           for f in ("in", "out", "avg", "sum") if f != spec.fan]
    if spec.fan != "avg":  # the mean of the two fans is the same in either layout
        out.append(("your fans are read from torch's (out, in) layout: dlx's dense weight is "
                    "(fan_in, fan_out), rows are a unit's inputs (x @ W)",
                    "fan_in = shape[0] for dlx's (in, out) weight; a kernel (C_out, C_in, k, k) "
                    "has fan_in = C_in k k",
                    lambda s: gain * math.sqrt(spec.c / _fan(s, spec.fan, torch_layout=True))))
    out.append(("your fans leave out the kernel's size: a convolution's unit sees C_in k k "
                "inputs, not C_in", "fan_in = C_in * kH * kW for a kernel (C_out, C_in, kH, kW)",
                lambda s: gain * math.sqrt(spec.c / _fan(s, spec.fan, receptive=False))))
    for c in (1.0, 2.0, 3.0, 6.0):
        if c != spec.c:
            why = {(2.0, 1.0): ": He's 2 is for ReLU, which zeroes half its inputs and so "
                               "halves the variance; LeCun's 1 keeps a linear (or tanh) layer's",
                   (1.0, 2.0): ": the 2 is He's, for ReLU; this one keeps the variance of a "
                               "layer without a ReLU"}.get((spec.c, c), "")
            if c == 3 * spec.c:
                why = ": 3 times the variance is the square of a uniform's bound (b^2 = 3 var)"
            out.append((f"your variance is {c:g} / {ref_fan} where dlx's is {spec.c:g} / "
                        f"{ref_fan}{why}", spec.title,
                        lambda s, c=c: gain * math.sqrt(c / _fan(s, spec.fan))))
    out.append(("your standard deviation is the variance's formula without the square root",
                "std = sqrt(variance): rng.normal takes the standard deviation",
                lambda s: gain ** 2 * spec.c / _fan(s, spec.fan)))
    if spec.uniform:
        out.append(("your bound is the standard deviation's formula: U(-b, b) has standard "
                    "deviation b / sqrt(3), so the bound is sqrt(3) times it",
                    spec.title, lambda s: std(spec, s, gain) / math.sqrt(3)))
    return out


def _draw(fn, shape, seed: int, options: dict) -> np.ndarray:
    return np.asarray(fn(shape, np.random.default_rng(seed), **options), dtype=np.float64)


def check(fn, reference: str, options: dict) -> Result:
    spec = SPECS[reference]
    gain = float(options.get("gain", 1.0))
    result = Result(passed=False)
    drawn = []
    for shape in SHAPES:
        w = _draw(fn, shape, SEED, options)
        if w.shape != shape:
            return result.fail("0 interface", f"for a weight of shape {shape} your init returned "
                                              f"shape {w.shape}")
        if not np.isfinite(w).all():
            return result.fail("0 interface", f"your init returned values that are not finite "
                                              f"for shape {shape}")
        drawn.append(w)
    again = _draw(fn, SHAPES[0], SEED, options)
    other = _draw(fn, SHAPES[0], SEED + 1, options)
    if not np.array_equal(again, drawn[0]) or np.array_equal(other, drawn[0]):
        same = np.array_equal(again, drawn[0])
        return result.fail("0 interface", "your init does not draw from the rng it is given: "
                           + ("two generators of different seeds gave the same weights" if same
                              else "two generators of the same seed gave different weights")
                           + " (np.random.* draws from numpy's global state)",
                           "draw with the rng argument, e.g. rng.normal(0.0, std, shape): a run "
                           "is then reproducible from its seed")
    result.stages.append(("0 interface", "passed"))

    rows, stds = [], []
    for shape, w in zip(SHAPES, drawn):
        n, want = w.size, std(spec, shape, gain)
        got = float(w.std())
        se = want / math.sqrt(2 * n) * (1.0 if not spec.uniform else math.sqrt(0.4))  # of a std
        rows.append(Row(0, f"std {shape}: yours {got:.5g}, dlx's {want:.5g}", abs(got - want),
                        abs(got - want) / want, abs(got - want) <= 5 * se, 5 * se / want))
        mean = float(w.mean())
        rows.append(Row(0, f"mean {shape}: yours {mean:.2g}", abs(mean), abs(mean) / want,
                        abs(mean) <= 5 * want / math.sqrt(n), 5 / math.sqrt(n)))
        stds.append(got)
    result.rows = rows
    bad = next((r for r in rows if not r.ok), None)
    if bad is not None:
        if bad.name.startswith("mean"):
            return result.fail("1 fixed inputs", "your weights are not centred on 0",
                               f"{spec.title}: draw with mean 0")
        for title, revisit, formula in _mistakes(spec, gain):
            if all(abs(got / formula(s) - 1) <= 0.03 for s, got in zip(SHAPES, stds)):
                return result.fail("1 fixed inputs", title, revisit)
        return result.fail("1 fixed inputs", f"your standard deviation is not dlx's "
                           f"{reference}'s ({spec.title}): {bad.name}",
                           "compute fan_in and fan_out of each shape by hand, then the formula")
    kurt = [float(((w - w.mean()) ** 4).mean() / w.var() ** 2) for w in drawn]
    uniform = [k < 2.4 for k in kurt]
    ok = all(u == spec.uniform for u in uniform)
    result.rows.append(Row(0, f"kurtosis {', '.join(f'{k:.2f}' for k in kurt)} (normal 3, "
                              f"uniform 1.8)", 0.0 if ok else 1.0, 0.0 if ok else 1.0, ok, 0.0))
    if not ok:
        family = "uniform" if spec.uniform else "normal"
        return result.fail("1 fixed inputs", f"your weights have the right standard deviation "
                           f"but are not {family}: dlx's {reference} draws {spec.title}",
                           "normal and uniform of the same variance are different initializers "
                           "(xavier_normal vs xavier_uniform)")
    result.stages.append(("1 fixed inputs", "passed"))
    result.notes.append(f"checked on shapes {', '.join(str(s) for s in SHAPES)}: mean, standard "
                        f"deviation (5 standard errors) and family; not value by value (the "
                        f"draws are random)" + (f"; gain {gain:g}" if "gain" in options else ""))
    result.passed = True
    return result
