"""`dlx check TARGET`: the learner's implementation against dlx's reference, in stages, with the
failure mode named. TARGET is a workspace option (``optimizer=my_adam``, composed as `dlx run`
composes it, the quick form ``optimizer=mine.optim.Adam`` included). The reference is the dlx
option the learner's file names (``reference: adam``), at the learner's options.

Checked today: optimizers (:mod:`dlx.checks.optim`), losses (:mod:`dlx.checks.losses`),
activation layers (:mod:`dlx.checks.layers`), a Linear layer (:mod:`dlx.checks.linear`), BatchNorm
(:mod:`dlx.checks.batchnorm`), dropout (:mod:`dlx.checks.dropout`), causal self-attention
(:mod:`dlx.checks.attention`), recurrent cells (:mod:`dlx.checks.recurrent`) and layers over a
sequence (:mod:`dlx.checks.bptt`), residual and transformer blocks (:mod:`dlx.checks.blocks`)
and whole models (:mod:`dlx.checks.models`, with makemore's named
intermediates).
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import asdict

from dlx.errors import UsageError

GROUPS = ("optimizer", "loss", "schedule", "regularizer", "init", "model", "model.activation",
          "layer")
LOSS_NAMES = {"bce": "bce", "bcewithlogits": "bce", "binarycrossentropy": "bce",
              "crossentropy": "cross_entropy", "softmaxcrossentropy": "cross_entropy",
              "mse": "mse", "meansquarederror": "mse",
              "entropy": "entropy"}  # a class's name -> the reference


def _target(args: list[str]) -> tuple[str, str]:
    picked = [a for a in args if a.partition("=")[0] in GROUPS]
    if len(picked) > 1:
        raise UsageError(f"one thing at a time: you gave {' and '.join(picked)}")
    if any("," in a for a in picked):
        raise UsageError(f"one thing at a time: {picked[0]} names several (no sweeps here)")
    if len(picked) != 1:
        other = [a.partition("=")[0] for a in args if "=" in a and not a.startswith("+")]
        raise UsageError("say what to check: one optimizer=NAME, loss=NAME, schedule=NAME, "
                         "regularizer=NAME, init=NAME, model=NAME, model.activation=NAME or "
                         "layer=package.module.Linear (your workspace "
                         "option, e.g. optimizer=my_adam, or optimizer=mine.optim.Adam)"
                         + (f"; {other[0]} is not checked yet (optimizers, losses, schedules, "
                            f"regularizers, initializers, models and layers are)"
                            if other and other[0] not in GROUPS else ""))
    group, _, name = picked[0].partition("=")
    return group, name


def _layer_path(path: str):
    """``dlx check layer=mine.layers.Linear``: the learner's layer against dlx's of the kind its
    class's name says (:data:`LAYERS`)."""
    from dlx import learner

    cls = learner.load(path, "layer")
    learner.check_contract(cls, "model", learner.label_target(path))
    kind = layer_kind(cls)
    from dlx.nn.activations import ACTIVATIONS

    if kind is None and cls.__name__.lower() in {k.replace("_", "") for k in ACTIVATIONS}:
        raise UsageError(f"layer={path}: an activation is checked as one: "
                         f"`dlx check model.activation=NAME` with conf/activation/NAME.yaml "
                         f"holding `_target_: {path}` (or dlx.check({cls.__name__}) in Python)")
    if kind is None:
        raise UsageError(f"layer={path}: dlx checks a Linear (or Dense, Affine, FC), a "
                         f"BatchNorm, a Dropout (or Dropout2d, DropConnect), a Softmax, a "
                         f"Conv2d, a MaxPool2d, a (self-)Attention "
                         f"layer, an LSTM, GRU or RNN (a cell, or over a sequence), a residual "
                         f"block and a transformer Block so far, known by the class's name; "
                         f"{cls.__name__} is none of them")
    return cls, check_layer(cls, kind, learner.label_target(path))


# a kind of layer -> (words its class's name holds, the reference's description)
LAYERS = {"residual": (("residual",), "dlx's Residual (y = x + F(x), F = Linear, ReLU, Linear)"),
          "block": (("block", "transformer"), "dlx's Block (pre-LN, as GPT-2)"),
          "softmax": (("softmax",), "dlx's Softmax (over the last axis)"),
          "gru": (("gru",), "dlx's GRUCell (torch's layout, gates r, z, n)"),
          "rnn": (("rnn",), "dlx's RNNCell (tanh, torch's layout)"),
          "maxpool": (("maxpool",), "dlx's MaxPool2d"),
          "conv": (("conv",), "dlx's Conv2d (cross-correlation, W (F, C, kH, kW))"),
          "lstm": (("lstm",), "dlx's LSTMCell (torch's layout, gates i, f, g, o)"),
          "attention": (("attention",), "dlx's MultiHeadAttention (causal)"),
          "batchnorm": (("batchnorm",), "dlx's BatchNorm (torch's conventions)"),
          "dropconnect": (("dropconnect",), "dlx's DropConnectLinear (W * M / keep_prob, one "
                                            "mask per forward)"),
          "dropout2d": (("dropout2d", "spatialdropout"), "dlx's Dropout2d (spatial dropout: "
                                                         "whole channel maps)"),
          "dropout": (("dropout",), "dlx's Dropout (inverted dropout)"),
          "linear": (("linear", "dense", "affine", "fc"), "dlx's Linear (out = x W + b)")}


