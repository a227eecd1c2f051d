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
    """min or max for metrics that have a best value (losses, errors, accuracies), else None."""
    if "loss" in metric or "error" in metric:
        return min
    if "acc" in metric:
        return max
    return None


class MetricsWriter:
    def __init__(self, path: str | Path):
        self._file = open(path, "w", buffering=1, encoding="utf-8", newline="\n")  # line-buffered
        self._file.write(HEADER + "\n")
        self.final: dict[str, float] = {}
        self.best: dict[str, float] = {}

    def log(self, step: int, epoch: int, split: str, metric: str, value: float) -> None:
        value = float(value)
        self._file.write(f"{step},{epoch},{split},{metric},{value!r}\n")
        key = f"{split}/{metric}"
        self.final[key] = value
        pick = better(metric)
        if pick is not None and math.isfinite(value):
            self.best[key] = pick(self.best.get(key, value), value)

    def close(self) -> None:
        self._file.close()
