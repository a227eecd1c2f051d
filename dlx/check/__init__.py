"""`dlx check TARGET`: the learner's implementation against dlx's reference, in stages, with the
failure mode named. TARGET is a workspace option (``optimizer=my_adam``, composed as `dlx run`
composes it, the quick form ``optimizer=mine.optim.Adam`` included). The reference is the dlx
option the learner's file names (``reference: adam``), at the learner's options.

Optimizers are checked today (:mod:`dlx.check.optim`); the stages for layers, losses and models
(finite differences, named intermediates) are the next step of the issue this started.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict
from pathlib import Path

from dlx.errors import UsageError

GROUPS = ("optimizer", "loss", "model.activation", "layer")
LOSS_NAMES = {"bce": "bce", "bcewithlogits": "bce", "binarycrossentropy": "bce",
              "crossentropy": "cross_entropy", "softmaxcrossentropy": "cross_entropy",
              "mse": "mse", "meansquarederror": "mse"}  # a class's name -> the reference


def _target(args: list[str]) -> tuple[str, str]:
    picked = [a for a in args if a.partition("=")[0] in GROUPS]
    if len(picked) != 1 or any("," in a for a in picked):
        other = [a.partition("=")[0] for a in args if "=" in a and not a.startswith("+")]
        raise UsageError("say what to check: one optimizer=NAME, loss=NAME, "
                         "model.activation=NAME or layer=package.module.Linear (your workspace "
                         "option, e.g. optimizer=my_adam, or optimizer=mine.optim.Adam)"
                         + (f"; {other[0]} is not checked yet (optimizers, losses, activation "
                            f"layers and Linear are)"
                            if other and other[0] not in GROUPS else ""))
    group, _, name = picked[0].partition("=")
    return group, name


def _linear(path: str):
    """``dlx check layer=mine.layers.Linear``: the learner's fully connected layer against dlx's
    Linear (the one parametrized layer checked so far)."""
    from dlx import learner
    from dlx.check import linear

    cls = learner.load(path, "layer")
    learner.check_contract(cls, "model", learner.label_target(path))
    if not any(w in cls.__name__.lower() for w in ("linear", "dense", "affine", "fc")):
        raise UsageError(f"layer={path}: dlx checks a fully connected layer so far (a class "
                         f"named Linear, Dense, Affine or FC); {cls.__name__} is not named as one")
    result = linear.check(cls)
    return result, learner.label_target(path), "dlx's Linear (out = x W + b)"


def _layer(name: str):
    """``dlx check model.activation=NAME``: the learner's layer (a path, or the workspace's
    conf/activation/NAME.yaml) against dlx's activation its file's ``reference:`` or its class's
    name names."""
    from dlx import learner
    from dlx.check import layers
    from dlx.nn.activations import ACTIVATIONS

    target = learner.activation_target(name)
    if target is None:
        raise UsageError(f"model.activation={name} is dlx's own; dlx check compares your layer "
                         f"with it (conf/activation/my_{name}.yaml holding _target_: your class)")
    cls = learner.load(target, "model.activation")
    learner.check_contract(cls, "model", learner.label_target(target))
    valid = [k for k, v in ACTIVATIONS.items() if v is not None]
    file = (learner.workspace() or Path()) / "conf" / learner.ACTIVATION / f"{name}.yaml"
    reference = None
    if file.is_file():
        from omegaconf import OmegaConf

        reference = (OmegaConf.to_container(OmegaConf.load(file)) or {}).get("reference")
    if reference is None:
        by_name = {k.replace("_", ""): k for k in valid}
        reference = by_name.get(cls.__name__.lower())
        if reference is None:
            raise UsageError(f"model.activation={name}: say which activation yours implements: "
                             f"add `reference: relu` (or {', '.join(valid[1:])}) to its file")
    if reference not in valid:
        raise UsageError(f"model.activation reference {reference!r} is not a dlx activation "
                         f"(valid: {', '.join(valid)})")
    result = layers.check(cls, reference)
    result.notes.append("not checked: options of yours (the layer is built with none); torch is "
                        "not compared directly (dlx's activations are tested against torch's)")
    return (result, f"{name} ({learner.label_target(target)})", f"dlx's {reference}")


def run(args: list[str]):
    """(result, header, reference name) for ``dlx check ARGS``."""
    from omegaconf import OmegaConf

    from dlx import learner, registry
    from dlx.check import mistakes, optim
    from dlx.gradcheck import compose
    from dlx.optim.optimizers import OPTIMIZERS

    group, name = _target(args)
    if group == "layer":
        return _linear(name)
    if group == "model.activation":
        compose(["model=mlp", *args])  # validated as dlx run validates it
        return _layer(name)
    node = OmegaConf.to_container(compose(args)[group], resolve=True)  # plain values
    if not learner.is_learner(node):
        raise UsageError(f"{group}={name} is dlx's own; dlx check compares your code with it "
                         f"(e.g. {group}=my_{name}, your file in conf/{group}/)")
    target = node[learner.TARGET]
    reference = node.get("reference")
    if group == "loss":
        return _loss(node, name, target, reference)
    if reference is None:
        cls, _ = learner.resolve(node, group)
        guess = cls.__name__.lower()
        if guess not in OPTIMIZERS:
            raise UsageError(f"{group}={name}: say which dlx optimizer yours implements: add "
                             f"`reference: adam` (or sgd, momentum, nesterov, rmsprop, adagrad, "
                             f"...) to its file, or optimizer.reference=adam")
        reference = guess
    if reference not in OPTIMIZERS:
        raise UsageError(f"{group}.reference {reference!r} is not a dlx optimizer (valid: "
                         f"{', '.join(OPTIMIZERS)})")
    ref_node = OmegaConf.to_container(compose([f"{group}={reference}"])[group], resolve=True)
    factory, options = learner.resolve(node, group)
    mine_options = {k: v for k, v in options.items() if k not in ("weight_decay",)}
    taken = inspect.signature(OPTIMIZERS[reference]).parameters
    ref_options = {k: v for k, v in ref_node.items() if k != "name" and k in taken}
    ref_options.update({k: v for k, v in mine_options.items() if k in taken})
    if "weight_decay" in taken:
        ref_options["weight_decay"] = float(options.get("weight_decay", 0.0) or 0.0)
    unmatched = sorted(k for k in mine_options if k not in taken)

    decay = float(options.get("weight_decay", 0.0) or 0.0)
    own_decay = "weight_decay" in inspect.signature(factory).parameters

    def mine(params):  # weight decay is the framework's unless the class takes it (as dlx runs)
        opt = factory(params, **mine_options, **({"weight_decay": decay} if own_decay else {}))
        if not own_decay:
            opt.weight_decay = decay
        return opt

    def ref(params):
        return registry.build(OPTIMIZERS, group, {"name": reference, **ref_options}, params)

    result = optim.check(mine, ref, ref_options,
                         mistakes.for_concept(mistakes.concept(reference, ref_options)))
    if unmatched:
        result.notes.append(f"your option(s) {', '.join(unmatched)} have no counterpart in dlx's "
                            f"{reference}: it ran at its own {', '.join(sorted(ref_options))}")
    result.notes.append("not checked: stages 2 and 3 (gradients, named intermediates) are for "
                        "layers, losses and models; torch is not compared directly (dlx's "
                        f"{reference} is tested against torch.optim)")
    label = f"{name} ({learner.label_target(target)})"
    shown = ", ".join(f"{k}={ref_options[k]}" for k in sorted(mine_options) if k in ref_options)
    return result, label, f"dlx's {reference} ({shown})"


def _loss(node: dict, name: str, target: str, reference):
    from dlx import learner
    from dlx.check import losses

    factory, options = learner.resolve(node, "loss")
    if reference is None:
        reference = LOSS_NAMES.get(factory.__name__.lower().replace("_", ""))
        if reference is None:
            raise UsageError(f"loss={name}: say which loss yours implements: add `reference: "
                             f"bce` (or cross_entropy, mse) to its file, or loss.reference=bce")
    if reference not in losses.REFERENCES:
        raise UsageError(f"loss.reference {reference!r} is not a loss dlx checks against "
                         f"(valid: {', '.join(losses.REFERENCES)})")
    result = losses.check(lambda: factory(**options), reference)
    result.notes.append("not checked: label smoothing and ignored targets (options of dlx's "
                        "losses); torch is not compared directly (dlx's losses are tested "
                        "against torch.nn's)")
    return (result, f"{name} ({learner.label_target(target)})",
            f"dlx's {reference} ({losses.REFERENCES[reference].what})")


def render(result, label: str, reference: str) -> str:
    lines = []
    if result.passed:
        lines.append(f"PASS  {label} computes what {reference} computes"
                     + (" (an accepted variant)" if result.variant else ""))
        if result.variant:
            lines.append(f"  note: {result.variant}")
    else:
        lines.append(f"FAIL  {label} against {reference}: stage {result.failed}")
        lines.append(f"  {result.diagnosis}.")
        if result.revisit:
            lines.append(f"  revisit: {result.revisit}.")
    lines.append("")
    lines.append("  stages: " + "; ".join(f"{s} {state}" for s, state in result.stages))
    if result.rows:
        steps = any(r.step for r in result.rows)  # a loss's rows have no step
        lines.append(f"  {'step  ' if steps else ''}{'tensor':<28} {'max abs diff':>13} "
                     f"{'rel error':>10}")
        for r in result.rows:
            mark = "" if r.ok else f"  > {r.tol:g}"
            lines.append(f"  {f'{r.step:>4}  ' if steps else ''}{r.name:<28} "
                         f"{r.max_abs_diff:>13.3e} {r.rel_error:>10.2e}{mark}")
    for note in result.notes:
        lines.append(f"  {note}")
    return "\n".join(lines)


def as_json(result, label: str, reference: str) -> dict:
    return {"target": label, "reference": reference, **asdict(result)}
