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
    cols = max(len(W), *(len(m) for m in maps))
    rows = 2 + len(maps)
    fig = Figure(figsize=(1.3 * cols, 1.45 * rows + 0.4), dpi=110, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(digit[0, 0], cmap="gray_r")
    axes[0, 0].set_title("test digit", fontsize=8)
    lim = np.abs(W).max()
    for f in range(len(W)):
        axes[1, f].imshow(W[f, 0], cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[1, f].set_title(f"filter {f + 1}", fontsize=7)
    for r, block in enumerate(maps):
        for f in range(len(block)):
            axes[2 + r, f].imshow(block[f], cmap="viridis")
        axes[2 + r, 0].set_title(f"block {r + 1}: {len(block)} maps "
                                 f"{block.shape[1]}x{block.shape[2]}", fontsize=7, loc="left")
    fig.suptitle("first-layer 5x5 filters (red +, blue −) and the feature maps of a test digit "
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
    ax.legend(fontsize=9)
    written.append(save(fig, out / f"conv_speed.{fmt}"))
    return written
