"""`dlx check model=my_mlp`: the learner's whole model against dlx's model of the same options
(``reference: mlp``), from the same weights, in float64, in stages:

0. interface: the same Parameters as the reference's, shape for shape in order (a 2-D weight
   in torch's (out, in) layout too); forward's scores shaped as the reference's; backward
   returning dx shaped as x;
1. fixed inputs: a batch of the run's training data, dL/dscores from ``linspace``: the scores,
   every Parameter's gradient and dx against the reference's;
2. gradients: the learner's gradients against centred finite differences of sum(scores * dout),
   at sampled entries of every Parameter and of x;
3. named intermediates (makemore's ``cmp``): when stage 1 fails, every array the learner's model
   keeps on itself after forward and backward is matched by shape and value against the
   reference's intermediates in forward order (each layer's output) and backward order (the
   gradient reaching each layer's output); the first that no array of the learner's equals is
   where the two part.
"""

from __future__ import annotations

import numpy as np

from dlx.checks.result import GRAD_RTOL, RTOL, Result, Row, rel_error
from dlx.nn import Module

N = 6          # examples in the fixed batch
ENTRIES = 10   # finite-difference entries per Parameter


def match(mine: list, theirs: list) -> list[tuple] | str:
    """[(the learner's Parameter, the reference's, transposed)] in order, or what differs."""
    shapes = [tuple(p.data.shape) for p in mine], [tuple(p.data.shape) for p in theirs]
    if len(mine) == len(theirs):
        pairs = []
        for a, b in zip(mine, theirs):
            if a.data.shape == b.data.shape:
                pairs.append((a, b, False))
            elif a.data.ndim == 2 and a.data.shape == b.data.shape[::-1]:
                pairs.append((a, b, True))
            else:
                break
        else:
            return pairs
    if sorted(shapes[0]) == sorted(shapes[1]):
        return (f"your model's Parameters {shapes[0]} are dlx's {shapes[1]} in another order: "
                f"define them in dlx's order (the first layer's weight and bias first), so "
                f"that the same weights can be given to both")
    return (f"your model's Parameters {shapes[0]} are not those of the reference "
            f"{shapes[1]} (in order; a weight may be (out, in) as torch's): build the same "
            f"layers from the options")


def _fixed(pairs, rng) -> None:
    """The reference's initial weights, biases drawn small and nonzero (no unit on a kink), then
    copied into the learner's Parameters."""
    for mine, ref, transposed in pairs:
        if mine.data.dtype != np.float64:  # checked in float64, as dlx casts a run's
            mine.data, mine.grad = mine.data.astype(np.float64), np.zeros(mine.data.shape)
        if not ref.data.any():
            ref.data[...] = rng.normal(0.0, 0.1, ref.data.shape)
        mine.data[...] = ref.data.T if transposed else ref.data


def _arrays(model, prefix: str = "self") -> dict[str, np.ndarray]:
    """Every float array the model and its modules keep on themselves (not Parameters), and
    those in lists and tuples on them."""
    out = {}
    for name, value in vars(model).items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.ndim >= 1:
            out[f"{prefix}.{name}"] = value.copy()
        elif isinstance(value, Module):
            out.update(_arrays(value, f"{prefix}.{name}"))
        elif isinstance(value, (list, tuple)):  # a loop's kept arrays (self.hs[i]) or layers
            for i, v in enumerate(value):
                if isinstance(v, Module):
                    out.update(_arrays(v, f"{prefix}.{name}[{i}]"))
                elif isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.ndim >= 1:
                    out[f"{prefix}.{name}[{i}]"] = v.copy()
    return out


def kept_arrays(model, backward) -> dict:
    """The arrays ``model`` keeps after its forward (the keys as they are) and those its
    ``backward()`` call adds or changes (keys prefixed "dL/d:"), and "<result>" backward's."""
    kept = _arrays(model)
    out = backward()
    kept.update({f"dL/d:{k}": v for k, v in _arrays(model).items()
                 if k not in kept or not np.array_equal(v, kept[k])})
    kept["<result>"] = out
    return kept


def _layers(ref) -> list:
    return list(ref.layers) if hasattr(ref, "layers") else [ref]


