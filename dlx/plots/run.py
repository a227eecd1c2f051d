"""Figures of one run, drawn only from what the run directory holds."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dlx.plots.style import (
    SPLIT_NAMES,
    STEP_LABEL,
    epoch_axis,
    figure,
    guarded,
    log_scale_if_wide,
    mark_clip_threshold,
    metric_title,
    save,
    y_label,
)
from dlx.records.files import file_name

log = logging.getLogger("dlx.plots")

SPLIT_STYLE = {"batch": dict(lw=0.8, alpha=0.45, color="tab:gray"),
               "train": dict(lw=1.8, marker="o", ms=3, color="tab:blue"),
               "val": dict(lw=1.8, marker="s", ms=3, color="tab:orange"),
               # measured once, at the end: a line through one point would be invisible
               "test": dict(ls="none", marker="*", ms=14, mec="k", color="tab:green")}


def run_title(config: dict) -> str:
    opt = config.get("optimizer", {})
    parts = [str(config.get("name", "run")), f"{opt.get('name', '?')} lr={opt.get('lr', '?'):g}"
             if isinstance(opt.get("lr"), (int, float)) else str(opt.get("name", "?")),
             str(config.get("dataset", {}).get("name", "?")), f"seed {config.get('seed', '?')}"]
    return " · ".join(parts)


def _mark_divergence(ax, summary: dict) -> None:
    step = summary.get("diverged_at_step")
    if step is not None:
        ax.axvline(step, color="tab:red", ls="--", lw=1.2, label=f"diverged at step {step}")


def metric_figures(run, out: Path, fmt: str, notes: list[str] | None = None) -> list[Path]:
    """One figure per metric, its splits overlaid against the step; each drawn on its own (one
    that fails is noted in ``notes`` and skipped). A metric's standard error (``loss_se``, from
    a sampled evaluation) is drawn as a band on the metric's figure, not as a figure."""
    df = run.metrics
    steps_per_epoch = epoch_length(df, run.config.get("max_steps"))
    notes = [] if notes is None else notes
    written = []
    se = {metric: rows for metric, rows in df.groupby("metric", sort=False)
          if str(metric).endswith("_se")}
    for metric, rows in df.groupby("metric", sort=False):
        if rows["value"].nunique(dropna=False) <= 1 and metric == "lr" or metric in se:
            continue  # a constant learning rate says nothing a figure should show
        written += guarded(notes, str(metric), _metric_figure, run, metric, rows, steps_per_epoch,
                           out, fmt, se.get(f"{metric}_se"))
    return written


def epoch_length(df, max_steps: int | None = None) -> float:
    """Steps per epoch, from a run's metrics (0: not known, no epoch axis). Each step's
    mini-batch row carries the epoch it is in, so a completed epoch's last step tells it; an
    evaluation's (step, epoch) does not when evaluations fall mid-epoch or a step budget
    (``max_steps``) ends the last epoch early (char_lm: 120 steps of a 490-step stream epoch)."""
    batch = df[df["split"] == "batch"]
    ends = batch.groupby("epoch")["step"].max()
    full = ends[(ends.index < ends.index.max()) & (ends.index >= 1)]  # the last may be partial
    if len(full):
        return float(full.iloc[-1] / full.index[-1])
    if max_steps:  # within one epoch of unknown length
        return 0.0
    epochs = df[df["split"] != "batch"]  # whole epochs: the last evaluation ends the last one
    return epochs["step"].max() / max(epochs["epoch"].max(), 1) if len(epochs) else 0.0


def regression_units(run) -> str | None:
    """The target's units of a regression run (summary.json's data description), else None."""
    data = run.summary.get("data") or {}
    return data.get("units", "target units") if data.get("task") == "regression" else None


def _y_label(run, metric: str) -> str:
    units = regression_units(run)
    if units is None:
        return y_label(metric)
    if metric == "loss":  # the squared error the model is trained on, not nats
        if (run.summary.get("data") or {}).get("standardized") is False:  # e.g. adding
            return "loss: MSE (the target's units squared)"
        return "loss: MSE of the standardized target (target sd = 1)"
    return y_label(metric).replace("the target's units", units)


