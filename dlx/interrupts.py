"""Ctrl-C and SIGTERM, the same way everywhere: a KeyboardInterrupt, and a note that it came.

The note matters because an interrupt can be swallowed: one that lands while a C extension is
being imported (matplotlib's, on a run's first figure) comes out as ``ImportError:
initialization failed``. Code that catches broad exceptions asks :func:`received` afterwards.
"""

from __future__ import annotations

import signal
import threading

_received: list[int] = []
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _handler(signum, frame):
    _received.append(signum)
    raise KeyboardInterrupt(f"signal {signum}")


def install() -> dict | None:
    """Route SIGINT and SIGTERM to KeyboardInterrupt; return the previous handlers (None off
    the main thread, where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return {s: signal.signal(s, _handler) for s in SIGNALS}


def restore(previous: dict | None) -> None:
    for s, handler in (previous or {}).items():
        signal.signal(s, handler)


def received() -> bool:
    return bool(_received)


def clear() -> None:
    _received.clear()


def check() -> None:
    """Raise KeyboardInterrupt if a signal came and was swallowed on its way."""
    if _received:
        raise KeyboardInterrupt(f"signal {_received[-1]}")
