"""Ctrl-C and SIGTERM, the same way everywhere: a KeyboardInterrupt, and a note that it came.

The note matters because an interrupt can be swallowed: one that lands while a C extension is
being imported (matplotlib's, on a run's first figure) comes out as ``ImportError:
initialization failed``, and one that lands in a weakref callback during garbage collection is
"ignored" by Python. Code that catches broad exceptions calls :func:`check` afterwards, and
Python's report of an ignored one is kept off the console.
"""

from __future__ import annotations

import signal
import sys
import threading

_received: list[int] = []
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _handler(signum, frame):
    _received.append(signum)
    raise KeyboardInterrupt(f"signal {signum}")


def _unraisable(previous):
    def hook(info) -> None:
        if isinstance(info.exc_value, KeyboardInterrupt) and _received:
            return  # ours, noted: check() raises it again where it can be handled
        previous(info)
    hook.dlx = True
    return hook


def install() -> dict | None:
    """Route SIGINT and SIGTERM to KeyboardInterrupt; return the previous handlers (None off
    the main thread, where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = {s: signal.signal(s, _handler) for s in SIGNALS}
    previous["unraisable"] = sys.unraisablehook
    if not getattr(sys.unraisablehook, "dlx", False):
        sys.unraisablehook = _unraisable(sys.unraisablehook)
    return previous


def restore(previous: dict | None) -> None:
    previous = dict(previous or {})
    if "unraisable" in previous:
        sys.unraisablehook = previous.pop("unraisable")
    for s, handler in previous.items():
        signal.signal(s, handler)


def clear() -> None:
    _received.clear()


def check() -> None:
    """Raise KeyboardInterrupt if a signal came and was swallowed on its way."""
    if _received:
        raise KeyboardInterrupt(f"signal {_received[-1]}")