def _metric_figure(run, metric: str, rows, steps_per_epoch: float, out: Path, fmt: str,
                   se=None):
    fig, ax = figure(f"{metric_title(metric)} — {run_title(run.config)}", STEP_LABEL,
                     _y_label(run, metric))
    epoch_axis(ax, steps_per_epoch)
    for split, series in rows.groupby("split", sort=False):
        errors = None if se is None else se[se["split"] == split]
        sampled = errors is not None and len(errors)
        how = (run.summary.get("evaluation") or {}).get(split, "")
        k = (run.config.get("eval") or {}).get(f"{split}_batches")
        estimated = f" (estimated on {k} batch{'es' if k != 1 else ''}" + (
            ", ± 2 SE)" if sampled else ")") if k and how and not how.startswith("whole") else ""
        line, = ax.plot(series["step"], series["value"],
                        label=SPLIT_NAMES.get(split, split) + estimated,
                        **SPLIT_STYLE.get(split, dict(lw=1.5)))
        if sampled:  # eval.<split>_batches: an estimate from K batches, with its spread
            at = series.set_index("step")["value"].reindex(errors["step"]).to_numpy()
            ax.fill_between(errors["step"], at - 2 * errors["value"].to_numpy(),
                            at + 2 * errors["value"].to_numpy(), color=line.get_color(),
                            alpha=0.2, lw=0)
    _mark_divergence(ax, run.summary)
    if metric == "grad_norm":
        mark_clip_threshold(ax, [run.config])
    log_scale_if_wide(ax, rows["value"], metric=metric)
    if len(ax.get_legend_handles_labels()[0]) > 1:
        ax.legend(loc="best", fontsize=9)
    return [save(fig, out / file_name(f"{metric}.{fmt}"))]


#: values of the widest layer evaluated at once when drawing a decision boundary (~32 MB of
#: float64 per activation): a 300 x 300 grid through a 100k-unit layer would need 33 GiB at once
GRID_CHUNK_VALUES = 1 << 22
#: grid points x widest layer for the whole boundary: beyond it the grid gets coarser (down to
#: 100 x 100), so that a very wide model costs seconds, not minutes
GRID_WORK = 4e8


def _widest(model) -> int:
    return max([max(p.data.shape) for p in model.parameters() if p.data.ndim] or [1])


def predict_in_chunks(model, X: np.ndarray, chunk_values: int = GRID_CHUNK_VALUES) -> np.ndarray:
    """``model.forward(X)`` in row chunks sized so that the widest layer's activations stay
    near ``chunk_values`` values: memory is bounded whatever the model's width."""
    rows = max(1, chunk_values // _widest(model))
    parts = []
    with np.errstate(over="ignore"):
        for start in range(0, len(X), rows):
            parts.append(np.asarray(model.forward(X[start:start + rows]), dtype=np.float64))
    return np.concatenate(parts)


def draw_decision_boundary(fig, ax, run, colorbar: bool = True) -> bool:
    """Class regions of the run's final model over its 2-D data, train and validation points.
    False (nothing drawn) when the data is not 2-D synthetic or the weights are missing or
    not finite."""
    from dlx.assemble import trained_model
    from dlx.records.store import MODEL

    if run.config.get("dataset", {}).get("name") not in ("blobs", "moons", "xor") \
            or not (run.path / MODEL).is_file():
        return False
    model, data = trained_model(run)
    if not all(np.isfinite(p.data).all() for p in model.parameters()):
        log.warning(f"{run.path.name}: decision boundary skipped (the final weights are not finite)")
        return False
    X = np.concatenate([data.X_train, data.X_val])
    lo, hi = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
    side = int(np.clip(np.sqrt(GRID_WORK / _widest(model)), 100, 300))
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], side), np.linspace(lo[1], hi[1], side))
    grid = np.stack([g1.ravel(), g2.ravel()], axis=1).astype(data.X_train.dtype)
    model.eval()
    logits = predict_in_chunks(model, grid)
    if logits.shape[1] == 1:
        prob = (1.0 / (1.0 + np.exp(-np.clip(logits[:, 0], -50, 50)))).reshape(g1.shape)
        cs = ax.contourf(g1, g2, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.55)
        ax.contour(g1, g2, prob, levels=[0.5], colors="k", linewidths=1.5)
        if colorbar:
            fig.colorbar(cs, ax=ax, label="P(class 1 | x)")
    else:
        cls = logits.argmax(axis=1).reshape(g1.shape)
        ax.contourf(g1, g2, cls, levels=np.arange(data.n_classes + 1) - 0.5, cmap="tab10",
                    alpha=0.35, vmin=0, vmax=9)
    cmap = "RdBu_r" if data.n_classes == 2 else "tab10"
    kw = dict(cmap=cmap, vmin=0, vmax=1 if data.n_classes == 2 else 9, edgecolors="k",
              linewidths=0.4)
    ax.scatter(*data.X_train.T, c=data.y_train, s=14, marker="o", label="train", **kw)
    ax.scatter(*data.X_val.T, c=data.y_val, s=26, marker="^", label="validation", **kw)
    # the accuracy of the weights drawn (a diverged run's saved weights are where it diverged,
    # not where its last finite accuracy was measured)
    # (no validation split: the refit on every fold of a cross-validation, dataset.fold=null)
    which, X_acc, y_acc = (("validation", data.X_val, data.y_val) if len(data.X_val)
                           else ("training", data.X_train, data.y_train))
    pred = predict_in_chunks(model, X_acc)
    pred = (pred[:, 0] > 0).astype(int) if pred.shape[1] == 1 else pred.argmax(axis=1)
    status = run.summary.get("status")
    ax.text(0.02, 0.02, f"{which} accuracy {np.mean(pred == y_acc):.3f}"
            + (f" ({status})" if status not in (None, "completed") else ""),
            transform=ax.transAxes, fontsize=9, bbox=dict(fc="white", alpha=0.8))
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("feature x₁")
    ax.set_ylabel("feature x₂")
    legend = ax.legend(loc="upper right", fontsize=9)
    for handle in legend.legend_handles:  # marker shape = split; colour = class (colour bar)
        handle.set_facecolor("lightgray")
    return True


