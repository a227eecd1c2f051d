"""Shared figure conventions: titles, axis labels with units, log scales, atomic saving."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

FORMATS = ("png", "svg", "pdf")

STEP_LABEL = "step (parameter updates)"
Y_LABELS = {
    "loss": "loss (nats, mean per example)",
    "acc": "accuracy (fraction correct)",
    "lr": "learning rate",
    "weight_norm": "weight norm ‖w‖₂ (biases excluded)",
    "grad_norm": "global gradient norm ‖g‖₂ (before clipping)",
    "penalty": "regularization penalty (nats)",
    "rmse": "RMSE (the target's units)",
    "mae": "MAE (the target's units)",
    "r2": "R² (1 = perfect fit, 0 = predicting the mean)",
    "bpc": "bits per character (mean NLL / ln 2)",
    "ppl": "perplexity exp(mean NLL)",
}
TITLES = {"acc": "accuracy", "lr": "learning rate", "weight_norm": "weight norm",
          "grad_norm": "gradient norm",
          "rmse": "root-mean-square error", "mae": "mean absolute error", "r2": "R²",
          "bpc": "bits per character", "ppl": "perplexity"}
SPLIT_NAMES = {"batch": "mini-batch", "train": "train set", "val": "validation set"}


def metric_title(metric: str) -> str:
    return TITLES.get(metric, metric.replace("_", " "))


def epoch_axis(ax, steps_per_epoch: float) -> None:
    """A second x axis on top, in epochs, for plots against the step."""
    if steps_per_epoch > 0:
        top = ax.secondary_xaxis("top", functions=(lambda s: s / steps_per_epoch,
                                                   lambda e: e * steps_per_epoch))
        top.set_xlabel("epoch")


def y_label(metric: str) -> str:
    return Y_LABELS.get(metric, metric.replace("_", " "))


def figure(title: str, xlabel: str, ylabel: str, size=(7.5, 4.8)):
    fig = Figure(figsize=size, dpi=110, layout="tight")
    ax = fig.subplots()
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def panels(title: str, ncols: int, size=(11, 4.4)):
    """A titled figure with ``ncols`` side-by-side axes (label each axis yourself)."""
    fig = Figure(figsize=size, dpi=110, layout="tight")
    axes = fig.subplots(1, ncols)
    fig.suptitle(title, fontsize=11)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


#: metrics bounded in [0, 1] (or above by 1): read on a linear axis, where 0.5 -> 0.9 looks
#: like the gain it is, however small the first values (a chance-level 1/65 accuracy)
BOUNDED = {"acc", "r2"}


def log_scale_if_wide(ax, values, decades: float = 1.0, metric: str | None = None) -> None:
    """Log y axis when positive values span more than ``decades`` orders of magnitude (never
    for a bounded ``metric``, see :data:`BOUNDED`)."""
    if metric in BOUNDED:
        return
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) and np.log10(v.max() / v.min()) > decades:
        ax.set_yscale("log")


def mark_clip_threshold(ax, configs) -> list[float]:
    """The ``clip_grad_norm`` thresholds of runs (a labelled horizontal line each) on a figure
    of the gradient norm before clipping: steps above a line were scaled down onto it. Returns
    the thresholds drawn."""
    values = sorted({c["clip_grad_norm"] for c in configs if c.get("clip_grad_norm") is not None})
    for i, value in enumerate(values):
        ax.axhline(value, color="tab:red", ls=("--", ":", "-.")[i % 3], lw=1.2,
                   label=f"clip_grad_norm = {value:g} (norms above it are scaled down to it)")
    return values


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` atomically: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, format=path.suffix[1:])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def guarded(notes: list[str], name: str, draw, *args, **kwargs) -> list[Path]:
    """``draw(*args, **kwargs)`` (a function returning the files it wrote), or — when it raises —
    nothing, with ``skipped figure NAME: ExcType: message`` appended to ``notes``. A figure that
    cannot be drawn never costs the others, nor the run its status. Warnings raised while
    drawing (matplotlib's, numpy's) become one ``figure NAME: Category: message`` line in
    ``notes`` each, not Python's raw two-line print of the source line on stderr."""
    import logging
    import warnings

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            written = list(draw(*args, **kwargs))
        for w in dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught):
            notes.append(f"figure {name}: {_first_line(w)}")
        return written
    except Exception as e:  # noqa: BLE001 - any failure of one figure: skip it, say so
        from dlx.interrupts import check

        check()  # a Ctrl-C swallowed on its way (an ImportError from matplotlib's C code)
        message = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
        if len(message) > 200:
            message = message[:199] + "…"
        notes.append(f"skipped figure {name}: {type(e).__name__}" + (f": {message}" if message else ""))
        logging.getLogger("dlx.plots").debug(f"figure {name} failed", exc_info=True,
                                             extra={"console": False})
        return []


def _first_line(text: str, limit: int = 200) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[:limit - 1] + "…"
