"""Validation of a composed config before anything is created or trained.

Group options are checked against their implementations' signatures (see :mod:`dlx.registry`);
optimizers, schedules and regularizers are also built once (cheap) so their own range checks run.
The data set and model are checked by key and type only: building them may cost time.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dlx import learner, registry, resolvers, threads  # noqa: F401 - resolvers: registers
from dlx.assemble import (
    base_lr,
    build_loss,
    build_model,
    build_optimizer,
    build_regularizer,
    build_schedule,
    check_dataset,
)
from dlx.errors import Rejected, Unavailable, UsageError
from dlx.experiments import hooks
from dlx.nn import INITS, MODELS
from dlx.nn.metrics import LOWER_IS_BETTER
from dlx.nn.metrics import names as metric_names
from dlx.records.progress import MODES

GROUPS = ("model", "optimizer", "regularizer", "dataset", "schedule", "init", "loss")
DTYPES = ("float32", "float64")
BACKENDS = ("numpy", "torch")


def _int(cfg: dict, key: str, low: int | None = None, allow_none: bool = False) -> None:
    value = cfg.get(key)
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or (low is not None and value < low):
        extra = " or null" if allow_none else ""
        raise UsageError(f"{key} must be an integer >= {low}{extra}, got {value!r}")


def _plain(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) \
            else cfg[key]
    except OmegaConfBaseException as e:
        raise UsageError(f"{key}: {str(e).splitlines()[0]}") from None
    except Rejected as e:  # a resolver's own message (e.g. no tuned lr for this optimizer)
        raise e.args[0] from None


def validate(config: DictConfig) -> None:
    """Raise UsageError (one line: the key, the bad value, what is valid) if ``config`` is bad.

    What the environment lacks (a data file that cannot be fetched, torch for backend=torch) is
    raised last, as :class:`Unavailable`, so that a mistake in the config itself is named first,
    offline or not, with the extras or without."""
    unavailable: list[Unavailable] = []
    top = {k: _plain(config, k) for k in config if k != "hydra" and k not in GROUPS}
    _int(top, "seed", 0)
    _int(top, "epochs", 1)
    _int(top, "batch_size", 1, allow_none=True)
    _int(top, "probe_every", 0, allow_none=True)
    _int(top, "max_steps", 1, allow_none=True)
    _int(top, "probe_batch", 1)
    if top.get("dtype") not in DTYPES:
        raise UsageError(f"dtype must be one of {', '.join(DTYPES)}, got {top.get('dtype')!r}")
    factor = top.get("divergence_factor")
    if not isinstance(factor, (int, float)) or isinstance(factor, bool) or not factor > 1:
        raise UsageError(f"divergence_factor must be a number > 1, got {factor!r}")
    for key in ("clip_grad_norm", "clip_grad_value"):
        value = top.get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or not math.isfinite(value) or not value > 0):
            raise UsageError(f"{key} must be a finite number > 0 or null (off), got {value!r}")
    monitor = top.get("monitor", "best:val/loss")
    if not (isinstance(monitor, str) and monitor.partition(":")[0] in ("best", "final")
            and "/" in monitor):
        raise UsageError(f"monitor must look like best:val/loss or final:val/acc, got {monitor!r}")
    if top.get("backend") not in BACKENDS:
        raise UsageError(f"backend must be one of {', '.join(BACKENDS)}, got {top.get('backend')!r}")
    if top["backend"] == "torch" and importlib.util.find_spec("torch") is None:
        unavailable.append(Unavailable("backend=torch needs PyTorch, which is not installed "
                                       "(pip install 'dlx[torch]')"))
    _check_early_stopping(top.get("early_stopping"))
    _check_eval(top.get("eval"), config)
    threads.check(top.get("threads", threads.DEFAULT))
    if top.get("progress") not in MODES:
        raise UsageError(f"progress must be one of {', '.join(MODES)}, got {top.get('progress')!r}")

    groups = {g: _plain(config, g) for g in GROUPS}
    for g, node in groups.items():
        if not isinstance(node, dict) or not ("name" in node or learner.TARGET in node):
            raise UsageError(f"{g} must be a config group option (e.g. {g}=<option>)")
        if learner.TARGET in node and g not in learner.GROUPS:
            raise UsageError(f"{g}._target_: the learner's own code stands in for "
                             f"{', '.join(learner.GROUPS)}, not for {g}")
    mine = learner.pieces(groups)
    if mine and top["backend"] == "torch":
        where, target = next(iter(mine.items()))
        raise UsageError(f"backend=torch runs torch's own classes; {where} {target} is yours, "
                         f"which has no torch twin: use backend=numpy")
    optimizer = build_optimizer(groups["optimizer"], [])  # first: it checks lr's type and range
    if top["backend"] == "torch" and (groups["optimizer"].get("ema")
                                      or groups["optimizer"].get("bias_correction") is False):
        raise UsageError("backend=torch: torch.optim has no optimizer.ema or "
                         "optimizer.bias_correction=false (use backend=numpy)")
    lr = base_lr(groups["optimizer"])
    if build_regularizer(groups["regularizer"]).proximal and optimizer.prox_unsupported():
        raise UsageError(f"regularizer.method=proximal with optimizer={groups['optimizer']['name']}"
                         f": {optimizer.prox_unsupported()}; use regularizer.method=subgradient")
    build_schedule(groups["schedule"], lr, total_steps=10**6)  # options only: steps unknown yet
    # the model's keys before the data set, which may be downloaded
    factory, model, _ = registry.factory_of(MODELS, "model", groups["model"])
    registry.check_kwargs(factory, model, "model", ("spec", "dtype", "rng"))
    _check_init(groups["init"])
    if groups["dataset"].get("folds") is not None and groups["dataset"].get("fold") is None \
            and top["early_stopping"]["patience"] is not None:
        raise UsageError("early_stopping: dataset.fold=null trains on every fold and leaves no "
                         "validation split to watch (set early_stopping.patience=null)")
    try:
        spec = check_dataset(groups["dataset"])
    except Unavailable as e:  # the files: checked against what is known without them
        unavailable.append(e)
        spec = e.spec
    _check_label_smoothing(top.get("label_smoothing", 0.0), spec and spec.task)
    build_loss(groups["loss"], spec, top.get("label_smoothing", 0.0))
    if spec is not None:
        build_model(groups["model"], groups["init"], spec, np.random.default_rng(0), np.float32)
        _check_metric_names(top, spec.task, groups["schedule"])
        if spec.kind == "tokens" and top.get("probe_every") is not None:
            raise UsageError("probe_every: per-layer statistics are for models made of layers "
                             f"in a row (logreg, mlp), not {groups['model']['name']!r}")
    if groups["dataset"].get("stream") and spec is not None:
        _check_streams(groups["dataset"], top["batch_size"])
    module = hooks(top.get("experiment"))
    for group, instead in getattr(module, "OWN_PIECES", {}).items():
        if group in mine:
            raise UsageError(f"experiment={top['experiment']} does not use the {group} option: it "
                             f"computes with {instead}; your {group} {mine[group]} would not run "
                             f"(the experiments of the plan that train with the config's pieces "
                             f"take it)")
    if hasattr(module, "validate"):
        module.validate({**top, **groups})  # the groups too: an experiment may need a model
    if unavailable:
        raise unavailable[0]


def _check_eval(node: Any, config: DictConfig) -> None:
    """eval.train_batches / eval.val_batches: K >= 1 batches, or null for the whole split; not
    for text read as streams, whose evaluation carries a state through the text in order."""
    if node is None:
        return
    if not isinstance(node, dict) or set(node) - {"train_batches", "val_batches"}:
        raise UsageError(f"eval takes train_batches and val_batches (each K batches or null for "
                         f"the whole split), got {node!r}")
    for key in ("train_batches", "val_batches"):
        _int({f"eval.{key}": node.get(key)}, f"eval.{key}", 1, allow_none=True)
        if node.get(key) is not None and _plain(config, "dataset").get("stream"):
            raise UsageError(f"eval.{key}: text read as streams (dataset.stream=true) is scored "
                             f"in order with its state carried through, so whole; set "
                             f"eval.{key}=null")


def _check_streams(dataset: dict, batch_size: int | None) -> None:
    """Text read as B streams (B = batch_size; null = the whole training split, as the training
    loop takes it) needs B windows in each split. The split sizes need the text itself: it is
    read here (1.1 MB for tiny Shakespeare, well under a second), not at the first epoch, so
    that a bad B is refused before the run's folder is made."""
    from dlx.assemble import build_dataset
    from dlx.training.chunks import stream_batch

    data = build_dataset(dataset, np.random.default_rng(0))
    n, n_val = len(data.X_train), len(data.X_val)
    streams = stream_batch({"batch_size": batch_size}, data)
    if min(n, n_val) < streams:
        given = "null (the whole training split)" if batch_size is None else str(batch_size)
        raise UsageError(f"dataset.stream=true: batch_size {given} means {streams} streams, which "
                         f"need at least that many windows of block_size in each split (train "
                         f"{n}, validation {n_val}): set batch_size <= {min(n, n_val)}")