def layer_kind(cls) -> str | None:
    name = cls.__name__.lower()
    return next((k for k, (words, _) in LAYERS.items() if any(w in name for w in words)), None)


def check_layer(cls, kind: str, label: str):
    from dlx.checks import (
        attention,
        batchnorm,
        blocks,
        bptt,
        conv,
        dropconnect,
        dropout,
        linear,
        recurrent,
        softmax,
    )

    if kind in ("lstm", "gru", "rnn") and bptt.is_sequence(cls):  # over a sequence: BPTT
        result = _guarded(bptt.check, cls, kind)  # torch's stage is models.check's
        result.see = SEE.get("bptt", "")
        return result, label, f"dlx's {bptt.NAMES[kind]} over a sequence (batch first, h_0 = 0)"
    check = {"attention": attention.check, "batchnorm": batchnorm.check, "dropout": dropout.check,
             "linear": linear.check, "lstm": recurrent.check, "conv": conv.check_conv,
             "maxpool": conv.check_pool, "gru": lambda c: recurrent.check(c, "gru"),
             "rnn": lambda c: recurrent.check(c, "rnn"), "softmax": softmax.check,
             "residual": blocks.check_residual, "block": blocks.check_block,
             "dropconnect": dropconnect.check,
             "dropout2d": lambda c: dropout.check(c, spatial=True)}[kind]
    result = _guarded(check, cls)
    if kind in ("dropout", "dropconnect", "dropout2d"):  # the others compare with torch's twin
        _dlx_only(result, "the mask is random: checked by the properties every correct one has")
    result.see = SEE.get(kind, "")
    return result, label, LAYERS[kind][1]


def _dlx_only(result, why: str) -> None:
    """A pass that torch did not confirm says why, as a stage of its own."""
    if result.passed and not any(stage == "torch" for stage, _ in result.stages):
        from dlx.checks import oracle

        oracle.attach(result, f"torch: not compared ({why})")



RAISED = "your code raised"


def _guarded(check, *args):
    """``check(*args)``, or a failed Result when the learner's code raises: "not implemented
    yet" for an exercise's stub (NotImplementedError), else the exception and the learner's own
    frames, so that the verdict is printed, kept and given as JSON like any other."""
    from dlx.checks.exercises import NOT_IMPLEMENTED
    from dlx.checks.result import Result
    from dlx.learner import last_frame, their_frames

    try:
        return check(*args)
    except Exception as e:  # noqa: BLE001 - the learner's code, whatever it raises
        where = last_frame(e)
        if where is None or os.environ.get("DLX_DEBUG") == "1":  # dlx's own bug: its traceback
            raise
        if isinstance(e, NotImplementedError):
            return Result(passed=False).fail(
                NOT_IMPLEMENTED, f"{where} raises NotImplementedError: write its body (its "
                                 f"docstring says what)")
        result = Result(passed=False).fail(RAISED, f"{type(e).__name__}: {e} ({where})")
        result.trace = their_frames(e)
        return result


def _layer(name: str):
    """``dlx check model.activation=NAME``: the learner's layer (a path, or the workspace's
    conf/activation/NAME.yaml) against dlx's activation its file's ``reference:`` or its class's
    name names."""
    from dlx import learner

    target = learner.activation_target(name)
    if target is None:
        raise UsageError(f"model.activation={name} is dlx's own; dlx check compares your layer "
                         f"with it (conf/activation/my_{name}.yaml holding _target_: your class)")
    cls = learner.load(target, "model.activation")
    learner.check_contract(cls, "model", learner.label_target(target))
    reference = (learner.activation_option(name) or {}).get("reference")
    return cls, check_activation(cls, reference, f"{name} ({learner.label_target(target)})",
                                 "add `reference: relu` (or sigmoid, tanh, ...) to its file")


