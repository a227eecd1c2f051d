"""Config nodes -> the objects a run is made of: data set, model, optimizer, schedule and
regularizer, and the random streams they draw from.

This is the one place where the configuration layer (:mod:`dlx.registry`: a node's ``name``
picks a factory, its other keys are checked against the factory's signature) meets the pure
library (:mod:`dlx.nn`, :mod:`dlx.optim`, :mod:`dlx.data`), which imports no configuration.
"""

from __future__ import annotations

import inspect
import logging
import zipfile
from typing import Any, Mapping

import numpy as np

from dlx import learner, registry
from dlx.data import (
    FOLD_DATASETS,
    IDX_DATASETS,
    REGRESSION_DATASETS,
    SEQUENCES,
    SERIES,
    SYNTHETIC,
    TEXT_DATASETS,
    Dataset,
    DataSpec,
    char_dataset,
    check_fold,
    check_idx_split,
    idx_dataset,
    regression_dataset,
    split,
)
from dlx.data.spec import check_reads
from dlx.data.synthetic import FUNCTIONS
from dlx.errors import Unavailable, UsageError
from dlx.nn import INITS, MODELS, Module, loss_for
from dlx.optim import OPTIMIZERS, REGULARIZERS, groups
from dlx.optim.schedules import SCHEDULES, Schedule, with_warmup

STREAMS = ("data", "init", "batches", "dropout", "eval")
FOLD_KEYS = ("folds", "fold", "fold_seed")  # k-fold cross-validation (dlx.data.folds)


