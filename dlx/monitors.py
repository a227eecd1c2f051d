"""What watches a training run: per-layer statistics (the probe) and early stopping."""

from __future__ import annotations

import math
from pathlib import Path

from dlx.data import Dataset
from dlx.errors import UsageError
from dlx.records.files import LAYER_STATS


class Probe:
    """Per-layer statistics every ``probe_every`` steps (0: at initialization only; null: never)
    on a fixed batch of the first ``probe_batch`` training examples, into layer_stats.csv."""

    STATS = ("z_std", "act_std", "grad_z_norm", "grad_W_norm")

    def __init__(self, cfg, data: Dataset, backend, run_dir: Path | None,
                 resume_size: int | None = None):
        self.every = cfg.get("probe_every")
        self.file = None
        if self.every is None or run_dir is None or not hasattr(backend, "layer_stats"):
            return
        n = cfg.get("probe_batch", 512)
        self.X, self.y, self.backend = data.X_train[:n], data.y_train[:n], backend
        path = run_dir / LAYER_STATS
        if resume_size is not None and path.is_file():
            with open(path, "r+b") as f:
                f.truncate(resume_size)
            self.file = open(path, "a", buffering=1)
        else:
            self.file = open(path, "w", buffering=1)
            self.file.write("step,layer,stat,value\n")

    def tell(self) -> int:
        return self.file.tell() if self.file is not None else 0

    def __call__(self, step: int) -> None:
        if self.file is None or (step and (not self.every or step % self.every)):
            return
        for row in self.backend.layer_stats(self.X, self.y):
            for stat in self.STATS:
                if stat in row:
                    self.file.write(f"{step},{row['layer']},{stat},{row[stat]!r}\n")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class EarlyStopping:
    """Stop when ``monitor`` (e.g. val/loss) has not improved by ``min_delta`` for ``patience``
    epochs; the best weights are restored. Losses are minimized, accuracies maximized."""

    def __init__(self, patience: int | None, monitor: str, min_delta: float):
        sign = {"loss": 1.0, "acc": -1.0}.get(monitor.rpartition("/")[2])
        if patience is not None and sign is None:
            raise UsageError(f"early_stopping.monitor must be a split/loss or split/acc metric, "
                             f"got {monitor!r}")
        self.patience, self.monitor, self.min_delta, self.sign = patience, monitor, min_delta, sign
        self.best, self.best_epoch, self.best_state, self.stopped_at = math.inf, None, None, None

    def check(self, epoch: int, values: dict[str, float], backend) -> bool:
        """Record this epoch; True when training should stop."""
        if self.patience is None:
            return False
        score = self.sign * values[self.monitor]
        if score < self.best - self.min_delta:
            self.best, self.best_epoch, self.best_state = score, epoch, backend.state_dict()
        elif epoch - self.best_epoch >= self.patience:
            self.stopped_at = epoch
            return True
        return False

    def state(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def restore(self, state: dict, best_state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.best_state = best_state or None

    def summary(self) -> dict:
        if self.patience is None:
            return {}
        return {"monitor": self.monitor, "best_epoch": self.best_epoch,
                "best_value": self.sign * self.best if self.best_epoch is not None else None,
                "stopped_at_epoch": self.stopped_at}
