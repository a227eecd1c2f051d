"""metrics.csv: the long-format record ``step,epoch,split,metric,value``.

Rows are written and flushed as they are produced (a crash loses at most the line being
written); values are written with ``repr(float)``, the shortest string that reads back to the
same float, and no timings go in, so the same config and seed give a byte-identical file.
"""

from __future__ import annotations

import math
from pathlib import Path

HEADER = "step,epoch,split,metric,value"


def better(metric: str):
    """min or max for metrics that have a best value (losses, errors, accuracies), else None
    (a standard error, ``*_se``, has none)."""
    if metric.endswith("_se"):
        return None
    if "loss" in metric or "error" in metric or metric in ("rmse", "mae"):
        return min
    if "acc" in metric or metric == "r2":
        return max
    return None


class MetricsWriter:
    """Appends rows to metrics.csv. ``resume`` = (size, final, best) from a checkpoint: the
    file is cut back to that size and continued, as if the run had never stopped."""

    def __init__(self, path: str | Path, resume: tuple[int, dict, dict] | None = None):
        self.path = Path(path)
        self.final: dict[str, float] = {}
        self.best: dict[str, float] = {}
        self.last_step = 0  # the latest step a model was measured at (rows other than batch ones)
        self._series: dict[str, list[tuple[int, float]]] = {}
        if resume is not None:
            size, final, best = resume
            with open(self.path, "r+b") as f:
                f.truncate(size)
            self.final, self.best = dict(final), dict(best)
            self._file = open(self.path, "a", buffering=1, encoding="utf-8", newline="\n")
        else:
            self._file = open(self.path, "w", buffering=1, encoding="utf-8", newline="\n")
            self._file.write(HEADER + "\n")

    def tell(self) -> int:
        """Bytes written so far (all flushed: the file is line-buffered)."""
        self._file.flush()
        return self._file.tell()

    def log(self, step: int, epoch: int, split: str, metric: str, value: float) -> None:
        value = float(value)
        self._file.write(f"{step},{epoch},{split},{metric},{value!r}\n")
        key = f"{split}/{metric}"
        self.final[key] = value
        self._series.setdefault(key, []).append((step, value))
        if split != "batch":  # a batch row may belong to an update that never completed
            self.last_step = max(self.last_step, step)
        pick = better(metric)
        if pick is not None and math.isfinite(value):
            self.best[key] = pick(self.best.get(key, value), value)

    def series(self, key: str) -> list[tuple[int, float]]:
        """(step, value) of ``key`` (e.g. ``batch/loss``) as logged by this writer, in order:
        what an experiment reads instead of re-reading the file (a resumed writer holds only
        what it logged itself)."""
        return list(self._series.get(key, []))

    def close(self) -> None:
        self._file.close()
