"""The learner's classes and functions defined in this process (a notebook cell), given to
``dlx.run``: where ``_target_`` paths of the pseudo-module ``__dlx_inline__`` find them, and
their source for the record. A leaf: the loader (:mod:`dlx.learner`) and the entry point
(:mod:`dlx.inline`) both read it."""

from __future__ import annotations

from typing import Callable

from dlx.errors import UsageError

MODULE = "__dlx_inline__"  # the pseudo-module of inline pieces in _target_ paths
PIECES: dict[str, Callable] = {}  # "MODULE.Name" -> the class or function


def target(obj: Callable) -> str:
    """The ``_target_`` path that names ``obj`` in this process."""
    name = getattr(obj, "__name__", None)
    if not callable(obj) or not name or not name.isidentifier():
        raise UsageError(f"a piece must be a class or a named function, got {obj!r}")
    key = f"{MODULE}.{name}"
    PIECES[key] = obj  # a cell run again: its newest definition
    return key


def source_of(obj: Callable) -> str:
    """The source of a class or function, also one defined in a notebook cell (where
    ``inspect.getsource`` of a class fails: ``__main__`` has no file; its methods have one)."""
    import inspect
    import linecache

    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        pass
    functions = [f for f in vars(obj).values() if inspect.isfunction(f)] \
        if inspect.isclass(obj) else []
    if not functions:
        return f"# source not available for {obj!r}\n"
    code = min((f.__code__ for f in functions), key=lambda c: c.co_firstlineno)
    lines = linecache.getlines(code.co_filename)
    if len(lines) < code.co_firstlineno:  # exec'd text that left no lines behind
        return f"# source not available for {obj!r} (defined in {code.co_filename})\n"
    start = next((i for i in range(code.co_firstlineno - 1, -1, -1)
                  if lines[i].lstrip().startswith(f"class {obj.__name__}")), None)
    if start is None:
        return "".join("".join(inspect.getsourcelines(f)[0]) for f in functions)
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip()
                                or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    return "".join(lines[start:end])