def _check_label_smoothing(eps, task: str | None) -> None:
    """The value; and, when the data set's task is known (None: its files are missing), that it
    is classification."""
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 <= eps < 1:
        raise UsageError(f"label_smoothing must be a number in [0, 1), got {eps!r}")
    if eps and task is not None and task != "classification":
        raise UsageError(f"label_smoothing is for classification data; this data set's task is "
                         f"{task} (set label_smoothing=0)")


def _check_init(node: dict) -> None:
    """The init option's keys, and its values: it draws one small weight."""
    factory, node, _ = registry.factory_of(INITS, "init", node)
    kwargs = registry.check_kwargs(factory, node, "init", ("shape", "rng"))
    try:
        factory((3, 2), np.random.default_rng(0), **kwargs)
    except ValueError as e:
        raise UsageError(f"invalid init {factory.__name__!r}: {e}") from None


def _check_metric_names(top: dict, task: str, schedule: dict | None = None) -> None:
    """early_stopping.monitor, monitor and reduce_on_plateau's monitor must name a metric this
    data set's task logs (a regression run has no accuracy, a classification run no RMSE)."""
    logged = ("loss", *metric_names(task))
    keys = [("early_stopping.monitor", top["early_stopping"]["monitor"])] * \
        (top["early_stopping"]["patience"] is not None)
    keys.append(("monitor", top.get("monitor", "best:val/loss").partition(":")[2]))
    if schedule and schedule.get("name") == "reduce_on_plateau":
        keys.append(("schedule.monitor", str(schedule.get("monitor", "val/loss"))))
    for key, value in keys:
        split, _, metric = value.partition("/")
        if split in ("train", "val", "test") and metric in LOWER_IS_BETTER and metric not in logged:
            raise UsageError(f"{key}: {task} runs log {', '.join(logged)}, not {metric!r} "
                             f"(e.g. val/{logged[-1]})")


def _check_early_stopping(es) -> None:
    if not isinstance(es, dict) or set(es) != {"patience", "monitor", "min_delta"}:
        raise UsageError("early_stopping must have exactly patience, monitor and min_delta")
    _int(es, "patience", 1, allow_none=True)
    split, _, metric = str(es["monitor"]).partition("/")
    if split not in ("train", "val") or metric not in LOWER_IS_BETTER:
        raise UsageError("early_stopping.monitor must be one of val/loss, val/acc, train/loss, "
                         f"train/acc (regression: val/rmse, val/mae, val/r2, ...), "
                         f"got {es['monitor']!r}")
    if not isinstance(es["min_delta"], (int, float)) or es["min_delta"] < 0:
        raise UsageError(f"early_stopping.min_delta must be a number >= 0, got {es['min_delta']!r}")
