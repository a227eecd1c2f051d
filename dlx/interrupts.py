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
import time

_received: list[int] = []
_last = [float("-inf")]  # when the last signal came (time.monotonic)
_forwarders: list = []
SIGNALS = (signal.SIGINT, signal.SIGTERM)
TWICE = 1.0  # s: a second signal this soon is the same interrupt arriving twice


def _handler(signum, frame):
    now, first = time.monotonic(), not _received
    if not first and now - _last[0] < TWICE:
        # Ctrl-C reaches a sweep's worker from the terminal and again from the sweep, which
        # passes every signal on: the second must not cut short the recording of the first
        return
    _received.append(signum)
    _last[0] = now
    if first:
        for forward in list(_forwarders):
            forward(signum)
    raise KeyboardInterrupt(f"signal {signum}")


def forward(callback) -> None:
    """``callback(signum)`` runs on the first Ctrl-C or SIGTERM, before the KeyboardInterrupt is
    raised: a sweep passes the signal on to its launcher's worker processes there and waits for
    them to record it (:func:`dlx.app._pass_to_workers`). :func:`clear` forgets it."""
    _forwarders.append(callback)


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


def settle(previous: dict | None) -> None:
    """As :func:`restore`, but Ctrl-C and SIGTERM are ignored from now on: a command whose work
    is done and recorded (it only says so and exits) is not turned into "interrupted", or killed
    by the signal, by one that comes late."""
    restore(previous)
    if threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)


def clear() -> None:
    _received.clear()
    _forwarders.clear()
    _last[0] = float("-inf")


def check() -> None:
    """Raise KeyboardInterrupt if a signal came and was swallowed on its way."""
    if _received:
        raise KeyboardInterrupt(f"signal {_received[-1]}")