def check_activation(cls, reference, label: str, how: str):
    from dlx.checks import layers
    from dlx.nn.activations import ACTIVATIONS

    valid = [k for k, v in ACTIVATIONS.items() if v is not None]
    if reference is None:
        reference = {k.replace("_", ""): k for k in valid}.get(cls.__name__.lower())
        if reference is None:
            raise UsageError(f"{label}: say which activation yours implements ({how})")
    if reference not in valid:
        raise UsageError(f"activation reference {reference!r} is not a dlx activation "
                         f"(valid: {', '.join(valid)})")
    result = _guarded(layers.check, cls, reference)
    if result.passed:  # torch confirms a pass (a failure is named already)
        from dlx.checks import oracle

        oracle.attach(result, oracle.activation(cls, reference, layers.fixed_x(),
                                                layers.fixed_dout()))
    result.notes.append("not checked: options of yours (the layer is built with none)")
    result.see = SEE.get(reference, "")
    return result, label, f"dlx's {reference}"



_TORCH_DOCS = "https://pytorch.org/docs/stable/generated/torch.{}.html"
# where each reference's maths is written out: the page a failure points to ("see: ...")
SEE = {
    **{name: _TORCH_DOCS.format(f"optim.{cls}") for name, cls in (
        ("sgd", "SGD"), ("momentum", "SGD"), ("nesterov", "SGD"), ("adagrad", "Adagrad"),
        ("rmsprop", "RMSprop"), ("adam", "Adam"), ("adamw", "AdamW"), ("adamax", "Adamax"),
        ("nadam", "NAdam"), ("radam", "RAdam"), ("adadelta", "Adadelta"))},
    "bce": _TORCH_DOCS.format("nn.BCEWithLogitsLoss"),
    "cross_entropy": _TORCH_DOCS.format("nn.CrossEntropyLoss"),
    "mse": _TORCH_DOCS.format("nn.MSELoss"),
    "entropy": "https://arxiv.org/abs/1701.06548 (Pereyra et al. 2017, the confidence penalty)",
    **{name: "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate"
       for name in ("step", "exponential", "time_based", "cosine", "warmup_cosine")},
    "log_range": "https://arxiv.org/abs/1506.01186 (Smith 2017, section 3.3)",
    **{name: "https://d2l.ai/chapter_linear-regression/weight-decay.html"
       for name in ("l1", "l2", "elastic_net")},
    **{name: "https://arxiv.org/abs/1502.01852 (He et al. 2015, section 2.2)"
       for name in ("he_normal", "he_uniform")},
    **{name: "https://proceedings.mlr.press/v9/glorot10a.html (Glorot & Bengio 2010, "
             "section 4.2)" for name in ("xavier_normal", "xavier_uniform", "lecun_normal")},
    **{name: "https://cs231n.github.io/optimization-2/ (backpropagation, staged)"
       for name in ("logreg", "linreg", "mlp", "linear", "softmax")},
    **{name: "https://pytorch.org/docs/stable/nn.functional.html#non-linear-activation-functions"
       for name in ("relu", "sigmoid", "tanh", "leaky_relu", "elu", "selu", "silu", "gelu",
                    "softplus")},
    "cnn": "https://cs231n.github.io/convolutional-networks/",
    "conv": "https://cs231n.github.io/convolutional-networks/",
    "maxpool": "https://cs231n.github.io/convolutional-networks/#pool",
    "batchnorm": "https://arxiv.org/abs/1502.03167 (Ioffe & Szegedy 2015, algorithms 1 and 2)",
    "dropout": "https://jmlr.org/papers/v15/srivastava14a.html (Srivastava et al. 2014)",
    "dropout2d": "https://arxiv.org/abs/1411.4280 (Tompson et al. 2015, section 3.2)",
    "dropconnect": "https://proceedings.mlr.press/v28/wan13.html (Wan et al. 2013)",
    "attention": "https://arxiv.org/abs/1706.03762 (Vaswani et al. 2017, section 3.2)",
    "lstm": _TORCH_DOCS.format("nn.LSTMCell"), "gru": _TORCH_DOCS.format("nn.GRUCell"),
    "rnn": _TORCH_DOCS.format("nn.RNNCell"),
    "bptt": "https://d2l.ai/chapter_recurrent-neural-networks/bptt.html",
    "residual": "https://arxiv.org/abs/1512.03385 (He et al. 2016, section 3.2)",
    "block": "https://arxiv.org/abs/2002.04745 (Xiong et al. 2020: pre-LN and post-LN)",
}


def run(args: list[str]):
    """(result, header, reference name) for ``dlx check ARGS``; the verdict is kept in the
    workspace for the checked file as it is (:mod:`dlx.checks.store`)."""
    from dlx.checks import store

    cls, (result, label, reference) = _run(args)
    store.save(cls, result, "dlx check " + " ".join(args), reference)
    return result, label, reference


