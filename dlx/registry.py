"""Config group option -> implementation, checked against the implementation's own signature.

Each group (optimizer, schedule, ...) is a dict ``name -> factory``. A config node such as
``{name: adam, lr: 0.01}`` selects the factory by ``name`` and passes the other keys as keyword
arguments. The factory's signature is the schema: unknown keys and wrongly typed values are
reported as a ``UsageError`` naming the key and what would be valid, before anything is built;
range checks live in the factories themselves (as in torch.optim) and are reported the same way.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Callable, Mapping

from dlx.errors import UsageError

_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _options(registry: Mapping[str, Any]) -> str:
    return ", ".join(sorted(registry))


def lookup(registry: Mapping[str, Callable], group: str, name: Any) -> Callable:
    if name not in registry:
        raise UsageError(f"unknown {group} {name!r} (valid: {_options(registry)})")
    return registry[name]


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """``value`` as type ``hint`` (int -> float and list -> tuple are allowed), else UsageError."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except UsageError as e:
                errors.append(str(e))
        raise UsageError(errors[0])
    if origin is list:
        (arg,) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, arg, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise UsageError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in _TYPE_WORDS:
        if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
            return value
        raise UsageError(f"{key}: expected {_TYPE_WORDS[hint]}, got {value!r}")
    return value  # unannotated or a type we do not check


def _target(factory: Callable) -> Callable:
    return factory.__init__ if inspect.isclass(factory) else factory


def check_kwargs(factory: Callable, kwargs: Mapping[str, Any], where: str,
                 provided: tuple[str, ...] = ()) -> dict[str, Any]:
    """Validate ``kwargs`` against ``factory``'s keyword parameters; return them coerced.

    ``provided`` names parameters the caller fills in itself (e.g. ``params``), which a config
    may not set.
    """
    target = _target(factory)
    sig = inspect.signature(target)
    hints = typing.get_type_hints(target)
    allowed = [n for n, p in sig.parameters.items()
               if n not in ("self", *provided)
               and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    out = {}
    for key, value in kwargs.items():
        if key not in allowed:
            valid = ", ".join(allowed) if allowed else "none"
            raise UsageError(f"unknown key {where}.{key} (valid keys: {valid})")
        out[key] = _coerce(value, hints.get(key, Any), f"{where}.{key}")
    missing = [n for n in allowed
               if sig.parameters[n].default is inspect.Parameter.empty and n not in out]
    if missing:
        raise UsageError(f"{where}: missing value for {', '.join(missing)}")
    return out


def factory_of(registry: Mapping[str, Callable], group: str, node: Mapping[str, Any]
               ) -> tuple[Callable, dict[str, Any], str]:
    """(the implementation, its options, its name) for a node: dlx's option ``name``, or the
    learner's class or function ``_target_`` (:mod:`dlx.learner`)."""
    from dlx import learner

    if learner.is_learner(node):
        factory, options = learner.resolve(node, group.partition("[")[0].partition(".")[0])
        return factory, options, str(node.get("name") or learner.label_target(node["_target_"]))
    options = dict(node)
    name = options.pop("name", None)
    return lookup(registry, group, name), options, name


def _accepts(factory: Callable, name: str) -> bool:
    params = inspect.signature(_target(factory)).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def build(registry: Mapping[str, Callable], group: str, node: Mapping[str, Any],
          *args: Any, **provided: Any) -> Any:
    """Construct the option named by ``node['name']`` (or the learner's ``_target_``) with the
    node's other keys as kwargs.

    ``args``/``provided`` are what the caller supplies (parameters, sizes, ...); a learner's
    implementation gets those of ``provided`` its signature takes. A ValueError raised by the
    factory (an out-of-range value) becomes a UsageError naming the group.
    """
    from dlx import learner

    factory, node, name = factory_of(registry, group, node)
    if learner.is_learner_factory(factory, registry):
        provided = {k: v for k, v in provided.items() if _accepts(factory, k)}
    positional = [n for n in inspect.signature(_target(factory)).parameters if n != "self"]
    positional = positional[:len(args)]
    kwargs = check_kwargs(factory, node, group, (*positional, *provided))
    try:
        return factory(*args, **provided, **kwargs)
    except ValueError as e:
        raise UsageError(f"invalid {group} {name!r}: {e}") from e
