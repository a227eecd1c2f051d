"""checkpoint.npz: everything a run needs to continue exactly where it stopped.

Arrays (weights, optimizer state, early-stopping's best weights) are stored as arrays; the rest
(step, epoch, RNG states, the metrics recorded so far, the sizes of the files written so far)
as one JSON string. No pickle. A checkpoint is used only by the same config it was made with.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from dlx.records.files import CHECKPOINT

NAME = CHECKPOINT
IGNORED = ("progress", "runs_dir")  # how a run is shown or stored, not what it computes
FORMAT = 3  # 3: the loop's callbacks save their own parts; another format is not used


def config_key(cfg: dict) -> str:
    kept = {k: v for k, v in cfg.items() if k not in IGNORED}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def save(run_dir: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    tmp = run_dir / f".{NAME}.tmp.npz"
    np.savez(tmp, __meta__=np.array(json.dumps({**meta, "format": FORMAT})), **arrays)
    os.replace(tmp, run_dir / NAME)


def load(run_dir: Path, cfg: dict) -> tuple[dict[str, np.ndarray], dict] | None:
    """(arrays, meta) of the run's checkpoint if it exists, reads, and matches ``cfg``."""
    path = run_dir / NAME
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["__meta__"]))
            arrays = {k: f[k] for k in f.files if k != "__meta__"}
    except (OSError, ValueError, KeyError):
        return None
    usable = meta.get("config_key") == config_key(cfg) and meta.get("format") == FORMAT
    return (arrays, meta) if usable else None


def remove(run_dir: Path) -> None:
    (run_dir / NAME).unlink(missing_ok=True)