def _run(args: list[str]):
    from omegaconf import OmegaConf

    from dlx import learner
    from dlx.gradcheck import compose

    group, name = _target(args)
    if group == "layer":
        extra = [a for a in args if a != f"layer={name}"]
        if extra:
            raise UsageError(f"layer= checks take no options ({' '.join(extra)}): dlx builds "
                             f"your layer at the sizes its check uses and says them")
        return _layer_path(name)
    if group == "model":
        return check_model(args, name)
    if group == "model.activation":
        compose(["model=mlp", *args])  # validated as dlx run validates it
        return _layer(name)
    node = OmegaConf.to_container(compose(args, validated=group != "init")[group],
                                  resolve=True)  # plain values
    if not learner.is_learner(node):
        raise UsageError(f"{group}={name} is dlx's own; dlx check compares your code with it "
                         f"(e.g. {group}=my_{name}, your file in conf/{group}/)")
    target = node[learner.TARGET]
    factory, options = learner.resolve(node, group)
    label = f"{name} ({learner.label_target(target)})"
    how = (f"add `reference: NAME` to its file, or {group}.reference=NAME")
    check = {"loss": check_loss, "schedule": check_schedule, "init": check_init,
             "regularizer": check_regularizer}.get(group, check_optimizer)
    cls = getattr(factory, "__wrapped_learner__", factory)  # a schedule: the learner's function
    return cls, check(factory, options, node.get("reference"), label, how)


def check_optimizer(factory, options: dict, reference, label: str, how: str):
    """An optimizer class against dlx's ``reference`` (its option's config defaults, then the
    learner's options where the reference takes them)."""
    from omegaconf import OmegaConf

    from dlx import registry
    from dlx.checks import mistakes, optim
    from dlx.gradcheck import compose
    from dlx.optim.optimizers import OPTIMIZERS

    if reference is None:
        reference = factory.__name__.lower()
        if reference not in OPTIMIZERS:
            raise UsageError(f"{label}: say which dlx optimizer yours implements ({how}; sgd, "
                             f"momentum, nesterov, rmsprop, adagrad, adam, ...)")
    if reference not in OPTIMIZERS:
        raise UsageError(f"reference {reference!r} is not a dlx optimizer (valid: "
                         f"{', '.join(OPTIMIZERS)})")
    ref_node = OmegaConf.to_container(compose([f"optimizer={reference}"])["optimizer"],
                                      resolve=True)
    mine_options = {k: v for k, v in options.items() if k not in ("weight_decay",)}
    taken = inspect.signature(OPTIMIZERS[reference]).parameters
    ref_options = {k: v for k, v in ref_node.items() if k != "name" and k in taken}
    ref_options.update({k: v for k, v in mine_options.items() if k in taken})
    decay = float(options.get("weight_decay", 0.0) or 0.0)
    if "weight_decay" in taken:
        ref_options["weight_decay"] = decay
    unmatched = sorted(k for k in mine_options if k not in taken)
    own_decay = "weight_decay" in inspect.signature(factory).parameters

    def mine(params):  # weight decay is the framework's unless the class takes it (as dlx runs)
        opt = factory(params, **mine_options, **({"weight_decay": decay} if own_decay else {}))
        if not own_decay:
            opt.weight_decay = decay
        return opt

    def ref(params):
        return registry.build(OPTIMIZERS, "optimizer", {"name": reference, **ref_options}, params)

    result = _guarded(optim.check, mine, ref, ref_options,
                      mistakes.for_concept(mistakes.concept(reference, ref_options)))
    if unmatched:
        result.notes.append(f"your option(s) {', '.join(unmatched)} have no counterpart in dlx's "
                            f"{reference}: it ran at its own {', '.join(sorted(ref_options))}")
    if result.passed:  # torch confirms a pass (a failure is named already)
        from dlx.checks import oracle

        defaults = {k: p.default for k, p in taken.items() if p.default is not p.empty}
        differs = {k: v for k, v in ref_options.items() if defaults.get(k, v) != v}
        oracle.attach(result, oracle.optimizer(mine, reference, ref_options, differs))
    result.notes.append("not checked: stages 2 and 3 (gradients, named intermediates) are for "
                        "layers, losses and models")
    keys = [k for k in sorted(mine_options) if k in ref_options] or ["lr"]  # at least the rate
    keys += ["weight_decay"] if decay and "weight_decay" in ref_options else []
    shown = ", ".join(f"{k}={ref_options[k]}" for k in keys if k in ref_options)
    result.see = SEE.get(reference, "")
    return result, label, f"dlx's {reference} ({shown})"


