"""A tuned sweep's tuning.csv, read back (written by :mod:`dlx.tuning`): every trial of every
arm and each arm's choice. Untrusted input like every file of a record."""

from __future__ import annotations

import csv
from pathlib import Path

from dlx.errors import UsageError
from dlx.records.files import TUNING


def maximised(metric: str) -> bool:
    """Accuracies and R^2 are maximised (a monitor negates them into an objective to minimise);
    losses and errors are minimised."""
    return "acc" in metric or metric.endswith("/r2")


def read_tuning(sweep_dir: Path) -> list[dict]:
    """tuning.csv's rows with the numbers parsed; [] for a sweep that was not tuned. A bad file
    is a UsageError naming it."""
    path = Path(sweep_dir) / TUNING
    if not path.exists():
        return []
    if path.is_symlink():
        raise UsageError(f"{path} is a symlink: not read (a record's files are its own)")
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
        for r in rows:
            r["objective"], r["mean_objective"] = float(r["objective"]), float(r["mean_objective"])
            r["chosen"] = r["chosen"] == "1"
            r["setting"] = str(r["setting"])
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: unreadable ({type(e).__name__}: {e})") from None
    return rows


def tuned_keys(sweep_dir: Path) -> list[str]:
    """The config keys a tuned sweep chose per arm (``optimizer.lr``), in the grid's order."""
    return list(dict.fromkeys(part.partition("=")[0].lstrip("+~")
                              for r in read_tuning(sweep_dir) for part in r["setting"].split()))