def decision_boundary(run, out: Path, fmt: str) -> list[Path]:
    fig, ax = figure(f"decision boundary — {run_title(run.config)}", "feature x₁", "feature x₂",
                     size=(6.6, 5.6))
    return [save(fig, out / f"decision_boundary.{fmt}")] if draw_decision_boundary(fig, ax, run) \
        else []


def regression_predictions(run) -> tuple[str, np.ndarray, np.ndarray, str]:
    """(split, actual, predicted, units) of a regression run's final model on its test split
    (its validation split without one), both in the target's units, (N,) for the first target."""
    from dlx.assemble import trained_model

    model, data = trained_model(run)
    split, X, t = ("test", data.X_test, data.y_test) if data.X_test is not None else \
        ("validation", data.X_val, data.y_val)
    pred = data.in_units(predict_in_chunks(model, X).astype(np.float64))
    actual = data.in_units(t.reshape(len(t), -1).astype(np.float64))
    return split, actual[:, 0], pred[:, 0], regression_units(run) or "target units"


def regression_fit(run, out: Path, fmt: str) -> list[Path]:
    """Predicted against actual (the diagonal is a perfect fit) and residuals against the
    prediction, in the target's units, on the test split: a regression run's own figures. The
    axes show the central 99.8% of the values; the few beyond are counted in the legend."""
    from matplotlib.ticker import EngFormatter

    from dlx.plots.style import panels

    split, actual, pred, units = regression_predictions(run)
    residual = pred - actual
    rmse = float(np.sqrt(np.mean(residual**2)))
    model = run.config.get("model", {}).get("name", "?")
    fig, (ax1, ax2) = panels(f"{model}'s predictions on the {split} set — "
                             f"{run_title(run.config)}", 2, size=(12, 5.2))
    lo, hi = np.percentile(np.concatenate([actual, pred]), [0.1, 99.9])
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    outside = int(np.sum((pred < lo) | (pred > hi) | (actual < lo) | (actual > hi)))
    ax1.scatter(actual, pred, s=4, alpha=0.35, color="tab:blue",
                label=f"{len(actual)} examples ({outside} beyond the axes)")
    ax1.plot([lo, hi], [lo, hi], color="k", lw=1.2, label="predicted = actual")
    cap = (run.summary.get("data") or {}).get("target_cap")
    if cap is not None:
        ax1.axvline(cap, color="tab:red", ls="--", lw=1,
                    label=f"targets capped at {cap:,.0f} (top-coded)")
    ax1.set_xlim(lo, hi)
    ax1.set_ylim(lo, hi)
    ax1.set_xlabel(f"actual ({units})")
    ax1.set_ylabel(f"predicted ({units})")
    text = f"{rmse:,.0f}" if rmse >= 100 else f"{rmse:.3g}"  # dollars, or a sum near 1
    ax1.set_title(f"predicted vs actual (RMSE {text} {units})", fontsize=10)
    ax1.legend(loc="upper left", fontsize=8)
    r_lo, r_hi = np.percentile(residual, [0.1, 99.9])
    r_pad = 0.05 * (r_hi - r_lo)
    ax2.scatter(pred, residual, s=4, alpha=0.35, color="tab:purple")
    ax2.axhline(0.0, color="k", lw=1.2)
    if cap is not None:  # capped districts: residual = prediction - cap, a line of slope 1
        ax2.plot([lo, hi], [lo - cap, hi - cap], color="tab:red", ls="--", lw=1,
                 label="actual = the cap")
        ax2.legend(loc="upper left", fontsize=8)
    ax2.set_xlim(lo, hi)
    ax2.set_ylim(r_lo - r_pad, r_hi + r_pad)
    ax2.set_xlabel(f"predicted ({units})")
    ax2.set_ylabel(f"residual = predicted − actual ({units})")
    ax2.set_title("residuals against the prediction", fontsize=10)
    if hi >= 1e4:  # 250k dollars; a sum near 1 keeps plain ticks (not "250m")
        for ax in (ax1, ax2):
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    return [save(fig, out / f"predicted_vs_actual.{fmt}")]