def check_loss(factory, options: dict, reference, label: str, how: str):
    from dlx.checks import losses

    if reference is None:
        reference = LOSS_NAMES.get(factory.__name__.lower().replace("_", ""))
        if reference is None:
            raise UsageError(f"{label}: say which loss yours implements ({how}: bce, "
                             f"cross_entropy, mse or entropy)")
    if reference not in losses.REFERENCES:
        raise UsageError(f"reference {reference!r} is not a loss dlx checks against "
                         f"(valid: {', '.join(losses.REFERENCES)})")
    result = _guarded(losses.check, lambda: factory(**options), reference)
    if result.passed:  # torch confirms a pass (a failure is named already)
        from dlx.checks import oracle

        oracle.attach(result, oracle.loss(lambda: factory(**options), reference))
    if reference in ("bce", "cross_entropy"):
        result.notes.append("not checked: label smoothing and ignored targets (options of dlx's "
                            "losses)")
    result.see = SEE.get(reference, "")
    return result, label, f"dlx's {reference} ({losses.REFERENCES[reference].what})"


def check_init(factory, options: dict, reference, label: str, how: str):
    """An initializer ``(shape, rng, **options)`` against dlx's ``reference``'s distribution."""
    from dlx.checks import inits

    fn = getattr(factory, "__wrapped_learner__", factory)
    if reference is None:
        reference = fn.__name__.lower()
        if reference not in inits.SPECS:
            raise UsageError(f"{label}: say which dlx initializer yours implements ({how}; "
                             f"{', '.join(inits.SPECS)})")
    if reference not in inits.SPECS:
        raise UsageError(f"init reference {reference!r} is not one dlx check compares with "
                         f"(valid: {', '.join(inits.SPECS)})")
    result = _guarded(inits.check, fn, reference, options)  # theirs: shapes are stage 0's
    result.claim = "draws from the distribution {} draws from"
    _dlx_only(result, "the draws are random: checked by their distribution")
    result.see = SEE.get(reference, "")
    return result, label, f"dlx's {reference} ({inits.SPECS[reference].title})"


def check_schedule(builder, options: dict, reference, label: str, how: str):
    """A schedule function (as dlx's builder wraps it) against dlx's ``reference``, both at
    the learner's options where the reference takes them (its config's defaults otherwise)."""
    from omegaconf import OmegaConf

    from dlx import registry
    from dlx.checks import schedules
    from dlx.gradcheck import compose
    from dlx.optim.schedules import SCHEDULES

    fn = getattr(builder, "__wrapped_learner__", builder)
    options = {k: v for k, v in options.items()  # the framework's warm-up, not the function's
               if k not in ("warmup_steps", "warmup_start_factor")}
    if reference == "warmup_cosine":  # a warm-up of the learner's own against dlx's
        return _check_warmup(builder, options, label)
    if reference is None:
        reference = fn.__name__.lower()
        if reference not in SCHEDULES:
            raise UsageError(f"{label}: say which dlx schedule yours implements ({how}; step, "
                             f"exponential, time_based, cosine, ...)")
    if reference not in SCHEDULES or reference in ("reduce_on_plateau", "sequential"):
        valid = [k for k in SCHEDULES if k not in ("reduce_on_plateau", "sequential")]
        raise UsageError(f"schedule reference {reference!r} is not a dlx schedule dlx check "
                         f"compares with (valid: {', '.join(valid)})")
    ref_node = OmegaConf.to_container(compose([f"schedule={reference}"])["schedule"],
                                      resolve=True)
    taken = inspect.signature(SCHEDULES[reference]).parameters
    ref_options = {k: v for k, v in ref_node.items() if k in taken and k not in ("lr",
                                                                                "total_steps")}
    ref_options.update({k: v for k, v in options.items() if k in taken})

    def ref(lr, total):
        return registry.build(SCHEDULES, "schedule", {"name": reference, **ref_options},
                              lr=lr, total_steps=total)

    def mine(lr, total):
        return builder(lr, total, **options)

    result = _guarded(schedules.check, mine, ref, ref_options)
    unmatched = sorted(k for k in options if k not in taken)
    if unmatched:
        result.notes.append(f"your option(s) {', '.join(unmatched)} have no counterpart in dlx's "
                            f"{reference}")
    if result.passed:  # torch.optim.lr_scheduler confirms a pass
        from dlx.checks import oracle

        oracle.attach(result, oracle.schedule(mine, reference, {**ref_node, **ref_options}))
    result.notes.append("not checked: the warm-up (warmup_steps is dlx's, in front of any "
                        "schedule)")
    shown = ", ".join(f"{k}={v}" for k, v in sorted(ref_options.items()))
    result.see = SEE.get(reference, "")
    return result, label, f"dlx's {reference}" + (f" ({shown})" if shown else "")