def _reference_intermediates(ref, x, dout) -> list[tuple[str, np.ndarray, str]]:
    """The reference's layer outputs in forward order, then the gradient reaching each layer's
    output in backward order: (name, value, the layer whose computation made it)."""
    layers, out, h = _layers(ref), [], x
    kind = [f"layer {i} ({type(m).__name__})" for i, m in enumerate(layers, start=1)]
    for i, layer in enumerate(layers):
        h = layer.forward(h)
        out.append((f"{kind[i]} output", np.asarray(h).copy(), f"{kind[i]}'s forward"))
    g = dout
    for i in range(len(layers) - 1, -1, -1):
        if i < len(layers) - 1:  # dout itself is given: the first made is the last layer's dx
            out.append((f"dL/d(layer {i + 1} output)", np.asarray(g).copy(),
                         f"{kind[i + 1]}'s backward (the gradient it passes down)"))
        g = layers[i].backward(g)
    return out


def _open_input(model) -> None:
    """A first Linear built with input_grad=False returns no dx: ask for it (dlx's models)."""
    for m in model.modules():
        if hasattr(m, "input_grad"):
            m.input_grad = True


def _run(model, pairs_side: int, pairs, x, dout):
    for p in model.parameters():
        p.grad[...] = 0
    scores = np.asarray(model.forward(x.copy()))
    kept = kept_arrays(model, lambda: model.backward(dout.copy()))
    dx = kept.pop("<result>")
    grads = [(p[pairs_side].grad.T if (pairs_side == 0 and p[2]) else p[pairs_side].grad).copy()
             for p in pairs]
    return scores, dx, grads, kept


def check(mine: Module, ref: Module, x: np.ndarray, reference: str,
          intermediates=None, out: str = "scores") -> Result:
    """Stages 0-3 of ``mine`` against ``ref`` (any two Modules built alike); ``intermediates``
    ``(ref, x, dout) -> [(name, value, culprit)]`` for a reference that is not a Sequential;
    ``out`` what the output is called (a layer's "output", a model's "scores")."""
    result = Result(passed=False)
    pairs = match(mine.parameters(), ref.parameters())
    if isinstance(pairs, str):
        return result.fail("0 interface", pairs)
    rng = np.random.default_rng(0)
    _fixed(pairs, rng)
    _open_input(ref)
    mine.train()
    ref.train()
    probe = np.asarray(ref.forward(x.copy()))
    dout = np.linspace(-0.5, 0.6, probe.size).reshape(probe.shape) / len(x)
    shape = np.shape(mine.forward(x.copy()))  # before any backward: dout is shaped as dlx's
    if shape != probe.shape:
        return result.fail("0 interface", f"forward returned {out} of shape {shape}; dlx's "
                           f"{reference} returns {probe.shape} for x of shape {x.shape}")
    scores, dx, grads, kept = _run(mine, 0, pairs, x, dout)
    if dx is None or np.shape(dx) != x.shape:
        return result.fail("0 interface", f"backward returned "
                           f"{'None' if dx is None else f'shape {np.shape(dx)}'}: a model's "
                           f"backward returns dL/dx, shaped as x {x.shape}")
    result.stages.append(("0 interface", "passed"))

    ref_scores, ref_dx, ref_grads, _ = _run(ref, 1, pairs, x, dout)
    named = [(out, scores, ref_scores)]
    named += [(f"{p[1].name or 'param'} grad", g, rg) for p, g, rg in zip(pairs, grads, ref_grads)]
    named.append(("dx", np.asarray(dx), np.asarray(ref_dx)))
    result.rows = [Row(0, n, float(np.abs(a - b).max()), rel_error(a, b), rel_error(a, b) <= RTOL)
                   for n, a, b in named]
    if all(r.ok for r in result.rows):
        result.stages.append(("1 fixed inputs", "passed"))
    else:
        result.stages.append(("1 fixed inputs", "failed"))
        result.failed = "1 fixed inputs"
        bad = next(r for r in result.rows if not r.ok)
        found = (intermediates or _reference_intermediates)(ref, x, dout)
        named_of = {n: (a, b) for n, a, b in named}
        said = _relation(bad.name, *named_of[bad.name], len(x), result.rows, out)
        said = said or _weight_from(bad.name, pairs, grads, found, kept, x, dout, ref)
        slip = None if said else _activation_slip(ref, pairs, x, dout, grads, dx)
        if slip:
            said, result.revisit = slip
        where = _localise(found, {k: v for k, v in kept.items()  # what it returned is a row
                                  if not any(v.shape == np.shape(r) and np.array_equal(v, r)
                                             for r in (scores, dx))},
                          result, (x, x.reshape(len(x), -1)))
        if not where.startswith("; they part at"):  # nothing kept pointed at it
            where = _between(pairs, result.rows, ref) or where
        verb = "differ" if bad.name.endswith("s") else "differs"
        result.diagnosis = said or f"your {bad.name} {verb} from dlx's {reference}'s" + where
        result.revisit = result.revisit or (
            "derive that step again" + ("; the rows below compare, in forward then backward "
                                        "order, each of dlx's intermediates with the closest "
                                        "array your model keeps on self"
                                        if "~" in str(result.rows) else ""))
        return result

    f_rows = _finite_differences(mine, pairs, x, dout, grads, np.asarray(dx), rng)
    result.rows += f_rows
    if not all(r.ok for r in f_rows):
        return result.fail("2 gradients", "your backward is not your forward's derivative "
                           f"({next(r.name for r in f_rows if not r.ok)})")
    result.stages.append(("2 gradients", "passed"))
    result.stages.append(("3 named intermediates", "not needed (stage 1 matched)"))
    result.passed = True
    from dlx.checks import oracle  # torch's autograd through the reference's twin

    oracle.attach(result, oracle.module(mine, ref, pairs, x, dout))
    return result


