"""Checking an output place before the work that fills it: a read-only folder or a missing
parent is one ``error:`` line up front, not a traceback after minutes of work.

The check creates nothing that stays: it makes and removes a probe file in the nearest folder
that exists (``os.access`` would answer yes to root on a read-only mount)."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from dlx.errors import UsageError


def _reason(e: OSError) -> str:
    if e.errno == errno.EROFS:
        return "read-only file system"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "read-only: permission denied"
    return e.strerror or type(e).__name__


def _hint(hint: str) -> str:
    return f" ({hint})" if hint else ""


def _probe(folder: Path, target: Path, create_parents: bool, hint: str) -> None:
    """Raise unless a file can be created in ``folder`` (or in the ancestor that will hold it)."""
    probe = folder
    if not probe.exists() and create_parents:
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
    if not probe.is_dir():
        what = "does not exist" if not probe.exists() else "is not a directory"
        raise UsageError(f"cannot write {target}: {probe} {what}{_hint(hint)}")
    try:
        fd, name = tempfile.mkstemp(dir=probe, prefix=".dlx-write-check-")
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise UsageError(f"cannot write {target}: {_reason(e)}{_hint(hint)}") from None


def check_dir(path: str | Path, *, create_parents: bool = False, hint: str = "") -> Path:
    """``path`` as a folder files can be created in, or a UsageError. The folder may not exist
    yet: then its parent must (or, with ``create_parents``, the nearest existing ancestor must
    be writable)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"cannot write {path}: not a directory{_hint(hint)}")
    _probe(path if path.exists() else path.parent, path, create_parents, hint)
    return path


def check_file(path: str | Path, *, create_parents: bool = False, hint: str = "") -> Path:
    """``path`` as a file that can be written (created or replaced), or a UsageError."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory{_hint(hint)}")
    _probe(path.parent, path, create_parents, hint)
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"cannot write {path}: read-only: permission denied{_hint(hint)}")
    return path