def check_model(args: list[str], name: str):
    """``dlx check model=my_mlp [dataset=...]``: the learner's model, built as `dlx run` builds
    it on the run's data, against dlx's ``reference`` at the learner's options, from the same
    weights (the reference's initial ones, copied). Data whose files are not here are stood in
    for by a fixed batch of their shape (the check is of the maths, not of the data)."""
    import numpy as np
    from omegaconf import OmegaConf

    from dlx import learner
    from dlx.assemble import build_data, build_model, rngs
    from dlx.checks import models
    from dlx.config import validate
    from dlx.errors import Unavailable
    from dlx.gradcheck import compose
    from dlx.nn.models import MODELS

    # the weights are the reference's, copied: the init option does not matter (and zeros,
    # the default, would warn about a symmetry the check never trains into)
    init = [] if any(a.startswith(("init=", "init.")) for a in args) else ["init=he_normal"]
    raw = compose([*args, *init], validated=False)
    node = OmegaConf.to_container(raw["model"], resolve=True)
    if not learner.is_learner(node):
        raise UsageError(f"model={name} is dlx's own; dlx check compares your model with it "
                         f"(e.g. model=my_{name}, your file in conf/model/)")
    factory, options = learner.resolve(node, "model")
    label = f"{name} ({learner.label_target(node[learner.TARGET])})"
    reference = node.get("reference") or {"logreg": "logreg", "logisticregression": "logreg",
                                          "mlp": "mlp", "linreg": "linreg", "cnn": "cnn",
                                          "lenet": "cnn"}.get(
        factory.__name__.lower().replace("_", ""))
    if reference not in MODEL_REFERENCES:
        raise UsageError(f"{label}: say which dlx model yours implements (`reference: mlp` in "
                         f"its file, or model.reference=...; {', '.join(MODEL_REFERENCES)})"
                         if reference is None else
                         f"model reference {reference!r}: dlx check compares whole models with "
                         f"{', '.join(MODEL_REFERENCES)} so far")
    data_args = [a for a in args if a.startswith("dataset")]
    if not data_args and MODEL_REFERENCES[reference]:
        # the run config's default data are classes as vectors: a regression model is checked
        # on a regression data set, a CNN on images, unless one is named
        data_args = [MODEL_REFERENCES[reference]]
        raw = compose([*args, *data_args, *init], validated=False)
    try:
        validate(raw)  # as `dlx run` validates it
        missing = None
    except Unavailable as e:  # the data's files: their shape is known without them
        if e.spec is None:
            raise
        missing = e
    cfg = OmegaConf.to_container(raw, resolve=True)
    cfg["dtype"] = "float64"
    ref_cfg = OmegaConf.to_container(compose([f"model={reference}", *data_args],
                                             validated=False), resolve=True)
    taken = inspect.signature(MODELS[reference]).parameters
    ref_node = {k: v for k, v in ref_cfg["model"].items() if k == "name" or k in taken}
    ref_node.update({k: v for k, v in options.items() if k in taken})
    if missing is None:
        data = build_data(cfg)
        spec, x = data.spec, np.array(data.X_train[:models.N], dtype=np.float64)
    else:
        spec = missing.spec
        n = models.N * int(np.prod(spec.shape))
        x = np.sin(np.linspace(0.0, 40.0, n)).reshape(models.N, *spec.shape)
    streams = rngs(cfg["seed"])
    ref_model = build_model(ref_node, ref_cfg["init"], spec, streams["init"], np.float64,
                            streams["dropout"])
    streams = rngs(cfg["seed"])
    mine = build_model(cfg["model"], cfg["init"], spec, streams["init"], np.float64,
                       streams["dropout"])
    result = _guarded(models.check, mine, ref_model, x, reference)
    if result.passed and spec.kind == "features" and reference == "mlp":  # MNIST's: flat?
        result = _on_images(result, cfg, ref_node, ref_cfg["init"], spec)
    shown = ", ".join(f"{k}={v}" for k, v in ref_node.items() if k != "name")
    result.notes.append(f"on {models.N} examples of {spec.describe()}"
                        + (" (a fixed batch of their shape: the data set's files are not here)"
                           if missing is not None else "")
                        + ("; not checked: dropout (keep_prob 1 here)"
                           if reference in ("mlp", "cnn") else ""))
    result.see = SEE.get(reference, "")
    return getattr(factory, "__wrapped_learner__", factory), (
        result, label, f"dlx's {reference}" + (f" ({shown})" if shown else ""))


# the whole models dlx check compares with -> the data set they are checked on by default
MODEL_REFERENCES = {"logreg": None, "linreg": "dataset=function", "mlp": None,
                    "cnn": "dataset=mnist"}


