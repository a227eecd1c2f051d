"""mnist_mlp: the 2-layer MLP on MNIST — a confusion matrix and the misclassified test digits,
besides the curves (the initial loss is ~ln 10: ten classes, no idea yet)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from dlx.plots.style import save
from dlx.records.files import MODEL


def test_predictions(run):
    """(images, labels, predictions, data, which set) of the run's final model: the test set,
    or the validation set for data without one (e.g. ``dataset=blobs``)."""
    from dlx.assemble import trained_model
    from dlx.nn import predictions
    from dlx.training.chunks import eval_rows

    model, data = trained_model(run)
    X, y, which = (data.X_test, data.y_test, "test") if data.X_test is not None \
        else (data.X_val, data.y_val, "validation")
    chunk = eval_rows(X)  # bounded memory: a conv's im2col of 10,000 images would be 0.8 GB
    pred = np.concatenate([predictions(model.forward(X[i:i + chunk]))
                           for i in range(0, len(X), chunk)])
    return X, y, pred, data, which


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    """The confusion matrix (any classification data) and the misclassified images (image data
    only: for other data there is nothing to show)."""
    if not (run.path / MODEL).is_file():
        return []
    X, y, pred, data, which = test_predictions(run)
    if data.spec.kind == "tokens":
        return []  # token sequences: neither figure applies
    k = data.n_classes
    classes = list(data.classes) or [str(i) for i in range(k)]
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (y, pred), 1)
    acc = float((pred == y).mean())

    fig = Figure(figsize=(7.2, 6.4), dpi=110, layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues", norm=__import__("matplotlib.colors").colors.LogNorm(
        vmin=1, vmax=max(cm.max(), 2)))
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=8 if k > 5 else 14,
                        color="white" if cm[i, j] > cm.max() / 4 else "black")
    ax.set_xticks(range(k), classes, rotation=45 if k and len(classes[0]) > 2 else 0)
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    examples = "images" if data.spec.kind == "image" else "examples"
    ax.set_title(f"confusion matrix on the {len(y)} {which} {examples} — accuracy {acc:.2%}",
                 fontsize=11)
    fig.colorbar(im, ax=ax, label=f"{which} {examples} (log colour scale)")
    written = [save(fig, out / f"confusion_matrix.{fmt}")]

    wrong = np.flatnonzero(pred != y)[:36]
    if len(wrong) and data.spec.kind == "image":
        cols = 6
        rows = math.ceil(len(wrong) / cols)
        fig = Figure(figsize=(cols * 1.45, rows * 1.6 + 0.5), dpi=110, layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
        for ax, i in zip(axes, wrong):
            ax.imshow(X[i].transpose(1, 2, 0).squeeze(-1), cmap="gray_r")  # (H, W) of 1 channel
            ax.set_title(f"true {classes[y[i]]} / pred {classes[pred[i]]}", fontsize=7,
                         color="tab:red")
        for ax in axes:
            ax.axis("off")
        fig.suptitle(f"misclassified {which} images (first {len(wrong)} of {(pred != y).sum()})",
                     fontsize=10)
        written.append(save(fig, out / f"misclassified.{fmt}"))
    return written
