"""dropout: the generalization gap against the keep probability, for dropout on activations
and DropConnect on weights."""

from __future__ import annotations

from pathlib import Path

from dlx.plots.style import panels, save


def gap(run) -> tuple[float, float]:
    """(train accuracy - validation accuracy, validation loss - train loss) at the end."""
    f = run.summary.get("final", {})
    return f["train/acc"] - f["val/acc"], f["val/loss"] - f["train/loss"]


def report_numbers(run) -> dict:
    acc_gap, loss_gap = gap(run)
    return {"train − val accuracy": acc_gap, "val − train loss": loss_gap}


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    fig, axes = panels("dropout on an overfitting MLP (1000 training images): the final gap", 2)
    for kind, marker, connect in (("dropout (activations)", "o", False),
                                  ("DropConnect (weights)", "s", True)):
        members = sorted((r for r in runs if bool(r.config["model"].get("dropconnect")) == connect),
                         key=lambda r: r.config["model"]["keep_prob"])
        keeps = [r.config["model"]["keep_prob"] for r in members]
        gaps = [gap(r) for r in members]
        axes[0].plot(keeps, [g[0] for g in gaps], "-" + marker, label=kind)
        axes[1].plot(keeps, [g[1] for g in gaps], "-" + marker, label=kind)
    axes[0].set_ylabel("train accuracy − validation accuracy")
    axes[1].set_ylabel("validation loss − train loss (nats)")
    for ax in axes:
        ax.set_xlabel("keep probability (1.0 = no dropout)")
        ax.invert_xaxis()
        ax.legend(fontsize=9)
    return [save(fig, out / f"dropout_gap.{fmt}")]