def _check_warmup(builder, options: dict, label: str):
    """The learner's warm-up + cosine function against dlx's schedule=warmup_cosine (its linear
    warm-up in front of the cosine, :func:`dlx.assemble.build_schedule`), the learner's
    ``warmup`` and ``start_factor`` as dlx's warmup_steps and warmup_start_factor."""
    from omegaconf import OmegaConf

    from dlx.assemble import build_schedule
    from dlx.checks import schedules
    from dlx.gradcheck import compose

    node = OmegaConf.to_container(compose(["schedule=warmup_cosine"])["schedule"], resolve=True)
    names = {"warmup": "warmup_steps", "start_factor": "warmup_start_factor"}
    node.update({names.get(k, k): v for k, v in options.items() if names.get(k, k) in node})
    shown = ", ".join(f"{k}={node[k]}" for k in ("warmup_steps", "warmup_start_factor",
                                                   "eta_min"))

    def ref(lr, total):
        return build_schedule(node, lr, total)

    def mine(lr, total):
        return builder(lr, total, **options)

    result = _guarded(schedules.check, mine, ref, node)
    if result.passed:
        from dlx.checks import oracle

        oracle.attach(result, oracle.schedule(mine, "warmup_cosine", node))
    result.see = SEE.get("warmup_cosine", "")
    return result, label, f"dlx's warmup_cosine ({shown})"


def _on_images(result, cfg: dict, ref_node: dict, ref_init: dict, spec):
    """A model that passed on feature vectors, checked again on a small batch of images
    (N, 1, 3, 3), as MNIST's: a model that does not flatten them fails here, not in a run."""
    import numpy as np

    from dlx.assemble import build_model
    from dlx.checks import models
    from dlx.data.spec import DataSpec

    image = DataSpec.image(1, 3, 3, max(spec.n_classes, 2))
    rng = np.random.default_rng(0)
    try:
        mine = build_model(cfg["model"], cfg["init"], image, rng, np.dtype("float64"), rng)
        ref = build_model(ref_node, ref_init, image, rng, np.dtype("float64"), rng)
    except (UsageError, ValueError, TypeError):
        return result  # a model for feature vectors only: its run's data are those
    if isinstance(models.match(mine.parameters(), ref.parameters()), str):
        result.notes.append("not checked: images (your model's layers are sized from "
                            "spec.shape[0], for feature vectors only)")
        return result
    x = np.sin(np.linspace(0.0, 9.0, models.N * 9)).reshape(models.N, 1, 3, 3)
    again = _guarded(models.check, mine, ref, x, "mlp on images")
    if again.passed:
        result.stages.append(("1 fixed inputs (images)", "passed"))
        return result
    again.diagnosis = (f"on images {x.shape} (as MNIST's) your model fails where it passed on "
                       f"feature vectors: flatten x to (N, D) first and give dx x's shape back "
                       f"({again.failed}: {again.diagnosis})")
    again.stages = [*result.stages, ("1 fixed inputs (images)", "failed")]
    again.failed = "1 fixed inputs (images)"
    return again


def check_regularizer(factory, options: dict, reference, label: str, how: str):
    """A penalty class against dlx's l1, l2 or elastic net at the learner's lam (and l1_ratio),
    the L1 part in the gradient (the learner's class has no proximal step)."""
    from dlx.checks import regularizers
    from dlx.optim.regularizers import ElasticNet

    ratios = {"l1": 1.0, "l2": 0.0, "elastic_net": None}
    if reference is None:
        name = factory.__name__.lower().replace("_", "")
        reference = {"l1": "l1", "lasso": "l1", "l2": "l2", "ridge": "l2", "elasticnet":
                     "elastic_net"}.get(name)
        if reference is None:
            raise UsageError(f"{label}: say which penalty yours implements ({how}: l1, l2 or "
                             f"elastic_net)")
    if reference not in ratios:
        raise UsageError(f"regularizer reference {reference!r} is not a penalty dlx check "
                         f"compares with (valid: l1, l2, elastic_net)")
    lam = float(options.get("lam", 1e-3))
    ratio = ratios[reference]
    if ratio is None:
        ratio = float(options.get("l1_ratio", 0.5))
    result = _guarded(regularizers.check, lambda: factory(**options),
                      ElasticNet(lam, ratio, "subgradient"), lam, ratio)
    if result.passed:  # torch's autograd of the penalty confirms a pass
        from dlx.checks import oracle

        oracle.attach(result, oracle.penalty(lambda: factory(**options), lam, ratio))
    result.notes.append("checked on one weight array (dlx sums your penalty over the weights, "
                        "never biases); not checked: a proximal step (dlx's own L1 option)")
    shown = f"lam={lam:g}" + (f", l1_ratio={ratio:g}" if reference == "elastic_net" else "")
    result.see = SEE.get(reference, "")
    return result, label, f"dlx's {reference} ({shown})"


