"""checkpoint.npz: everything a run needs to continue exactly where it stopped.

Arrays (weights, optimizer state, early-stopping's best weights) are stored as arrays; the rest
(step, epoch, RNG states, the metrics recorded so far, the sizes of the files written so far)
as one JSON string. No pickle. A checkpoint is used only by the same config it was made with.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from dlx.records.files import CHECKPOINT, replacing

NAME = CHECKPOINT
IGNORED = ("progress", "runs_dir")  # how a run is shown or stored, not what it computes
FORMAT = 3  # 3: the loop's callbacks save their own parts; another format is not used


def config_key(cfg: dict) -> str:
    kept = {k: v for k, v in cfg.items() if k not in IGNORED}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def save(run_dir: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    with replacing(run_dir / NAME) as f:  # no temporary file left if the disk is full
        np.savez(f, __meta__=np.array(json.dumps({**meta, "format": FORMAT})), **arrays)


def load(run_dir: Path, cfg: dict) -> tuple[dict[str, np.ndarray], dict] | None:
    """(arrays, meta) of the run's checkpoint if it exists, reads, matches ``cfg`` and the
    files it recorded are there to continue (:func:`mismatch`); else None, and a checkpoint
    that is there but cannot be used says why in one warning line (the run starts over)."""
    path = run_dir / NAME
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["__meta__"]))
            arrays = {k: f[k] for k in f.files if k != "__meta__"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        _say(f"{path} is unreadable ({type(e).__name__}: {str(e)[:80] or 'empty'})")
        return None
    usable = meta.get("config_key") == config_key(cfg) and meta.get("format") == FORMAT
    if not usable:
        return None
    problem = mismatch(run_dir, meta)
    if problem:
        _say(problem)
        return None
    return arrays, meta


def mismatch(run_dir: Path, meta: dict) -> str | None:
    """Why the files a checkpoint recorded (their sizes) cannot be continued, or None: one is
    missing, shorter than recorded, or not cut at a line's end there."""
    files = meta.get("files")
    if not isinstance(files, dict):
        return f"{run_dir / NAME} records no file sizes"
    for name, size in files.items():
        path = run_dir / Path(str(name)).name  # the record's own files only
        if not path.is_file():
            return f"{path} is missing (the checkpoint recorded {size} bytes of it)"
        have = path.stat().st_size
        if not isinstance(size, int) or have < size:
            return f"{path} holds {have} bytes, fewer than the {size} the checkpoint recorded"
        if size and path.suffix == ".csv":
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    return f"{path} is not cut at a line's end at the {size} bytes recorded"
    return None


def _say(problem: str) -> None:
    import logging

    logging.getLogger("dlx").warning(f"{problem}: the checkpoint cannot be resumed; starting over")


def remove(run_dir: Path) -> None:
    (run_dir / NAME).unlink(missing_ok=True)