def _relation(name: str, mine, theirs, n: int, rows, out: str) -> str | None:
    """A failing row's known relation to the reference's: a constant factor (1/N: a mean that
    belongs to the loss), all zeros (a gradient never added into .grad), the same offset in
    every example (a bias twice), or dx alone wrong while every gradient matches (a path
    missed)."""
    if name == "dx" and all(r.ok for r in rows if r.name != "dx"):
        return ("every parameter's gradient matches; only dx differs: dL/dx sums every path "
                "from x to the output (where x feeds several, each one's gradient is added), "
                "each through its own factor, transposed")
    plural = name.endswith("s")  # "scores"
    if np.shape(mine) == np.shape(theirs) and not np.any(mine) and np.any(theirs):
        return (f"your {name} is all zeros: nothing reached its .grad (add into the "
                f"Parameter's .grad, self.W.grad += ...; a local variable, or a copy, leaves it "
                f"at 0)" if name.endswith(" grad") else
                f"your {name} {'are' if plural else 'is'} all zeros where dlx's "
                f"{'are' if plural else 'is'} not")
    d = np.asarray(mine, float) - theirs if np.shape(mine) == np.shape(theirs) else None
    if d is not None and d.ndim >= 2 and len(d) > 1 and np.any(d) \
            and np.allclose(d, d[:1], rtol=1e-9, atol=1e-12 * float(np.abs(theirs).max())):
        return (f"your {name} {'differ' if plural else 'differs'} from dlx's by the same "
                f"offset in every example: a bias added twice, or left out")
    keep = np.abs(theirs) > 1e-12
    ratio = np.asarray(mine)[keep] / theirs[keep] if np.shape(mine) == np.shape(theirs) else []
    if len(ratio) and np.allclose(ratio, ratio[0], rtol=1e-9) and not np.isclose(ratio[0], 1):
        c = float(ratio[0])
        why = (": the 1/N of the mean is the loss's, already in dout; a layer's gradient is a "
               "sum over the batch" if np.isclose(c, 1 / n) else
               ": the sign" if np.isclose(c, -1) else "")
        return f"your {name} is {c:g} times dlx's{why}"
    return None