def render(result, label: str, reference: str) -> str:
    from dlx.checks.exercises import NOT_IMPLEMENTED

    if result.failed == NOT_IMPLEMENTED:  # an untouched stub: one line, nothing compared
        return f"FAIL  {label}: {NOT_IMPLEMENTED}: {result.diagnosis}"
    if result.failed == RAISED:  # the verdict, then the learner's own frames
        return f"FAIL  {label}: {RAISED} {result.diagnosis}\n{result.trace}"
    lines = []
    if result.passed:
        lines.append(f"PASS  {label} {result.claim.format(reference)}"
                     + (" (an accepted variant)" if result.variant else ""))
        if result.variant:
            lines.append(f"  note: {result.variant}")
    else:
        lines.append(f"FAIL  {label} against {reference}: stage {result.failed}")
        lines.append(f"  {result.diagnosis}.")
        if result.revisit:
            lines.append(f"  revisit: {result.revisit}.")
        if result.see:
            lines.append(f"  see: {result.see}")
    lines.append("")
    lines.append("  stages: " + "; ".join(f"{s} {state}" for s, state in result.stages))
    if result.rows:
        steps = any(r.step for r in result.rows)  # a loss's rows have no step
        width = max(28, *(len(r.name) for r in result.rows))
        lines.append(f"  {'step  ' if steps else ''}{'tensor':<{width}} {'max abs diff':>13} "
                     f"{'rel error':>10}")
        for r in result.rows:
            mark = "" if r.ok else f"  > {r.tol:g}"
            lines.append(f"  {f'{r.step:>4}  ' if steps else ''}{r.name:<{width}} "
                         f"{r.max_abs_diff:>13.3e} {r.rel_error:>10.2e}{mark}")
    for note in result.notes:
        lines.append(f"  {note}")
    return "\n".join(lines)


def as_json(result, label: str, reference: str) -> dict:
    """The result as strict JSON values: a NaN or an infinity (a step that overflowed) as the
    strings "nan", "inf", "-inf", which every JSON parser reads."""
    def plain(v):
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v
    fields = asdict(result)
    fields["claim"] = result.claim.format(reference)  # what a pass says, in words
    return plain({"target": label, "reference": reference, **fields})


class Report:
    """A check's result as a notebook shows it: the text `dlx check` prints (``passed``,
    ``result`` for the details)."""

    def __init__(self, result, label: str, reference: str):
        self.result, self.label, self.reference = result, label, reference

    @property
    def passed(self) -> bool:
        return self.result.passed

    def __str__(self) -> str:
        return render(self.result, self.label, self.reference)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        color = "#1a7f37" if self.passed else "#cf222e"
        return (f'<pre style="border-left: 4px solid {color}; padding-left: 8px">'
                f"{html.escape(str(self))}</pre>")


def check_object(obj, reference: str | None = None, **options) -> Report:
    """``dlx.check(MyAdam, reference="adam", lr=1e-3)`` in a notebook: a class (or an instance's
    class) of yours against dlx's reference, as `dlx check` does; what it is decides the kind:
    an Optimizer subclass, a Module named as a Linear, BatchNorm or Dropout (or with
    ``reference="batchnorm"`` ...), any other Module (an activation), or a
    class with forward and backward (a loss). ``options``: what your class is built with."""
    from dlx import learner
    from dlx.checks import store
    from dlx.nn import Module
    from dlx.optim import Optimizer

    cls = obj if inspect.isclass(obj) else type(obj)
    label = f"{cls.__qualname__} ({learner.label_target(cls)})"
    how = "pass reference=NAME"
    if issubclass(cls, Optimizer):
        found = check_optimizer(cls, options, reference, label, how)
    elif issubclass(cls, Module):
        kind = reference if reference in LAYERS else layer_kind(cls)
        found = (check_layer(cls, kind, label) if kind
                 else check_activation(cls, reference, label, how))
    elif callable(getattr(cls, "forward", None)) and callable(getattr(cls, "backward", None)):
        found = check_loss(cls, options, reference, label, how)
    else:
        found = None
    if found is not None:
        store.save(cls, found[0], f"dlx.check({cls.__qualname__})", found[2])
        return Report(*found)
    raise UsageError(f"dlx.check takes your optimizer (a dlx.optim.Optimizer subclass), layer "
                     f"(a dlx.nn.Module) or loss (forward and backward), got {obj!r}")
