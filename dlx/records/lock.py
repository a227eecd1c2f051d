"""Exclusive locks on a run or sweep directory, held for as long as a process writes into it.

py-filelock (flock(2) on POSIX) rather than a lock file of our own: the kernel releases the
lock when its process dies, however it dies, so the lock of a dead process is simply free to
take, and nothing needs cleaning up after a SIGKILL. Beside the lock, the holder writes who it
is (pid, host, since) for the message a second process prints.
"""

from __future__ import annotations

import json
import os
import socket
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from dlx.errors import UsageError

LOCK = ".dlx.lock"            # the run's (or sweep's) lock, held while a process writes into it
WHO = ".dlx.lock.who"         # who holds it: {"pid", "host", "since", "what"}
NOTES_LOCK = ".dlx.notes.lock"  # notes and tags: a short read-modify-write, waited for


def _lock(folder: Path, name: str = LOCK, timeout: float = 0):
    from filelock import FileLock

    # thread_local=False: a sweep's jobs in threads of one process see one holder
    return FileLock(str(folder / name), timeout=timeout, thread_local=False)


def _take(lock, where: Path, busy: Callable[[], str]):
    """``lock`` acquired, or one UsageError: ``busy()`` when another process holds it."""
    from filelock import Timeout

    try:
        lock.acquire()
    except Timeout:
        raise UsageError(busy()) from None
    except OSError as e:
        raise UsageError(f"cannot lock {where}: {e.strerror or e}") from None
    return lock


def holder(folder: Path) -> str:
    """Who holds ``folder``'s lock, as the holder wrote it."""
    try:
        who = json.loads((folder / WHO).read_text(encoding="utf-8"))
        return (f"pid {int(who['pid'])} on {str(who['host'])[:64]}, since "
                f"{str(who['since'])[:25]}")
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not said who it is yet"


def hold(folder: Path, what: str = "run"):
    """Take ``folder``'s lock (the directory exists), or raise UsageError naming its holder.
    Returns the lock: ``release()`` it when done (a dead process's is released for it)."""
    lock = _take(_lock(folder), folder / LOCK, lambda: (
        f"{folder} is in use by another dlx {what} ({holder(folder)}): wait for it, or "
        f"choose another directory"))
    try:
        (folder / WHO).write_text(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "what": what,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}),
            encoding="utf-8")
    except OSError:
        pass  # who holds it is for the message only
    return lock


def busy(folder: Path) -> str | None:
    """Who holds ``folder``'s lock if another process does (None if free or not a folder)."""
    from filelock import Timeout

    if not (folder / LOCK).exists():
        return None
    lock = _lock(folder)
    try:
        lock.acquire()
    except Timeout:
        return holder(folder)
    except OSError:
        return None
    lock.release()
    return None


@contextmanager
def editing(folder: Path, timeout: float = 30):
    """Hold ``folder``'s notes-and-tags lock for one read-modify-write (waiting for another
    `dlx note` or `dlx tag` to finish its own)."""
    lock = _take(_lock(folder, NOTES_LOCK, timeout), folder / NOTES_LOCK, lambda: (
        f"{folder}: another dlx note or tag has held it for {timeout:g} s"))
    try:
        yield
    finally:
        lock.release()


def release(lock, folder: Path) -> None:
    """Let go of ``folder``'s lock, saying nobody holds it (the lock file itself stays: another
    process may be waiting on it)."""
    try:
        (folder / WHO).unlink(missing_ok=True)
    except OSError:
        pass
    lock.release()