def _activation_slip(ref, pairs, x, dout, grads, dx) -> tuple[str, str] | None:
    """A tanh's or a sigmoid's derivative written with its input z where its output belongs
    (1 - z^2 for 1 - tanh(z)^2): the reference with that one layer's backward so, against the
    learner's gradients."""
    from dlx.nn.activations import Sigmoid, Tanh

    def act(kind, z):
        return np.tanh(z) if kind is Tanh else 1 / (1 + np.exp(-z))

    class _Slipped(Module):  # the derivative's formula fed the input z, or the output y again
        def __init__(self, kind, fed):
            self.kind, self.fed = kind, fed

        def forward(self, z):
            self.z, self.y = z, act(self.kind, z)
            return self.y

        def backward(self, d):
            u = self.z if self.fed == "input" else act(self.kind, self.y)
            return d * (1 - u * u) if self.kind is Tanh else d * u * (1 - u)

    layers = getattr(ref, "layers", None)
    if not isinstance(layers, list):
        return None
    acts = [i for i, layer in enumerate(layers) if type(layer) in (Tanh, Sigmoid)]
    # the slip in every such layer (a loop's), then in one layer alone
    for which in ([acts] if len(acts) > 1 else []) + [[i] for i in acts]:
        for fed in ("input", "twice"):
            kept = {i: layers[i] for i in which}
            for i in which:
                layers[i] = _Slipped(type(kept[i]), fed)
            try:
                _, their_dx, their_grads, _ = _run(ref, 1, pairs, x, dout)
            finally:
                for i in which:
                    layers[i] = kept[i]
            if rel_error(np.asarray(dx), np.asarray(their_dx)) > RTOL or not all(
                    rel_error(a, b) <= RTOL for a, b in zip(grads, their_grads)):
                continue
            kind = type(kept[which[0]])
            name = "tanh" if kind is Tanh else "sigmoid"
            right = "1 - y^2" if kind is Tanh else "y (1 - y)"
            what = (f"is written with its input z ({'1 - z^2' if name == 'tanh' else 'z (1 - z)'})"
                    f" where its output y belongs" if fed == "input" else
                    f"applies {name} to its output again ({name}'({name}(z)), not {name}'(z))")
            where = ", ".join(f"{_named(kept[i], i)}'s backward" for i in which)
            return (f"your {name}'s derivative {what} (in {where})",
                    f"d{name}/dz = {right} with y = {name}(z), the output kept from forward")
    return None


def _weight_from(name: str, pairs, grads, found, kept, x, dout, ref) -> str | None:
    """A Linear's weight gradient computed from the wrong input: dW = A^T g for a kept forward
    array A that is not the layer's input (z1 where h1 belongs, say)."""
    layers = _layers(ref)
    if np.ndim(dout) != 2:  # a layer of (N, features) only: dW = A^T g
        return None
    for (_, ref_p, _), g in zip(pairs, grads):
        if f"{ref_p.name or 'param'} grad" != name or g.ndim != 2:
            continue
        j = next((i for i, m in enumerate(layers) if any(q is ref_p for q in m.parameters())),
                 None)
        if j is None:
            return None
        outs = [v for n, v, _ in found if not n.startswith("dL/d")]
        grads_out = {n: v for n, v, _ in found if n.startswith("dL/d")}
        g_out = grads_out.get(f"dL/d(layer {j + 1} output)", dout)
        inputs = [x.reshape(len(x), -1), *outs]
        for key, a in kept.items():
            if key.startswith("dL/d:") or a.ndim != 2 or a.shape[0] != len(x):
                continue
            if a.shape[1] == g.shape[0] and rel_error(a.T @ g_out, g) <= RTOL:
                right = "x" if j == 0 else f"layer {j}'s output"
                if rel_error(a, inputs[j]) <= RTOL:
                    return None
                return (f"your {name} is {key}^T times the gradient reaching layer {j + 1}'s "
                        f"output: the weight's gradient takes the layer's own input, {right}")
    return None


