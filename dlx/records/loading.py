"""A sweep in a notebook (``dlx.load_sweep``): its members and one long DataFrame of their
metrics, with the overrides that vary between members as columns, typed as Hydra reads them.

    sweep = dlx.load_sweep("runs/<sweep-id>")
    sweep.members          # member, path, status and the varied overrides, one row per member
    sweep.metrics          # member, <varied keys>, step, epoch, split, metric, value
    sweep.metrics.query("split == 'val' and metric == 'loss'").groupby(["optimizer", "step"])
"""

from __future__ import annotations

import warnings
from functools import cached_property
from pathlib import Path

from dlx.errors import UsageError
from dlx.records.store import (
    Run,
    check_dir,
    is_run,
    is_sweep,
    read_metrics,
    read_overrides,
    read_summary,
    sweep_members,
)

METRIC_COLUMNS = ["step", "epoch", "split", "metric", "value"]


def _hashable(value):
    """Lists become tuples (so a column of them can be grouped by), recursively."""
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value


def typed_overrides(overrides: list[str]) -> dict:
    """``["optimizer=adam", "optimizer.lr=0.01", "+x=[1,2]"]`` -> ``{"optimizer": "adam",
    "optimizer.lr": 0.01, "x": (1, 2)}``: keys without +/++ and values as Hydra's override
    grammar types them (``1e-3`` is a float, ``null`` None), lists as tuples. An override Hydra
    cannot parse keeps its text."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    parser = OverridesParser.create()
    out: dict = {}
    for text in overrides:
        try:
            (o,) = parser.parse_overrides([text])
        except (HydraException, ValueError):
            key, _, value = text.lstrip("+~").partition("=")
            out[key] = value
            continue
        key = o.key_or_group + (f"@{o.package}" if o.package else "")
        value = None if o.is_delete() else o.value()
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value)
        out[key] = _hashable(value)
    return out


class Sweep:
    """A sweep directory, read lazily. ``runs``: each member as a :class:`~dlx.records.store.Run`;
    ``overrides``: each member's typed overrides; ``varied``: the keys whose value differs
    between members; ``members`` and ``metrics``: DataFrames (see the module's docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.runs = [Run(p) for p in sweep_members(self.path)]
        self.overrides = [typed_overrides(read_overrides(r.path)) for r in self.runs]
        keys = list(dict.fromkeys(k for o in self.overrides for k in o))
        missing = object()
        self.varied = [k for k in keys
                       if len({repr(o.get(k, missing)) for o in self.overrides}) > 1]

    def __repr__(self) -> str:
        return f"Sweep({str(self.path)!r}, members={len(self.runs)}, varied={self.varied})"

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, i: int) -> Run:
        return self.runs[i]

    def _status(self, run: Run) -> str | None:
        try:
            return read_summary(run.path)["status"]
        except UsageError as e:  # e.g. a member that never started: the others still load
            warnings.warn(str(e), stacklevel=3)
            return None

    def _column(self, key: str) -> str:
        # a varied key never hides a column of metrics.csv or the member number
        return f"{key} (override)" if key in ["member", *METRIC_COLUMNS] else key

    @cached_property
    def members(self):
        import pandas as pd

        rows = []
        for run, ov in zip(self.runs, self.overrides):
            rows.append({"member": int(run.path.name), "path": run.path,
                         "status": self._status(run),
                         **{self._column(k): ov.get(k) for k in self.varied}})
        columns = ["member", "path", "status", *map(self._column, self.varied)]
        return pd.DataFrame(rows, columns=columns)

    @cached_property
    def metrics(self):
        """Every member's metrics.csv rows, one long DataFrame: member, the varied overrides
        (one column each), step, epoch, split, metric, value. A member without a readable
        metrics.csv contributes no rows (with a warning)."""
        import pandas as pd

        frames = []
        for run, ov in zip(self.runs, self.overrides):
            try:
                df = read_metrics(run.path)
            except UsageError as e:
                warnings.warn(str(e), stacklevel=2)
                continue
            front = {"member": int(run.path.name)}
            front.update({self._column(k): ov.get(k) for k in self.varied})
            for i, (col, value) in enumerate(front.items()):
                # a tuple is one value for every row, not a column to spread over the rows
                df.insert(i, col, [value] * len(df) if isinstance(value, tuple) else value)
            frames.append(df)
        columns = ["member", *map(self._column, self.varied), *METRIC_COLUMNS]
        if not frames:
            return pd.DataFrame(columns=columns)
        return pd.concat(frames, ignore_index=True)[columns]


def load_sweep(path: str | Path) -> Sweep:
    path = check_dir(path)
    if not is_sweep(path):
        hint = " (a run: use dlx.load_run)" if is_run(path) else ""
        raise UsageError(f"{path}: not a sweep directory{hint}")
    return Sweep(path)