def rngs(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators per purpose (adding a purpose at the end changes no other), so
    that changing e.g. the batch size changes neither the data nor the initial weights."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}


# --- data -------------------------------------------------------------------------------------

def build_dataset(node, rng: np.random.Generator, dtype=np.float32) -> Dataset:
    """Generate (or load) the data set named by ``node.name`` with its train/validation split
    (or, with ``folds``, fold ``fold`` of a k-fold cross-validation as the validation split)."""
    node = dict(node)
    if node.get("folds") is not None and node.get("name") not in FOLD_DATASETS:
        raise UsageError(f"dataset.folds: k-fold cross-validation is for "
                         f"{', '.join(FOLD_DATASETS)}, not {node.get('name')!r}")
    if node.get("name") in IDX_DATASETS:
        kwargs = registry.check_kwargs(idx_dataset, node, "dataset", ("rng", "dtype"))
        try:
            return idx_dataset(rng, **kwargs, dtype=np.dtype(dtype).type)
        except ValueError as e:
            raise UsageError(f"invalid dataset {node['name']!r}: {e}") from e
    if node.get("name") in REGRESSION_DATASETS:  # a fixed file and a fixed split: no rng
        from dlx.data.housing import housing_dataset

        kwargs = registry.check_kwargs(housing_dataset, {k: v for k, v in node.items()
                                                         if k != "name"}, "dataset", ("dtype",))
        try:
            return regression_dataset(name=node["name"], dtype=np.dtype(dtype).type, **kwargs)
        except ValueError as e:
            raise UsageError(f"invalid dataset {node['name']!r}: {e}") from None
    if node.get("name") in FUNCTIONS:  # 1-D regression with a noise-free test grid
        factory = FUNCTIONS[node["name"]]
        kwargs = registry.check_kwargs(factory, {k: v for k, v in node.items() if k != "name"},
                                       "dataset", ("rng", "dtype"))
        try:
            return factory(rng, **kwargs, dtype=np.dtype(dtype).type)
        except ValueError as e:
            raise UsageError(f"invalid dataset {node['name']!r}: {e}") from None
    if node.get("name") in TEXT_DATASETS:  # a fixed file and a contiguous split: no rng
        kwargs = registry.check_kwargs(char_dataset, node, "dataset")
        try:
            X, Y, X_val, Y_val, spec, vocab = char_dataset(**kwargs)
        except ValueError as e:
            raise UsageError(f"invalid dataset {node['name']!r}: {e}") from None
        return Dataset(node["name"], X, Y, X_val, Y_val, spec, classes=vocab,
                       stream=bool(kwargs.get("stream", False)))
    val_fraction = node.pop("val_fraction", 0.2)
    if not isinstance(val_fraction, (int, float)) or isinstance(val_fraction, bool):
        raise UsageError(f"dataset.val_fraction must be in (0, 1), got {val_fraction!r}")
    if node.get("name") in SEQUENCES:
        X, Y, vocab = registry.build(SEQUENCES, "dataset", node, rng)
        return split(node["name"], X, Y, rng, val_fraction, n_classes=vocab)
    if node.get("name") in SERIES:
        X, y = registry.build(SERIES, "dataset", node, rng)
        return split(node["name"], X, y, rng, val_fraction, dtype=dtype)
    folds = tuple(node.pop(k, v) for k, v in (("folds", None), ("fold", 0), ("fold_seed", 0)))
    try:
        check_fold(*folds[:2], seed=folds[2])
    except ValueError as e:
        raise UsageError(f"invalid dataset {node['name']!r}: {e}") from None
    if folds[0] is not None:  # a fixed sample, whatever the run's seed, cut into fixed folds
        rng = np.random.default_rng(folds[2])
    X, y = registry.build(SYNTHETIC, "dataset", node, rng)
    try:
        return split(node["name"], X, y, rng, val_fraction, dtype=dtype,
                     folds=folds if folds[0] is not None else None)
    except ValueError as e:
        raise UsageError(f"invalid dataset {node['name']!r}: {e}") from None


def check_dataset(node) -> DataSpec:
    """Validate a dataset node, values included, so that a bad one is reported before anything
    runs: IDX files are found (or fetched) and verified and the split checked against them (if
    they cannot be had, against their known size, then Unavailable carrying the spec);
    synthetic and sequence data sets (cheap) are generated once and thrown away. Returns the
    description of one example, which the model is then checked against."""
    node = dict(node)
    if node.get("name") in IDX_DATASETS:
        from dlx.data import mnist

        kwargs = registry.check_kwargs(idx_dataset, node, "dataset", ("rng", "dtype"))
        missing = None
        try:
            n = len(mnist.load(node["name"])["train_images"])  # there (or fetched), verified
        except Unavailable as e:  # the split is still checked, against the files' known size
            n, missing = mnist.N_TRAIN, e
        defaults = {"val_size": 5000, "subset": None, "scaling": "unit", "folds": None, "fold": 0,
                    "fold_seed": 0}
        try:
            check_idx_split(n, **{k: kwargs.get(k, v) for k, v in defaults.items()})
        except ValueError as e:
            raise UsageError(f"invalid dataset {node['name']!r}: {e}") from None
        spec = DataSpec.image(1, *mnist.IMAGE, n_classes=10)
        if missing is not None:
            raise Unavailable(str(missing), spec) from None
        return spec
    if node.get("name") in (*TEXT_DATASETS, *REGRESSION_DATASETS, *FUNCTIONS):  # checked by building
        return build_dataset(node, np.random.default_rng(0)).spec
    names = {**SYNTHETIC, **SEQUENCES, **SERIES,
             **{n: None for n in (*IDX_DATASETS, *TEXT_DATASETS, *REGRESSION_DATASETS,
                                  *FUNCTIONS)}}
    factory = registry.lookup(names, "dataset", node.get("name"))
    registry.check_kwargs(factory, {k: v for k, v in node.items() if k not in
                                    ("name", "val_fraction", *FOLD_KEYS)}, "dataset", ("rng",))
    data = build_dataset(node, np.random.default_rng(0))
    if len(data.X_train) < 1:
        raise UsageError(f"dataset {node['name']!r}: no training examples left after the "
                         f"validation split (val_fraction {node.get('val_fraction', 0.2)})")
    return data.spec


def build_data(cfg: Mapping[str, Any]) -> Dataset:
    return build_dataset(cfg["dataset"], rngs(cfg["seed"])["data"], np.dtype(cfg["dtype"]))


# --- model ------------------------------------------------------------------------------------

def initialize(model: Module, init_node, rng: np.random.Generator) -> None:
    """Fill every weight (``decay=True``) with the ``init`` option; biases stay zero."""
    fn, node, _ = registry.factory_of(INITS, "init", init_node)
    kwargs = registry.check_kwargs(fn, node, "init", provided=("shape", "rng"))
    for p in model.parameters():
        if p.decay:
            try:
                p.data[...] = fn(p.data.shape, rng, **kwargs)
            except ValueError as e:
                raise UsageError(f"invalid init {fn.__name__!r}: {e}") from e


def build_model(model_node, init_node, spec: DataSpec, init_rng, dtype,
                dropout_rng=None) -> Module:
    """The model named by ``model_node`` for data described by ``spec``, its weights drawn by
    ``init_node`` from ``init_rng``; ``dropout_rng`` drives its dropout masks. A model that
    cannot read such data is a UsageError naming the models that can."""
    name = model_node.get("name")
    if not learner.is_learner(model_node):  # the learner's model reads what it is given
        try:
            check_reads(name, registry.lookup(MODELS, "model", name), spec, MODELS)
        except ValueError as e:
            raise UsageError(str(e)) from None
    model = registry.build(MODELS, "model", learner.resolve_pieces(model_node), spec,
                           dtype=dtype, rng=dropout_rng)
    if learner.is_learner(model_node):  # the run's dtype, whatever np.zeros made
        learner.cast_parameters(model, dtype)
        weights = [p for p in model.parameters() if p.decay]
        if len(weights) > 1 and (init_node or {}).get("name") == "zeros" and name not in _WARNED:
            _WARNED.add(name)  # once per process (validation builds the model too)
            logging.getLogger("dlx").warning(
                f"init=zeros on your model {name} with {len(weights)} weight matrices: every "
                f"unit of a hidden layer gets the same weights and gradients, so they stay "
                f"equal (symmetry) and it cannot learn more than one unit's worth; choose "
                f"init=he_normal, or in its file: defaults: [{{override /init@_global_.init: "
                f"he_normal}}] (as dlx's mlp.yaml)")
    initialize(model, init_node, init_rng)
    return model


_WARNED: set = set()  # learner models warned about their all-zero init


def build_model_for(cfg: Mapping[str, Any], data: Dataset, streams=None) -> Module:
    """The run's model for ``data``, with the run's initial weights."""
    streams = streams or rngs(cfg["seed"])
    return build_model(cfg["model"], cfg["init"], data.spec, streams["init"],
                       np.dtype(cfg["dtype"]), streams["dropout"])


def trained_model(run) -> tuple[Module, Dataset]:
    """A finished run's final model (its model.npz) and its data set, rebuilt from its config:
    what figures and reports of a run read. Raises FileNotFoundError without model.npz."""
    from dlx.records.store import MODEL

    data = build_data(run.config)
    model = build_model_for(run.config, data)
    path = run.path / MODEL
    try:
        with np.load(path, allow_pickle=False) as arrays:
            model.load_state_dict(arrays)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        # a file dlx did not write, or a config.yaml edited after the run: say which
        said = str(e.args[0] if e.args else e)
        if "pickle" in said:  # numpy's hint to load it unsafely is not one to pass on
            said = "it holds pickled Python objects, which dlx never loads"
        why = (f"its arrays do not fit the model its config.yaml builds ({said})"
               if said.startswith(("parameter", "missing parameter")) else
               f"not a model dlx saved ({type(e).__name__}: {said[:80] or 'an empty file'})")
        raise UsageError(f"{path}: {why}") from None
    model.eval()
    return model, data


# --- optimization -----------------------------------------------------------------------------

def build_optimizer(node, params):
    """The optimizer a config node names. ``no_decay_bias`` (default false) and ``lr_mult``
    (default null) split the parameters into groups (:mod:`dlx.optim.groups`); without them the
    optimizer is the plain class, exactly as before groups existed."""
    node = dict(node)
    no_decay_bias = node.pop("no_decay_bias", False)
    lr_mult = node.pop("lr_mult", None) or {}
    try:
        groups.check(no_decay_bias, lr_mult)
    except ValueError as e:
        raise UsageError(f"invalid optimizer {node.get('name')!r}: {e}") from None
    make = _maker(node)
    if not (no_decay_bias or lr_mult):
        return make(params)
    make([])  # the options, checked once
    return groups.GroupedOptimizer(make, params, no_decay_bias, lr_mult)


def _maker(node: dict):
    """``make(params, **overrides) -> optimizer``. Weight decay is the framework's: for a
    learner's optimizer whose __init__ does not take ``weight_decay`` the key is set on the
    built optimizer instead, which folds it into the gradient before ``update`` sees it (as
    torch's coupled decay does)."""
    framework = learner.is_learner(node) and "weight_decay" not in inspect.signature(
        registry.factory_of(OPTIMIZERS, "optimizer", node)[0]).parameters
    if not framework:
        return lambda ps, **over: registry.build(OPTIMIZERS, "optimizer", {**node, **over}, ps)
    node = dict(node)
    value = node.pop("weight_decay", 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise UsageError(f"optimizer.weight_decay must be a number >= 0, got {value!r}")

    def make(ps, weight_decay: float = value, **over):
        opt = registry.build(OPTIMIZERS, "optimizer", {**node, **over}, ps)
        opt.weight_decay = float(weight_decay)
        return opt
    return make


def build_loss(node, spec: DataSpec | None, label_smoothing: float = 0.0):
    """The loss: ``auto`` (or a record from before the loss group: None) is the task's own
    (:func:`dlx.nn.loss_for`); a learner's class (``_target_``) is built with its options and
    checked at its first call (:class:`dlx.learner.CheckedLoss`). ``spec`` None (the data's
    files missing): the options are checked, nothing is built."""
    node = dict(node or {"name": "auto"})
    if learner.is_learner(node):
        if label_smoothing:
            raise UsageError("label_smoothing is an option of dlx's loss; your loss "
                             f"{learner.label_target(node[learner.TARGET])} would not apply it "
                             "(set label_smoothing=0, or smooth in your loss's options)")
        return _learners(node, "loss", learner.CheckedLoss)
    registry.lookup({"auto": loss_for}, "loss", node.pop("name", None))
    registry.check_kwargs(lambda: None, node, "loss")  # auto takes no options
    return loss_for(spec, label_smoothing) if spec is not None else None


def build_regularizer(node):
    """The penalty: dlx's (``name``) or the learner's class (``_target_``), summed over the
    weights by :class:`dlx.learner.LearnerPenalty`."""
    if learner.is_learner(node):
        return _learners(node, "regularizer", learner.LearnerPenalty)
    return registry.build(REGULARIZERS, "regularizer", node)


def _learners(node, group: str, wrap):
    """The learner's class of ``group`` built with the node's options (checked against its
    signature), inside ``wrap`` (the framework's side of its contract)."""
    factory, options, name = registry.factory_of({}, group, node)
    kwargs = registry.check_kwargs(factory, options, group)
    try:
        return wrap(factory(**kwargs), name)
    except ValueError as e:
        raise UsageError(f"invalid {group} {name!r}: {e}") from e


def base_lr(optimizer_node: Mapping) -> float:
    """The optimizer's configured learning rate (its factory's default if the node has none):
    what a schedule starts from. The schedule is then pushed into the optimizer, one way."""
    if "lr" in optimizer_node:
        return float(optimizer_node["lr"])
    factory, _, name = registry.factory_of(OPTIMIZERS, "optimizer", optimizer_node)
    default = inspect.signature(factory).parameters.get("lr")
    if default is None or default.default is inspect.Parameter.empty:
        raise UsageError(f"optimizer {name}: no lr given and its __init__ has no default for "
                         f"lr (set optimizer.lr=...)")
    return float(default.default)


def build_schedule(node: Mapping, lr: float, total_steps: int) -> Schedule:
    """The schedule a config node names; ``warmup_steps`` (default 0) and
    ``warmup_start_factor`` (default 0.01) add a linear warmup in front of any of them."""
    node = dict(node)
    warmup = node.pop("warmup_steps", 0) or 0
    start_factor = node.pop("warmup_start_factor", 0.01)
    if not isinstance(warmup, int) or warmup < 0:
        raise UsageError(f"schedule.warmup_steps must be an integer >= 0, got {warmup!r}")
    if not (isinstance(start_factor, (int, float)) and 0 < start_factor <= 1):
        raise UsageError(f"schedule.warmup_start_factor must be in (0, 1], got {start_factor!r}")
    if warmup and node.get("name") == "reduce_on_plateau":
        raise UsageError("schedule.warmup_steps: reduce_on_plateau follows the validation "
                         "metric and takes no warmup; use warmup_steps=0")
    main = registry.build(SCHEDULES, "schedule", _pieces(node), lr=lr,
                          total_steps=max(total_steps - warmup, 1))
    return with_warmup(main, lr, warmup, float(start_factor)) if warmup else main


def _pieces(node: dict) -> dict:
    """A ``sequential`` node's schedule nodes as the builders the library takes."""
    if node.get("name") != "sequential" or not isinstance(node.get("schedules"), list):
        return node
    builders = []
    for i, child in enumerate(node["schedules"]):
        where = f"schedule.schedules[{i}]"
        if not isinstance(child, Mapping) or child.get("name") in ("sequential", "reduce_on_plateau"):
            raise UsageError(f"{where} must be a step schedule's node (name and options), "
                             f"got {child!r}")
        builders.append(lambda where=where, child=dict(child), **sizes:
                        registry.build(SCHEDULES, where, child, **sizes))
    return {**node, "schedules": builders}