def _between(pairs, rows, ref) -> str | None:
    """When no kept array localises it: the layers whose Parameters' gradients match, from the
    output down, and the first below them whose do not; what lies between them passed the
    gradient down wrongly."""
    layers = _layers(ref)
    ok = {r.name: r.ok for r in rows}
    state = []  # (index, its Parameters' gradients all match) for the layers that have some
    for j, layer in enumerate(layers):
        names = [f"{p[1].name or 'param'} grad" for p in pairs
                 if any(p[1] is q for q in layer.parameters())]
        if names:
            state.append((j, all(ok.get(n, False) for n in names)))
    for (j, good), (k, good_above) in zip(state[::-1][1:], state[::-1]):
        if good_above and not good:
            kinds = [_named(layers[i], i) for i in range(j + 1, k)]
            return (f"; {_named(layers[k], k)}'s gradients match and {_named(layers[j], j)}'s "
                    f"do not: the gradient passed down between them goes wrong (in "
                    + ", ".join(f"{n}'s backward" for n in [*kinds, _named(layers[k], k)][::-1])
                    + ")")
    return None


def _named(layer, i: int) -> str:
    """``layer 3 (Linear fc2)``: its place in the model, its kind and its Parameters' name."""
    names = {p.name.rpartition(".")[0] for p in layer.parameters() if p.name}
    return f"layer {i + 1} ({type(layer).__name__}{' ' + min(names) if names else ''})"


def _localise(found: list, kept: dict, result: Result, inputs=()) -> str:
    """Stage 3: the reference's intermediates in order against the learner's kept arrays.

    An array of the learner's equal to an input is no intermediate; one equal to an
    intermediate is that one (the first such array for each), never the closest stand-in for
    another: a kept tanh(c') is not a wrong c', a kept x is not a wrong layer output."""
    rows, first = [], None
    explained = {k: "an input" for k, v in kept.items()
                 if any(v.shape == np.shape(a) and rel_error(v, a) <= RTOL for a in inputs)}
    for name, value, _ in found:
        equal = [k for k, v in kept.items() if k not in explained and v.shape == value.shape
                 and rel_error(v, value) <= RTOL]
        if equal:
            explained[equal[0]] = name
    for name, value, culprit in found:
        backward = name.startswith("dL/d")  # a gradient: only arrays backward made
        same = [(rel_error(v, value), k) for k, v in kept.items()
                if v.shape == value.shape and explained.get(k, name) == name
                and k.startswith("dL/d:") == backward]
        if not same:
            continue
        err, key = min(same)
        if err > 0.999:  # nothing of the learner's resembles it: an array it does not keep
            continue
        ok = err <= RTOL
        rows.append(Row(0, f"{name} ~ {key.removeprefix('dL/d:')}",
                        float(np.abs(kept[key] - value).max()), err, ok))
        if not ok and first is None:
            first = (name, key, culprit)
    result.rows += rows
    result.stages.append(("3 named intermediates", "ran" if rows else "nothing to compare"))
    if first is None:
        return (": every intermediate your model keeps matches dlx's, so the difference lies in "
                "one it does not keep" if rows else
                " (your model keeps no arrays of the reference's shapes to localise it)")
    return (f"; they part at {first[2]}: no array of yours equals its {first[0]} (the closest "
            f"is {first[1].removeprefix('dL/d:')})")


def _finite_differences(model, pairs, x, dout, grads, dx, rng) -> list[Row]:
    def f() -> float:
        return float((np.asarray(model.forward(x)) * dout).sum())

    rows, h = [], 1e-6
    targets = [(f"{p[0].name or 'param'} grad vs finite differences", p[0].data,
                g.T if p[2] else g) for p, g in zip(pairs, grads)]
    targets.append(("dx vs finite differences", x, dx))
    for name, arr, analytic in targets:
        pick = rng.choice(arr.size, min(ENTRIES, arr.size), replace=False)
        numeric = []
        for i in pick:
            idx = np.unravel_index(i, arr.shape)
            old = arr[idx]
            arr[idx] = old + h
            up = f()
            arr[idx] = old - h
            numeric.append((up - f()) / (2 * h))
            arr[idx] = old
        a = np.asarray(analytic).reshape(-1)[pick]
        err = rel_error(a, np.array(numeric))
        rows.append(Row(0, name, float(np.abs(a - numeric).max()), err, err <= GRAD_RTOL,
                        GRAD_RTOL))
    return rows
