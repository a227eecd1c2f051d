"""cnn: LeNet-5-like on MNIST. Besides the generic curves and the confusion matrix: the first
layer's filters and the feature maps of one test digit at each conv block, the parameter count
beside the MLP's (784-256-10), and the naive six-loop convolution against im2col, timed on the
trained layers when the figure is drawn."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dlx.experiments.mnist_mlp import plot_run as confusion_figures
from dlx.records.files import MODEL

MLP_PARAMS = 784 * 256 + 256 + 256 * 10 + 10  # the mnist_mlp experiment's 784-256-10


def _convs(model):
    from dlx.nn.conv import Conv2d

    return [m for m in model.layers if isinstance(m, Conv2d)]


def report_numbers(run) -> dict:
    params = run.summary.get("params")
    numbers = {"test accuracy": run.summary.get("final", {}).get("test/acc")}
    if params:
        numbers.update({"parameters": params, "parameters of the 784-256-10 MLP": MLP_PARAMS})
    return numbers


def conv_timings(model, x: np.ndarray, repeats: int = 3) -> list[dict]:
    """Seconds per image of each conv layer's forward pass, im2col against the naive loops
    (the best of ``repeats``), on the input each layer sees for images ``x``."""
    from dlx.nn.conv import Conv2d, conv2d_naive

    rows = []
    for layer in model.layers:
        if isinstance(layer, Conv2d):
            b = layer.b.data if layer.b is not None else np.zeros(len(layer.W.data), x.dtype)
            args = (x, layer.W.data, b, layer.stride, layer.padding)
            fast = min(_seconds(layer.forward, x) for _ in range(repeats))
            slow = min(_seconds(conv2d_naive, *args) for _ in range(repeats))
            rows.append({"layer": layer.W.name.split(".")[0], "im2col_s": fast / len(x),
                         "naive_s": slow / len(x), "shape": tuple(layer.W.data.shape)})
        x = layer.forward(x)
    return rows


def _seconds(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    from matplotlib.figure import Figure

    from dlx.assemble import trained_model
    from dlx.plots.style import save

    if not (run.path / MODEL).is_file():
        return []
    written = confusion_figures(run, out, fmt)
    model, data = trained_model(run)
    X = data.X_test if data.X_test is not None else data.X_val
    digit = X[:1]

    convs = _convs(model)
    maps, x = [], digit
    for layer in model.layers:  # the output of each conv block (after its pooling)
        x = layer.forward(x)
        if type(layer).__name__ in ("MaxPool2d", "AvgPool2d"):
            maps.append(x[0])
    W = convs[0].W.data  # (F, C, k, k)
    cols = 8  # maps wrap onto rows of 8: the figure stays readable for wide layers
    blocks = [(f"first-layer {W.shape[2]}x{W.shape[3]} filters (red +, blue −)", W[:, 0], "RdBu_r")]
    blocks += [(f"block {r + 1}: {len(m)} maps {m.shape[1]}x{m.shape[2]}", m, "viridis")
               for r, m in enumerate(maps)]
    rows = 1 + sum(-(-len(b) // cols) for _, b, _ in blocks)
    fig = Figure(figsize=(1.25 * cols, 1.35 * rows + 0.4), dpi=110, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(digit[0, 0], cmap="gray_r")
    axes[0, 0].set_title("test digit", fontsize=8)
    row = 1
    for title, images, cmap in blocks:
        lim = np.abs(images).max() if cmap == "RdBu_r" else None
        for i, image in enumerate(images):
            ax = axes[row + i // cols, i % cols]
            ax.imshow(image, cmap=cmap, vmin=-lim if lim else None, vmax=lim)
        axes[row, 0].set_title(title, fontsize=8, loc="left")
        row += -(-len(images) // cols)
    fig.suptitle("what LeNet sees: its first-layer filters and the feature maps of a test digit "
                 "after each conv → ReLU → pool block", fontsize=10)
    written.append(save(fig, out / f"filters_and_maps.{fmt}"))

    timings = conv_timings(model, X[:8])
    fig = Figure(figsize=(7.5, 4.4), dpi=110, layout="constrained")
    ax = fig.subplots()
    pos = np.arange(len(timings))
    ax.bar(pos - 0.2, [t["naive_s"] * 1e3 for t in timings], 0.4, label="naive loops",
           color="tab:red")
    ax.bar(pos + 0.2, [t["im2col_s"] * 1e3 for t in timings], 0.4, label="im2col + one matmul",
           color="tab:green")
    for p, t in zip(pos, timings):
        ax.text(p, t["naive_s"] * 1e3, f"{t['naive_s'] / t['im2col_s']:.0f}x faster",
                ha="center", va="bottom", fontsize=9)
    ax.set_xticks(pos, [f"{t['layer']} {t['shape'][1]}→{t['shape'][0]} maps" for t in timings])
    ax.set_yscale("log")
    ax.set_ylabel("forward time per image (ms, log scale)")
    ax.set_title("convolution: the definition's loops against im2col (8 test images, "
                 "measured when drawn)", fontsize=10)
    ax.set_ylim(top=ax.get_ylim()[1] * 4)  # room for the labels above the bars
    ax.legend(fontsize=9, loc="center right")
    written.append(save(fig, out / f"conv_speed.{fmt}"))
    return written
