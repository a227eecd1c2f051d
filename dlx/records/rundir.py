"""Run and sweep directories: ``<root>/YYYYmmdd-HHMMSS-<name>-<hex>``, created atomically."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from pathlib import Path


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(name)).strip("_.") or "run"


def create_unique_dir(root: str | Path, name: str) -> Path:
    """Make and return a new directory that no other process can also get.

    ``mkdir`` without ``exist_ok`` is atomic: if two runs draw the same id in the same second,
    exactly one succeeds and the other draws again.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for _ in range(1000):
        path = root / f"{stamp}-{_slug(name)}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RuntimeError(f"could not create a unique run directory under {root}")
