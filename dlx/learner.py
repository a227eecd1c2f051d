"""The learner's own implementations, named in a config node by ``_target_`` (Hydra's key).

``{_target_: mine.optim.Adam, lr: 0.001}`` in the optimizer group trains with the learner's
class where ``{name: adam, lr: 0.001}`` trains with dlx's. The node's other keys are checked
against the class's signature exactly as dlx's own options are (:mod:`dlx.registry`), so the
learner's code receives plain Python values and NumPy arrays. Three keys are dlx's, not the
learner's: ``name`` (the label in tables and legends; the option's file name by default),
``reference`` (the dlx option it implements: its tuned settings apply, `dlx check` compares with
it) and, for optimizers, the framework's ``weight_decay``, ``no_decay_bias`` and ``lr_mult``.

Importing is done here rather than by ``hydra.utils.get_object`` because its errors wrap the
learner's own (a SyntaxError becomes "Error loading 'mine.optim.Adam'" with the cause three
exceptions down); a learner needs the file and line first.

What a group's implementation must be (the contract, checked before anything is created):

* optimizer: a subclass of :class:`dlx.optim.Optimizer` defining ``update(self, p, g, state)``;
* model: a subclass of :class:`dlx.nn.Module` defining ``forward`` and ``backward``, built as
  ``Model(spec, **hyperparameters)`` (``dtype=`` and ``rng=`` too if its signature takes them);
* init: a function ``(shape, rng, **hyperparameters) -> array``;
* schedule: a function ``(step, lr, total_steps, **hyperparameters) -> lr at that step``;
* loss: a class with ``forward(self, scores, y) -> float`` (the batch mean) and
  ``backward(self) -> dscores`` (shaped as scores), built as ``Loss(**hyperparameters)``;
* regularizer: a class with ``penalty(self, w) -> float`` and ``grad(self, w) -> dpenalty/dw``
  for one weight array, built as ``Reg(**hyperparameters)``; the framework sums it over the
  weights (never biases), adds it to the logged objective and its gradient after backward
  (:class:`LearnerPenalty`).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import numbers
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping

from dlx.errors import UsageError

TARGET = "_target_"
GROUPS = ("optimizer", "model", "loss", "schedule", "init", "regularizer")  # the learner's code
OWN_KEYS = ("name", "reference", TARGET)  # dlx's keys in a learner's node, never passed on
_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")  # package.module.Name


def is_path(value: Any) -> bool:
    """A ``package.module.Name`` path (never one of dlx's option names, which have no dot)."""
    return isinstance(value, str) and bool(_PATH.match(value))


def is_learner(node: Mapping | None) -> bool:
    return isinstance(node, Mapping) and TARGET in node


ACTIVATION = "activation"  # the workspace's conf/activation/<name>.yaml: a layer for dlx's mlp


def activation_target(a: Any) -> str | None:
    """The learner's layer an activation option names: a ``package.module.Class`` path as
    given, or the ``_target_`` of the workspace's ``conf/activation/<a>.yaml``; None for dlx's
    own activations (and anything else, which the model's factory refuses by name)."""
    if isinstance(a, str) and _PATH.match(a):
        return a
    option = activation_option(a)
    return None if option is None else option[TARGET]


def activation_option(a: Any) -> dict | None:
    """The workspace's ``conf/activation/<a>.yaml``, read and checked (a ``_target_`` path, no
    options: dlx builds an activation with none), or None when there is no such file."""
    ws = workspace()
    path = ws / "conf" / ACTIVATION / f"{a}.yaml" if ws and isinstance(a, str) and a else None
    if path is None:
        return None
    from dlx.nn.activations import ACTIVATIONS

    if not path.is_file():
        yours = sorted(p.stem for p in path.parent.glob("*.yaml"))
        if a not in ACTIVATIONS and yours:  # a typo, most likely: say what there is
            raise UsageError(f"model.activation={a}: not one of yours ({', '.join(yours)}, in "
                             f"{path.parent}) nor of dlx's ({', '.join(ACTIVATIONS)})")
        return None
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if a in ACTIVATIONS:
        raise UsageError(f"model.activation={a}: {path} has the name of dlx's own {a}; name "
                         f"yours otherwise (my_{a}), so that runs say whose ran")
    try:
        option = OmegaConf.to_container(OmegaConf.load(path))
        target = option.get(TARGET)
    except (OmegaConfBaseException, OSError, AttributeError) as e:
        raise UsageError(f"model.activation={a}: cannot read {path}: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if not (isinstance(target, str) and _PATH.match(target)):
        raise UsageError(f"model.activation={a}: {path} needs `_target_: package.module.Class` "
                         f"(your layer, e.g. mine.layers.ReLU), got {target!r}")
    extra = sorted(set(option) - {TARGET, "reference", "name"})
    if extra:
        raise UsageError(f"model.activation={a}: {path} sets {', '.join(extra)}, but dlx builds "
                         f"an activation with no options (as it builds its own): make the "
                         f"value your class's default")
    return option


def pieces(cfg: Mapping) -> dict[str, str]:
    """Where a run uses the learner's code: ``{"optimizer": "mine.optim.Adam", ...}``, and
    ``"model.activation"`` for an activation of the learner's (a path, or a workspace file's)."""
    out = {g: cfg[g][TARGET] for g in GROUPS if is_learner(cfg.get(g))}
    model = cfg.get("model")
    acts = model.get("activation") if isinstance(model, Mapping) else None
    named = [t for t in map(activation_target, acts if isinstance(acts, (list, tuple)) else [acts])
             if t is not None]
    if named:
        out["model.activation"] = ",".join(dict.fromkeys(named))
    return out


def resolve_pieces(model_node: Mapping) -> dict:
    """The model node with the learner's activations (see :func:`activation_target`) imported:
    subclasses of dlx.nn.Module with forward and backward, as a whole model's."""
    acts = model_node.get("activation")
    if acts is None:
        return dict(model_node)

    def one(a):
        target = activation_target(a)
        if target is not None:
            cls = load(target, "model.activation")
            check_contract(cls, "model", label_target(target))
            return checked_layer(cls, f"model.activation {label_target(target)}")
        return a
    return {**model_node, "activation": [one(a) for a in acts] if isinstance(acts, (list, tuple))
            else one(acts)}


def is_learner_factory(factory: Callable, registry: Mapping[str, Callable]) -> bool:
    """Not one of the registry's own implementations."""
    return all(factory is not f for f in registry.values())


def workspace() -> Path | None:
    ws = os.environ.get("DLX_WORKSPACE")
    return Path(ws) if ws else None


def _frames(exc: BaseException) -> list:
    """The frames of ``exc``'s traceback in the learner's own files, outermost first."""
    return [f for f in traceback.extract_tb(exc.__traceback__) if _theirs(f.filename)]


def _where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame of ``exc`` outside dlx and Python itself."""
    frames = _frames(exc)
    return f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""


def _theirs(filename: str) -> bool:
    """A frame of the learner's code: not dlx's, not the standard library's, not a package's."""
    path = os.path.abspath(filename)
    dlx_root = os.path.dirname(os.path.abspath(__file__))
    return not (path.startswith(dlx_root + os.sep) or "site-packages" in path
                or path.startswith(os.path.dirname(os.__file__)) or filename.startswith("<frozen"))


def load(target: Any, group: str) -> Callable:
    """The class or function ``target`` names ("package.module.Name"), or a UsageError saying
    why not: the learner's SyntaxError with its file and line, the missing module or name."""
    if isinstance(target, str) and target.startswith("__dlx_inline__."):  # dlx.run's pieces
        from dlx.cells import PIECES

        if target not in PIECES:
            raise UsageError(f"{group}._target_ {target}: a piece given to dlx.run in another "
                             f"process (inline pieces run with the basic launcher only)")
        return PIECES[target]
    if not isinstance(target, str) or not _PATH.match(target):
        raise UsageError(f"{group}._target_ must be a dotted path such as mine.optim.Adam, "
                         f"got {target!r}")
    module_name, _, attr = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as e:
        raise UsageError(f"{group}._target_ {target}: {e.filename}:{e.lineno}: SyntaxError: "
                         f"{e.msg}") from None
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):  # the target's own module (or package)
            ws = workspace()
            where = (f"in the workspace {ws}" if ws else
                     "on the import path (no workspace here: `dlx init` makes one)")
            raise UsageError(f"{group}._target_ {target}: no module named {e.name!r} {where}") \
                from None
        raise UsageError(f"{group}._target_ {target}: {_where(e)}ModuleNotFoundError: {e}") \
            from None
    except Exception as e:  # noqa: BLE001 - anything the learner's module raises on import
        raise UsageError(f"{group}._target_ {target}: importing {module_name} raised "
                         f"{_where(e)}{type(e).__name__}: {e}") from None
    if not hasattr(module, attr):
        names = sorted(n for n, v in vars(module).items()
                       if not n.startswith("_") and callable(v)
                       and getattr(v, "__module__", None) == module.__name__)
        raise UsageError(f"{group}._target_ {target}: {module_name} has no {attr!r} "
                         f"(it defines: {', '.join(names) or 'nothing callable'})")
    return getattr(module, attr)


def _defines(cls: type, base: type, method: str) -> bool:
    return getattr(cls, method, None) is not getattr(base, method, None)


CLASSES = {  # the groups whose implementation is a plain class: its methods, its contract
    "loss": (("forward", "backward"),
             "forward(self, scores, y) -> float and backward(self) -> dscores"),
    "regularizer": (("penalty", "grad"),
                    "penalty(self, w) -> float and grad(self, w) -> an array shaped as w")}


def check_contract(factory: Callable, group: str, target: str) -> None:
    """Refuse an implementation that cannot stand in for dlx's in ``group``: name the missing
    base class or method (before anything is created)."""
    from dlx.nn import Module
    from dlx.optim import Optimizer

    contracts = {"optimizer": (Optimizer, ("update",), "dlx.optim.Optimizer"),
                 "model": (Module, ("forward", "backward"), "dlx.nn.Module")}
    if group in contracts:
        base, methods, base_name = contracts[group]
        if not (inspect.isclass(factory) and issubclass(factory, base)):
            raise UsageError(f"{group} {target}: must be a class subclassing {base_name} (the "
                             f"contract in `help({base_name})`), got {factory!r}")
        missing = [m for m in methods if not _defines(factory, base, m)
                   and not (group == "optimizer" and _defines(factory, base, "_update"))]
        if missing:
            signature = {"update": "update(self, p, g, state)", "forward": "forward(self, x)",
                         "backward": "backward(self, dout)"}
            raise UsageError(f"{group} {target}: does not define "
                             f"{', '.join(signature[m] for m in missing)}, the method(s) "
                             f"{base_name}'s contract asks of it")
    elif group in CLASSES:
        methods, contract = CLASSES[group]
        missing = [m for m in methods if not callable(getattr(factory, m, None))]
        if not inspect.isclass(factory) or missing:
            raise UsageError(f"{group} {target}: must be a class with {contract}"
                             + (f"; it lacks {', '.join(missing)}" if inspect.isclass(factory)
                                else f", got {factory!r}"))
    elif not callable(factory) or inspect.isclass(factory):
        raise UsageError(f"{group} {target}: must be a function "
                         f"({'(shape, rng, ...)' if group == 'init' else '(step, lr, total_steps, ...)'}), "
                         f"got {factory!r}")


def resolve(node: Mapping, group: str) -> tuple[Callable, dict]:
    """(the learner's factory, the node's hyperparameters) for a node with ``_target_``."""
    factory = load(node[TARGET], group)
    check_contract(factory, group, label_target(node[TARGET]))
    if group == "schedule":
        factory = _schedule_builder(factory)
    if group == "init":
        _positional(factory, "init", ("shape", "rng"), "the weight's values, an array of that shape")
        factory = _checked_init(factory)
    return factory, {k: v for k, v in node.items() if k not in OWN_KEYS}


def _positional(fn: Callable, group: str, names: tuple[str, ...], returns: str) -> None:
    """Refuse a function that cannot be called with ``names`` as its first positional
    arguments, naming what it must take and what its signature is."""
    params = list(inspect.signature(fn).parameters.values())
    if len(params) < len(names) or any(p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                                       for p in params[:len(names)]):
        raise UsageError(f"{group} {label_target(fn)}: must take ({', '.join(names)}, ...) and "
                         f"return {returns}; its signature is {inspect.signature(fn)}")


def _number(value, what: str) -> float:
    """``value`` as a float, or a TypeError saying which function returned what (called every
    step: NumPy's scalars are ``numbers.Real``, a 0-d array has ``ndim`` 0)."""
    if isinstance(value, numbers.Real) or getattr(value, "ndim", None) == 0:
        return float(value)
    raise TypeError(f"{what} returned {type(value).__name__}"
                    + (" (a forgotten return?)" if value is None else f" {value!r}"[:80])
                    + "; it must return the learning rate, one number")


def _checked_init(fn: Callable) -> Callable:
    """The learner's init, its result checked: an array of the shape asked for."""
    import functools

    import numpy as np

    @functools.wraps(fn)
    def init(shape, rng, **options):
        out = fn(shape, rng, **options)
        if np.shape(out) != tuple(shape):
            raise TypeError(f"init {label_target(fn)} returned "
                            + ("None (a forgotten return?)" if out is None else
                               f"shape {np.shape(out)}")
                            + f" for a weight of shape {tuple(shape)}")
        return out

    init.__wrapped_learner__ = fn  # what `dlx check` keeps its verdict on
    return init


def _schedule_builder(fn: Callable) -> Callable:
    """A learner's schedule ``fn(step, lr, total_steps, **options) -> lr`` as the builder dlx's
    schedules are: ``(lr, total_steps, **options) -> (step -> lr)``."""
    _positional(fn, "schedule", ("step", "lr", "total_steps"), "the learning rate at that step")
    params = list(inspect.signature(fn).parameters.values())
    what = f"schedule {label_target(fn)}"

    def builder(lr, total_steps, **options):
        return lambda t: _number(fn(t, lr, total_steps, **options), what)

    builder.__signature__ = inspect.Signature(
        [inspect.Parameter("lr", inspect.Parameter.POSITIONAL_OR_KEYWORD),
         inspect.Parameter("total_steps", inspect.Parameter.POSITIONAL_OR_KEYWORD),
         *[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params[3:]
           if p.kind is not p.VAR_KEYWORD]])
    builder.__annotations__ = {k: v for k, v in getattr(fn, "__annotations__", {}).items()
                               if k != "return"}
    builder.__wrapped_learner__ = fn
    return builder


def adopt(config, choices: Mapping[str, Any]) -> None:
    """Give each learner node without a ``name`` the name of the option that chose it
    (``optimizer=my_adam`` -> ``my_adam``; Hydra's ``runtime.choices``), so that tables,
    legends and experiments read it as they read dlx's option names. ``config`` is Hydra's
    DictConfig, changed in place (before it is resolved)."""
    from omegaconf import open_dict

    for group in GROUPS:
        node = config.get(group)
        if node is not None and TARGET in node and node.get("name") is None:
            with open_dict(node):
                node["name"] = str(choices.get(group) or label_target(node[TARGET]))


def label_target(target: Any) -> str:
    if isinstance(target, str):
        module, _, name = target.rpartition(".")
        return f"{module}:{name}"
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', target)}"


class ContractError(TypeError):
    """The learner's code broke its contract in a way dlx can name (a shape, a return value):
    the message is the diagnosis; no traceback of dlx's adds to it."""


def checked_layer(cls: type, label: str) -> type:
    """The learner's layer class, its backward checked as it runs inside dlx's model: dL/dx
    shaped as the forward's input (else the error surfaces later in dlx's own layer, naming
    nothing of theirs). A subclass: isinstance, the name and the learner's frames are kept."""
    import numpy as np

    def forward(self, x):
        self._dlx_input_shape = np.shape(x)
        return cls.forward(self, x)

    def backward(self, dout):
        dx = cls.backward(self, dout)
        if dx is None or np.shape(dx) != self._dlx_input_shape:
            got = "None" if dx is None else f"shape {np.shape(dx)}"
            raise ContractError(f"{label}: backward returned {got}; its forward's input had "
                                f"shape {self._dlx_input_shape}: backward returns dL/dx, shaped "
                                f"as x (for an elementwise layer, dout times the local "
                                f"derivative, entry by entry)")
        return dx
    return type(cls.__name__, (cls,), {"forward": forward, "backward": backward,
                                       "__module__": cls.__module__,
                                       "__qualname__": cls.__qualname__})


class CheckedLoss:
    """A learner's loss, checked at its first use: forward must return one number (the batch
    mean), backward an array shaped as the scores (the mistake named, with both shapes)."""

    def __init__(self, loss, name: str):
        self.loss, self.name, self._checked = loss, name, False
        self._shape = None

    def forward(self, scores, y) -> float:
        import numpy as np

        value = self.loss.forward(scores, y)
        if not self._checked:
            if np.ndim(value) != 0:
                raise ContractError(f"loss {self.name}: forward returned an array of shape "
                                f"{np.shape(value)}; it must return one number, the mean over "
                                f"the batch (np.mean(...), or .mean())")
            self._shape = scores.shape
        return float(value)

    def backward(self):
        import numpy as np

        d = self.loss.backward()
        if not self._checked:
            if np.shape(d) != self._shape:
                raise ContractError(f"loss {self.name}: backward returned shape {np.shape(d)}, the "
                                f"scores have shape {self._shape}: dL/dscores has the scores' "
                                f"shape (one entry per score, the 1/N of the mean included)")
            self._checked = True
        return d


class LearnerPenalty:
    """A learner's regularizer as dlx's penalties are used (:mod:`dlx.optim.regularizers`): its
    ``penalty(w)`` summed over the weights (``Parameter.decay``: never biases), its ``grad(w)``
    added to each weight's gradient after backward; no proximal step (that needs the
    optimizer's step size, which is dlx's). Its first gradient is checked: an array shaped as
    the weight (the mistake named, with both shapes)."""

    active = True
    proximal = False

    def __init__(self, reg, name: str):
        self.reg, self.name, self._checked = reg, name, False

    def penalty(self, params) -> float:
        import numpy as np

        total = 0.0
        for p in params:
            if p.decay:
                value = self.reg.penalty(p.data)
                if np.ndim(value) != 0:
                    raise TypeError(f"regularizer {self.name}: penalty returned an array of shape "
                                    f"{np.shape(value)} for weight {p.name} {p.data.shape}; it "
                                    f"must return one number (sum over the weight's entries)")
                total += float(value)
        return total

    def add_grad(self, params) -> None:
        import numpy as np

        for p in params:
            if p.decay:
                g = self.reg.grad(p.data)
                if not self._checked and np.shape(g) != p.data.shape:
                    raise TypeError(f"regularizer {self.name}: grad returned shape "
                                    f"{np.shape(g)} for weight {p.name} of shape {p.data.shape}:"
                                    f" d(penalty)/dw has the weight's shape")
                p.grad += g
        self._checked = True

    def after_step(self, opt) -> None:
        pass


def cast_parameters(model, dtype) -> None:
    """Every parameter of a learner's model in the run's dtype (``np.zeros`` makes float64; a
    float32 run computes in float32, as dlx's own models do)."""
    import numpy as np

    for p in model.parameters():
        if p.data.dtype != dtype:
            p.data = p.data.astype(dtype)
            p.grad = np.zeros_like(p.data)


def last_frame(exc: BaseException) -> str | None:
    """Where in the learner's own files ``exc`` was raised (``mine/models.py:14 in __init__``),
    or None when no frame of its traceback is theirs."""
    frames = _frames(exc)
    if not frames:
        return None
    f = frames[-1]
    root = workspace()
    path = Path(f.filename).resolve()
    shown = path.relative_to(root.resolve()) if root and root.resolve() in path.parents else path
    return f"{shown}:{f.lineno} in {f.name}"


def their_frames(exc: BaseException) -> str | None:
    """The traceback of ``exc`` cut to the frames of the learner's own files (what they must
    debug), or None when none of its frames is theirs."""
    frames = _frames(exc)
    if not frames:
        return None
    lines = "".join(traceback.format_list(frames))
    return (f"Traceback (your code; dlx's frames with --debug):\n{lines}"
            f"{type(exc).__name__}: {exc}")


# --- provenance --------------------------------------------------------------------------------

def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_files(root: Path | None = None) -> list[Path]:
    """The learner's modules loaded in this process: every imported module whose file lies in
    the workspace (the targets' own and whatever they import from it)."""
    root = root or (Path(os.environ["DLX_SOURCE"]) if os.environ.get("DLX_SOURCE")
                    else workspace())
    if root is None:
        return []
    root = root.resolve()
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path:
            p = Path(path).resolve()
            if p.suffix == ".py" and root in p.parents and "runs" not in p.relative_to(root).parts:
                files.add(p)
    return sorted(files)


def record(cfg: Mapping, run_dir: Path, groups: tuple[str, ...]) -> dict | None:
    """Copy the learner's source into ``run_dir/source/`` and return what summary.json keeps:
    the targets by group and each file's sha256 (None when the run used no learner code)."""
    targets = {g: t for g, t in pieces(cfg).items() if g.partition(".")[0] in groups}
    if not targets:
        return None
    root = Path(os.environ["DLX_SOURCE"]) if os.environ.get("DLX_SOURCE") else workspace()
    files = {}
    for path in source_files(root) if root else []:
        rel = path.relative_to(root.resolve())
        dest = run_dir / "source" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes()
        dest.write_bytes(data)
        files[rel.as_posix()] = hashlib.sha256(data).hexdigest()
    for t in targets.values():  # dlx.run's pieces: their source, as the notebook holds it
        if t.startswith("__dlx_inline__."):
            from dlx.cells import PIECES, source_of

            rel = f"__dlx_inline__/{t.rpartition('.')[2]}.py"
            data = source_of(PIECES[t]).encode()
            (run_dir / "source" / rel).parent.mkdir(parents=True, exist_ok=True)
            (run_dir / "source" / rel).write_bytes(data)
            files[rel] = hashlib.sha256(data).hexdigest()
    return {"targets": dict(targets), "files": files, "workspace": str(root) if root else None}


def short_label(node: Mapping, source: Mapping | None = None) -> str:
    """``my_adam (mine.optim:Adam @3fa2c1)``: the option, the class, its module file's hash."""
    target = node.get(TARGET)
    if target is None:
        return str(node.get("name"))
    text = label_target(target)
    module = text.partition(":")[0].replace(".", "/")
    digest = next((h for f, h in (source or {}).get("files", {}).items()
                   if f in (f"{module}.py", f"{module}/__init__.py")), None)
    inner = f"{text} @{digest[:6]}" if digest else text
    return f"{node.get('name') or text} ({inner})"
